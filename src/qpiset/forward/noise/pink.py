"""1/f noise in time along the raster scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import NoiseModel, _fmt, _image_std, number

__all__ = ["PinkNoise"]


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

    name: ClassVar[str] = "pink"
    specs: ClassVar[dict] = {"pink": (1, 2, "level[:exponent]"), "1/f": (1, 2, "level[:exponent]")}
    required: ClassVar[frozenset] = frozenset({"level"})
    optional: ClassVar[frozenset] = frozenset({"exponent"})


    level: float
    exponent: float = 1.0

    #: Images per FFT batch (bounds the memory; does not change the result).
    _CHUNK: ClassVar[int] = 32

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", number(self.level, "1/f noise level (fraction of "
                                                               "the image std)"))
        object.__setattr__(self, "exponent", number(self.exponent, "1/f noise exponent"))

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
