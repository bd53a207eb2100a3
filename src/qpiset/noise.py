"""Composable noise and instrument models for simulated QPI images.

Each model is a small object that maps a stack of clean images to a new, distorted stack::

    out = model(images, rng, grid=None)     # images: (n, R, R) or (R, R), indexed [iy, ix]
    model.params()                          # JSON-serialisable dict with a "model" key
    noise_from_params(model.params())       # the same model again (metadata -> model)

and models compose with :class:`Chain`, applied left to right. :func:`parse_noise` reads the
command-line form, e.g. ``"setpoint:0.3,blur:1.5,lines:0.05:0.2,white:0.1"``.

Conventions
-----------
* Images are ``img[iy, ix]``. Rows are **scan lines**: the tip moves along ``x`` (the fast
  axis, increasing ``ix``) and steps in ``y`` between lines (the slow axis). Time therefore
  runs in raster order ``t = iy * R + ix``; retrace/flyback time is neglected.
* Images are the relative LDOS change ``delta rho / rho0`` (dimensionless), as made by
  :mod:`qpiset.synth`.
* Noise amplitudes are fractions of the standard deviation of each image handed to the model
  (``np.std`` over its pixels). In a :class:`Chain` that is the output of the previous step,
  so put the instrument distortions (:class:`Setpoint`, :class:`TipBlur`) before the noise
  terms when the noise should refer to the measured signal.
* Lengths (blur width, line jitter) are in Å and need ``grid`` (a :class:`qpiset.grid.Grid`)
  for the pixel pitch.
* Randomness comes only from the ``numpy.random.Generator`` passed in. The number and order
  of the draws depend only on the image shape, never on the parameter values (a level of 0
  draws the same variates as 0.1), so a sweep over a level rescales one noise realisation.
  Each model's docstring states its draws; they are part of the reproducibility contract.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy import ndimage

__all__ = ["NoiseModel", "White", "PinkNoise", "ScanLines", "TipBlur", "Setpoint", "Chain",
           "parse_noise", "noise_from_params", "SPEC_NAMES"]


# --------------------------------------------------------------------------- helpers


def _number(value: Any, what: str, *, minimum: float | None = 0.0,
            allow_inf: bool = False) -> float:
    """``value`` as a float, checked to be a real number (finite unless ``allow_inf``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{what} must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum:g}, got {value!r}")
    return value


def _as_stack(images) -> tuple[np.ndarray, bool]:
    """``(stack (n, ny, nx) float64, was_2d)``; never a copy we write into."""
    stack = np.asarray(images, dtype=np.float64)
    if stack.ndim not in (2, 3):
        raise ValueError(f"images must have shape (n, R, R) or (R, R), got {stack.shape}")
    if not np.all(np.isfinite(stack)):
        raise ValueError("images must be finite (found NaN or inf)")
    if stack.ndim == 2:
        return stack[np.newaxis], True
    return stack, False


def _check_rng(rng, who: str) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who} needs a numpy.random.Generator (e.g. "
                        f"numpy.random.default_rng(seed)), got {type(rng).__name__}")


def _pitch(grid, shape: tuple[int, ...], who: str) -> float:
    """Pixel pitch (Å) of ``grid``, checked against the image shape."""
    if grid is None:
        raise ValueError(f"{who} works in Å and needs grid= (a qpiset.grid.Grid) for the "
                         f"pixel pitch")
    ny, nx = shape[-2:]
    if not (grid.resolution == ny == nx):
        raise ValueError(f"{who}: grid has {grid.resolution} px per side but the images are "
                         f"{ny}x{nx}")
    return float(grid.pitch)


def _image_std(stack: np.ndarray) -> list[float]:
    """Standard deviation of each image over its pixels (as ``float(np.std(img))``)."""
    return [float(np.std(img)) for img in stack]


def _fmt(value: float) -> str:
    """Shortest text that reads back as the same float."""
    return repr(float(value))


# --------------------------------------------------------------------------- base class


class NoiseModel(ABC):
    """Base class: validates the input, keeps it untouched, returns a new float64 array.

    Subclasses implement ``_apply(stack, rng, grid) -> new (n, ny, nx) array``,
    :meth:`params` and :meth:`spec`; ``stochastic`` says whether they draw from ``rng``.
    """

    stochastic: ClassVar[bool] = True

    def __call__(self, images, rng: np.random.Generator | None = None, grid=None) -> np.ndarray:
        """Apply the model to ``images`` (``(n, R, R)`` or ``(R, R)``); return a new array."""
        stack, was_2d = _as_stack(images)
        if self.stochastic:
            _check_rng(rng, type(self).__name__)
        out = self._apply(stack, rng, grid)
        return out[0] if was_2d else out

    @abstractmethod
    def _apply(self, stack: np.ndarray, rng, grid) -> np.ndarray:
        """The model on a stack ``(n, ny, nx)``: a new array."""

    @abstractmethod
    def params(self) -> dict:
        """JSON-serialisable record with a ``"model"`` key (see :func:`noise_from_params`)."""

    @abstractmethod
    def spec(self) -> str:
        """The :func:`parse_noise` text for this model."""


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class White(NoiseModel):
    """Additive white Gaussian noise, sized relative to each clean image.

    ``out = img + sigma_n * z``, ``z ~ N(0, 1)`` independent per pixel, with

    * ``reference="std"``: ``sigma_n = level * std(img)`` (``level`` is a dimensionless
      fraction; the meaning of ``qpiset generate --noise``);
    * ``reference="snr"``: ``sigma_n = std(img) / level``, where the signal-to-noise ratio
      is the amplitude ratio ``SNR = std(clean image) / std(noise)`` (not a power ratio,
      not in dB). So ``White(10, "snr")`` is ``White(0.1)``, to the last bit; ``SNR = inf``
      means no noise.

    ``std(img)`` is the standard deviation over the image's pixels, image by image, so
    ``sigma_n`` is the *expected* noise std; the sample std of one realisation scatters by
    about ``1/sqrt(2 R^2)`` relative. Units: those of the image.

    Draws ``rng.standard_normal(images.shape)`` (one value per pixel, images in order, then
    rows, then columns) -- the same draws, and the same bytes, as
    :class:`qpiset.synth.WhiteNoise` applied to the images one after another.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.normal(size=(2, 64, 64))
    >>> noisy = White(0.5)(clean, rng)
    >>> round(float(np.std(noisy - clean) / np.std(clean)), 1)
    0.5
    >>> White(10, reference="snr").params()
    {'model': 'white', 'snr': 10.0}
    """

    level: float
    reference: str = "std"

    def __post_init__(self) -> None:
        if self.reference not in ("std", "snr"):
            raise ValueError(f"White reference must be 'std' or 'snr', got {self.reference!r}")
        if self.reference == "std":
            level = _number(self.level, "white noise level (fraction of the image std)")
        else:
            level = _number(self.level, "signal-to-noise ratio", allow_inf=True)
            if level <= 0:
                raise ValueError(f"signal-to-noise ratio must be > 0, got {self.level!r}")
        object.__setattr__(self, "level", level)

    @property
    def fraction(self) -> float:
        """Noise std as a fraction of the image std (``1/SNR`` for ``reference="snr"``)."""
        return self.level if self.reference == "std" else 1.0 / self.level

    def _apply(self, stack, rng, grid):
        z = rng.standard_normal(stack.shape)
        out = np.empty_like(stack)
        fraction = self.fraction
        for i, std in enumerate(_image_std(stack)):
            # the same arithmetic, in the same order, as synth.WhiteNoise
            out[i] = stack[i] + fraction * std * z[i]
        return out

    def params(self) -> dict:
        key = "fraction" if self.reference == "std" else "snr"
        return {"model": "white", key: self.level}

    def spec(self) -> str:
        return f"white:{_fmt(self.level)}" if self.reference == "std" else f"snr:{_fmt(self.level)}"


@dataclass(frozen=True)
class PinkNoise(NoiseModel):
    """``1/f^alpha`` noise in time along the raster scan, added to each image.

    STM current/lock-in noise (tip instabilities, adsorbate hopping, electronics) is ``1/f``
    in *time*. The tip visits the pixels in raster order ``t = iy * R + ix`` (x fast, y slow,
    flyback neglected), so this model makes one time series of ``R^2`` samples per image with
    power spectral density ``S(f) ~ 1/f^alpha`` (``f`` in cycles per pixel dwell time) and
    writes it into the image in raster order. The noise is therefore correlated along each
    scan line and from line to line, and appears as streaks along ``x``.

    Construction (spectral synthesis): white Gaussian noise of length ``M = 2 R^2`` is
    filtered by ``f^(-alpha/2)`` (the ``f = 0`` term removed) and the first ``R^2`` samples
    are kept, so the image is not forced to be periodic in time; frequencies below
    ``1/(2 R^2)`` per dwell (drift slower than twice the frame time) are absent. The kept
    samples have their mean removed and are scaled so that, for each image,

        ``std(noise) = level * std(img)``     (exactly, for every realisation)

    ``level`` is a dimensionless fraction; ``exponent`` (``alpha >= 0``) is 1 for pink
    noise, 0 gives white noise, 2 a random walk (drift).

    Draws ``rng.standard_normal(2 * R**2)`` per image, images in order.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> clean = rng.normal(size=(3, 16, 16))
    >>> noisy = PinkNoise(0.2)(clean, rng)
    >>> [round(float(np.std(n - c) / np.std(c)), 6) for n, c in zip(noisy, clean)]
    [0.2, 0.2, 0.2]
    """

    level: float
    exponent: float = 1.0

    #: Images per FFT batch (bounds the memory; does not change the result).
    _CHUNK: ClassVar[int] = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", _number(self.level, "1/f noise level (fraction of "
                                                               "the image std)"))
        object.__setattr__(self, "exponent", _number(self.exponent, "1/f noise exponent"))

    def _apply(self, stack, rng, grid):
        n, ny, nx = stack.shape
        samples = ny * nx
        length = 2 * samples
        freq = np.fft.rfftfreq(length)
        gain = np.zeros_like(freq)
        gain[1:] = freq[1:] ** (-self.exponent / 2)
        stds = _image_std(stack)
        out = np.empty_like(stack)
        for start in range(0, n, self._CHUNK):
            stop = min(n, start + self._CHUNK)
            w = rng.standard_normal((stop - start, length))
            series = np.fft.irfft(np.fft.rfft(w, axis=-1) * gain, n=length, axis=-1)
            series = series[:, :samples]
            series -= series.mean(axis=-1, keepdims=True)
            spread = series.std(axis=-1, keepdims=True)
            series = np.divide(series, spread, out=np.zeros_like(series), where=spread > 0)
            for i in range(start, stop):
                out[i] = stack[i] + (self.level * stds[i]) * series[i - start].reshape(ny, nx)
        return out

    def params(self) -> dict:
        return {"model": "pink", "level": self.level, "exponent": self.exponent}

    def spec(self) -> str:
        return f"pink:{_fmt(self.level)}:{_fmt(self.exponent)}"


@dataclass(frozen=True)
class ScanLines(NoiseModel):
    """Scan-line artefacts: a random offset per line and optional random x-shift per line.

    For each image and each scan line (row) ``iy``::

        out[iy, x] = img[iy, x - s_iy] + d_iy
        d_iy ~ N(0, (offset * std(img))^2)     (offset: dimensionless fraction of the std)
        s_iy ~ N(0, jitter^2)                  (jitter: Å; the line moves by +s_iy in x)

    The offsets model the feedback/z-drift steps between lines (a constant added along a
    line); the shifts model lateral line jitter (tip/piezo noise, thermal drift). Shifts are
    applied by cubic-spline interpolation along ``x`` (``scipy.ndimage.map_coordinates``,
    order 3); pixels shifted in from beyond the image edge take the edge value (mode
    ``"nearest"``). The shift is applied first, then the offset. ``jitter > 0`` needs
    ``grid`` for the pitch; with ``jitter == 0`` the image is not interpolated at all.

    Draws ``rng.standard_normal((n, R))`` for the offsets, then ``rng.standard_normal((n, R))``
    for the shifts (always both, whatever the parameters).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> clean = rng.normal(size=(1, 8, 8))
    >>> step = ScanLines(0.3)(clean, rng) - clean
    >>> bool(np.allclose(step, step[:, :, :1]))    # constant along each line
    True
    """

    offset: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "offset", _number(self.offset, "scan-line offset (fraction "
                                                                "of the image std)"))
        object.__setattr__(self, "jitter", _number(self.jitter, "scan-line jitter (Å)"))

    def _apply(self, stack, rng, grid):
        n, ny, nx = stack.shape
        z_offset = rng.standard_normal((n, ny))
        z_shift = rng.standard_normal((n, ny))
        shifted = stack
        if self.jitter > 0 and stack.size:
            pixels = self.jitter / _pitch(grid, stack.shape, "ScanLines jitter") * z_shift
            rows = stack.reshape(n * ny, nx)
            row_index = np.broadcast_to(np.arange(n * ny, dtype=float)[:, None], rows.shape)
            source_x = np.arange(nx, dtype=float)[None, :] - pixels.reshape(-1, 1)
            shifted = ndimage.map_coordinates(rows, [row_index, source_x], order=3,
                                              mode="nearest").reshape(stack.shape)
        scale = np.array([self.offset * s for s in _image_std(stack)])
        return shifted + (scale[:, None] * z_offset)[:, :, None]

    def params(self) -> dict:
        return {"model": "lines", "offset": self.offset, "jitter": self.jitter}

    def spec(self) -> str:
        return f"lines:{_fmt(self.offset)}:{_fmt(self.jitter)}"


@dataclass(frozen=True)
class TipBlur(NoiseModel):
    """Finite lateral resolution of the tip: Gaussian blur of width ``sigma`` (Å).

    ``out = img * G_sigma`` (2D convolution) with the normalised Gaussian
    ``G_sigma(r) = exp(-r^2 / 2 sigma^2) / (2 pi sigma^2)``; ``sigma`` is the standard
    deviation in Å (FWHM = 2.355 sigma). A feature of width ``s`` comes out with width
    ``sqrt(s^2 + sigma^2)``; a constant image is unchanged. Implemented by
    ``scipy.ndimage.gaussian_filter`` with ``sigma / pitch`` pixels along x and y, the
    kernel cut at 4 sigma, and mode ``"reflect"`` at the edges (the image continued by its
    mirror image about the outer pixel edge). Needs ``grid`` for the pitch. Below about
    half a pixel the sampled kernel is no longer a good Gaussian.

    :class:`qpiset.physics.FriedelKernel` already includes a tip width (``tip_sigma``);
    this adds to it in quadrature. Deterministic (no draws).

    Examples
    --------
    >>> from qpiset.grid import Grid
    >>> flat = np.full((16, 16), 2.0)
    >>> bool(np.allclose(TipBlur(3.0)(flat, grid=Grid(16, 30.0)), 2.0))
    True
    """

    sigma: float

    stochastic: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", _number(self.sigma, "tip blur sigma (Å)"))

    def _apply(self, stack, rng, grid):
        pixels = self.sigma / _pitch(grid, stack.shape, "TipBlur")
        if pixels == 0:
            return stack.copy()
        return ndimage.gaussian_filter(stack, sigma=(0.0, pixels, pixels), mode="reflect",
                                       truncate=4.0)

    def params(self) -> dict:
        return {"model": "blur", "sigma": self.sigma}

    def spec(self) -> str:
        return f"blur:{_fmt(self.sigma)}"


@dataclass(frozen=True)
class Setpoint(NoiseModel):
    """The setpoint effect of constant-current dI/dV maps (single-energy model).

    Before each spectrum the feedback sets the current ``I_s`` at bias ``V_s``, which fixes
    the tip height so that the LDOS integrated up to the setpoint is the same everywhere;
    the measured conductance is then (Tersoff-Hamann)::

        g(r, E) = I_s rho(r, E) / integral_0^{eV_s} rho(r, e) de

    (see Kohsaka et al., Science 315, 1380 (2007); Macdonald et al., Nanotechnology 27,
    414004 (2016)). With ``rho(r, e) = rho0 (1 + delta(r, e))`` and the image
    ``img = delta(r, E)``, the window average ``<delta(r)>_s`` of the LDOS modulation is
    modelled as ``strength * delta(r, E)`` -- the integrated modulation has the same spatial
    pattern, scaled by ``c = strength`` (dimensionless). The normalised map
    ``g / g0 - 1`` (``g0``: the clean surface) is then::

        out = (1 + img) / (1 + c img) - 1 = (1 - c) img / (1 + c img)
            = (1 - c) img - c (1 - c) img^2 + O(img^3)

    ``c = 0``: no setpoint effect (out = img); ``0 < c < 1``: contrast reduced by ``1 - c``
    and made asymmetric (dips deepened relative to peaks); ``c = 1``: the LDOS modulation
    is the same over the whole window and cancels completely; ``c < 0``: the integrated
    modulation is in antiphase (contrast enhanced). The integrated LDOS must stay positive,
    ``1 + c img > 0`` at every pixel (guaranteed for ``0 <= c <= 1`` whenever the LDOS
    itself is positive, ``img > -1``); otherwise a ``ValueError`` names the image. A zero
    image stays zero. Deterministic (no draws).

    Examples
    --------
    >>> img = np.array([[0.0, 0.1], [-0.1, 0.5]])
    >>> Setpoint(0.5)(img)
    array([[ 0.        ,  0.04761905],
           [-0.05263158,  0.2       ]])
    """

    strength: float

    stochastic: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", _number(self.strength, "setpoint strength",
                                                     minimum=None))

    def _apply(self, stack, rng, grid):
        c = self.strength
        denominator = 1.0 + c * stack
        bad = np.flatnonzero(~np.all(denominator > 0, axis=(1, 2)))
        if bad.size:
            i = int(bad[0])
            worst = float(stack[i].min() if c > 0 else stack[i].max())
            raise ValueError(
                f"Setpoint(strength={c!r}): the integrated LDOS 1 + strength*image must be "
                f"> 0, but image {i} reaches {worst:.4g} (|strength| must be < "
                f"{1 / abs(worst):.4g} for it); images with LDOS below zero (image < -1) "
                f"are unphysical")
        return (1.0 - c) * stack / denominator

    def params(self) -> dict:
        return {"model": "setpoint", "strength": self.strength}

    def spec(self) -> str:
        return f"setpoint:{_fmt(self.strength)}"


class Chain(NoiseModel):
    """Apply models in order: ``Chain(a, b)(x, rng) == b(a(x, rng), rng)``.

    The models share ``rng`` and ``grid``: each draws its variates after the previous one's,
    so ``Chain(White(0.1))`` gives the same bytes as ``White(0.1)``. An empty chain returns
    a copy. :meth:`params` lists the models' parameters in order.

    Examples
    --------
    >>> from qpiset.grid import Grid
    >>> chain = Chain(TipBlur(1.0), White(0.1))
    >>> chain.params()
    {'model': 'chain', 'models': [{'model': 'blur', 'sigma': 1.0},
                                  {'model': 'white', 'fraction': 0.1}]}
    >>> chain(np.ones((2, 8, 8)), np.random.default_rng(0), grid=Grid(8, 10.0)).shape
    (2, 8, 8)
    """

    def __init__(self, *models: NoiseModel) -> None:
        for m in models:
            if not isinstance(m, NoiseModel):
                raise TypeError(f"Chain takes noise models, got {m!r}")
        self.models: tuple[NoiseModel, ...] = tuple(models)

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return any(m.stochastic for m in self.models)

    def _apply(self, stack, rng, grid):
        out = stack.copy() if not self.models else stack
        for m in self.models:
            out = m._apply(out, rng, grid)
        return out

    def params(self) -> dict:
        return {"model": "chain", "models": [m.params() for m in self.models]}

    def spec(self) -> str:
        return ",".join(m.spec() for m in self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self):
        return iter(self.models)

    def __eq__(self, other) -> bool:
        return isinstance(other, Chain) and self.models == other.models

    def __hash__(self) -> int:
        return hash(self.models)

    def __repr__(self) -> str:
        return f"Chain({', '.join(repr(m) for m in self.models)})"


# --------------------------------------------------------------------------- spec parsing

#: ``name -> (builder, min values, max values, meaning of the values)`` for parse_noise.
_SPECS: dict[str, tuple[Any, int, int, str]] = {
    "white": (lambda v: White(*v), 1, 1, "fraction of the image std"),
    "snr": (lambda v: White(v[0], reference="snr"), 1, 1, "signal-to-noise ratio"),
    "pink": (lambda v: PinkNoise(*v), 1, 2, "level[:exponent]"),
    "1/f": (lambda v: PinkNoise(*v), 1, 2, "level[:exponent]"),
    "lines": (lambda v: ScanLines(*v), 1, 2, "offset[:jitter Å]"),
    "blur": (lambda v: TipBlur(*v), 1, 1, "sigma in Å"),
    "setpoint": (lambda v: Setpoint(*v), 1, 1, "strength"),
}

#: The model names :func:`parse_noise` accepts.
SPEC_NAMES: tuple[str, ...] = tuple(_SPECS)


def _valid_names() -> str:
    return ", ".join(f"{name} ({meaning})" for name, (_, _, _, meaning) in _SPECS.items())


def parse_noise(spec: str) -> Chain | None:
    """Read a noise specification (the ``--noise`` text) into a :class:`Chain`.

    Grammar::

        spec  := number | "none" | "" | item ("," item)*
        item  := number                      (same as white:number)
               | name ":" number (":" number)*
        name  := white | snr | pink | 1/f | lines | blur | setpoint     (case-insensitive)

    ``white:F`` noise std = F x image std; ``snr:S`` std(image)/std(noise) = S;
    ``pink:F[:ALPHA]`` (or ``1/f``) 1/f^ALPHA noise in time along the scan, std = F x image
    std (ALPHA defaults to 1); ``lines:F[:J]`` per-line offsets with std F x image std, and
    line jitter with std J Å; ``blur:SIGMA`` Gaussian tip blur of SIGMA Å;
    ``setpoint:C`` setpoint effect of strength C. Items apply left to right. A bare number
    is the historical meaning of ``--noise`` (white noise fraction); ``"0"``, ``""`` and
    ``"none"`` mean no noise and give ``None``.

    Raises
    ------
    ValueError
        Naming the bad item and listing the valid names.

    Examples
    --------
    >>> parse_noise("0.1")
    Chain(White(level=0.1, reference='std'))
    >>> parse_noise("blur:1.5, white:0.1").spec()
    'blur:1.5,white:0.1'
    >>> parse_noise("0") is None
    True
    """
    if not isinstance(spec, str):
        raise ValueError(f"noise spec must be a string, got {spec!r}")
    text = spec.strip()
    if text.lower() in ("", "none", "off"):
        return None
    try:
        if float(text) == 0:
            return None
    except ValueError:
        pass
    models = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ValueError(f"noise spec {spec!r} has an empty item; give items like "
                             f"'white:0.1' separated by commas. Valid names: {_valid_names()}")
        fields = [f.strip() for f in item.split(":")]
        name = fields[0].lower()
        values_text = fields[1:]
        if len(fields) == 1:
            try:
                float(name)
            except ValueError:
                raise ValueError(f"noise item {item!r}: expected name:value; valid names: "
                                 f"{_valid_names()}") from None
            name, values_text = "white", fields
        if name not in _SPECS:
            raise ValueError(f"noise item {item!r}: unknown model {fields[0]!r}; valid names: "
                             f"{_valid_names()}")
        build, lo, hi, meaning = _SPECS[name]
        if not lo <= len(values_text) <= hi:
            count = f"{lo}" if lo == hi else f"{lo} to {hi}"
            raise ValueError(f"noise item {item!r}: {name!r} takes {count} value(s) "
                             f"({meaning}), got {len(values_text)}")
        values = []
        for v in values_text:
            try:
                values.append(float(v))
            except ValueError:
                raise ValueError(f"noise item {item!r}: {v!r} is not a number "
                                 f"({name}:{meaning})") from None
        try:
            models.append(build(values))
        except ValueError as exc:
            raise ValueError(f"noise item {item!r}: {exc}") from None
    return Chain(*models)


def noise_from_params(params: dict | None) -> NoiseModel | None:
    """Rebuild a model from its :meth:`~NoiseModel.params` (e.g. a dataset's metadata).

    Also reads the record of :class:`qpiset.synth.WhiteNoise` (``{"model": "white",
    "fraction": F}``); ``None`` (no noise) gives ``None``.

    Examples
    --------
    >>> m = Chain(Setpoint(0.3), ScanLines(0.05, 0.2), White(20, reference="snr"))
    >>> noise_from_params(m.params()) == m
    True
    """
    if params is None:
        return None
    if not isinstance(params, dict) or "model" not in params:
        raise ValueError(f"noise parameters must be a dict with a 'model' key, got {params!r}")
    kind = params["model"]
    rest = {k: v for k, v in params.items() if k != "model"}
    if kind == "chain":
        if set(rest) != {"models"} or not isinstance(rest["models"], list):
            raise ValueError(f"chain parameters must be {{'model': 'chain', 'models': [...]}}, "
                             f"got {params!r}")
        return Chain(*(noise_from_params(p) for p in rest["models"]))
    if kind == "white":
        if set(rest) == {"fraction"}:
            return White(rest["fraction"])
        if set(rest) == {"snr"}:
            return White(rest["snr"], reference="snr")
        raise ValueError(f"white noise parameters need exactly one of 'fraction' or 'snr', "
                         f"got {params!r}")
    classes = {"pink": (PinkNoise, {"level"}, {"exponent"}),
               "lines": (ScanLines, {"offset"}, {"jitter"}),
               "blur": (TipBlur, {"sigma"}, set()),
               "setpoint": (Setpoint, {"strength"}, set())}
    if kind not in classes:
        raise ValueError(f"unknown noise model {kind!r}; known: chain, white, "
                         f"{', '.join(classes)}")
    cls, required, optional = classes[kind]
    if not required <= set(rest) <= required | optional:
        raise ValueError(f"{kind} parameters need {sorted(required)} (optional "
                         f"{sorted(optional)}), got {sorted(rest)}")
    return cls(**rest)
