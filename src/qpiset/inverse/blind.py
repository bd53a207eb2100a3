"""Blind kernel estimation: the single-scatterer kernel from images alone.

For scatterers placed independently and uniformly (a Poisson field of density ``rho``)
with strengths ``s``, the images are stationary with covariance
``rho <s²> (K ⋆ K)(d)`` plus the noise's: their mean power spectrum is
``rho <s²> |K(q)|²`` plus a flat floor, seen through the window the images are cut by.
So the images alone give ``|K(q)|`` (the ring of the Friedel oscillations, the tip's
fall-off at large ``q``), and their third moment gives the overall sign (the strengths
are positive: ``<(y - <y>)³> = rho <s³> sum K³``). Estimation goes in two stages:

1. **Start from the spectrum** (:func:`spectral_start`). Isotropic images: the mean
   radial power spectrum (Tukey window, zero-padded twice) is fitted by the expected
   spectrum of point scatterers in a 2D surface state,
   ``K ∝ sin(delta) Re H0(kr)² + cos(delta) Im H0(kr)²`` blurred by a Gaussian tip of
   width ``tip_sigma``: the expected windowed spectrum is computed exactly (the
   window's autocorrelation times the kernel's, at the pixel lags; the kernel's on a
   grid twice as fine as the pixels, so aliasing is in the model as in the data). The
   scale and the noise floor are linear and solved for each ``(k, delta, tip_sigma)``;
   ``delta`` is scanned, ``k`` (from the ring, :func:`ring_wavevector`) and ``tip_sigma``
   are scanned and then polished by bounded 1D searches. The sign comes from the
   third moment. The same radial start serves anisotropic images (their ring average).
2. **Alternate** detection (:class:`SparseDeconvolution`) with a kernel refit to all
   images with the detections held: the radial B-spline least squares
   (:func:`kernel_from_positions`, second-difference penalty ``smooth``) for an isotropic
   spectrum, the band-limited 2D model of :mod:`.calibrate` when the spectrum is
   anisotropic (:func:`spectrum_anisotropy` above :data:`SPECTRUM_ANISOTROPY`). Each round's
   detections are scored by how well they explain the images (chi² plus the detector's
   prior odds per scatterer, :func:`_evidence`); the kernel refitted from the
   best-scoring round's detections is returned (with a wrong start, the refits can move
   away from the truth again as the detections' misses and extras pull them). The rounds
   stop when the kernel changes by less than ``tol`` (relative RMS over the field, as
   calibration measures it) or after ``rounds``.

The kernel is determined up to scale (the strengths take the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import scipy.fft
from scipy import special
from scipy.interpolate import make_lsq_spline
from scipy.optimize import least_squares, minimize_scalar

from ..core.grid import Grid
from ..physics import ImageKernel, Kernel, SplineKernel, gaussian_blur_radial
from ..physics.sampled import spline_knots
from .kernel import kernel_from_positions, ring_wavevector
from .protocols import Detections

__all__ = ["blind_kernel", "blind_steps", "spectral_start", "spectrum_anisotropy",
           "image_power", "SpectralStart", "BlindKernel", "BlindResult", "BLIND_IMAGES",
           "SPECTRUM_ANISOTROPY"]

#: How many of a file's first images ``qpiset detect --blind`` estimates the kernel from.
BLIND_IMAGES = 10

#: Tip widths (Å) the spectral fit may choose: below 0.3 Å the pixels (1.6 Å) see no change.
TIP_RANGE = (0.3, 3.0)


def _window(R: int) -> np.ndarray:
    """The taper the images are cut by before their spectrum is taken: a Tukey window
    flat over its central 75 %. Its main lobe is narrower than a Hann window's, which
    matters for a long wavelength (Ag(111)'s ring lies 3 bins from the origin of a
    64 px, 100 Å image's spectrum): from 10 images of 51-100 scatterers the worst start
    of six seeds had ``k`` 4 % off (NMSE 0.04) against 8 % (0.13) with a Hann window."""
    from scipy.signal.windows import tukey  # here: importing scipy.signal takes 0.4 s

    return tukey(R, 0.25)


def image_power(images: Sequence[np.ndarray], pad: int = 2) -> np.ndarray:
    """The images' mean power spectrum ``(pad R, pad R)`` (FFT layout), each image's mean
    removed and a 2D window applied (:func:`_window`; the field's edges would otherwise
    leak the low frequencies into the ring)."""
    images = [np.asarray(i, float) for i in images]
    R = images[0].shape[0]
    n = pad * R
    w = np.outer(_window(R), _window(R))
    power = np.zeros((n, n))
    for img in images:
        power += np.abs(scipy.fft.fft2((img - img.mean()) * w, s=(n, n))) ** 2
    return power / len(images)


def _radial(values: np.ndarray, bins: np.ndarray, count: np.ndarray) -> np.ndarray:
    return np.bincount(bins, values.ravel(), minlength=len(count)) / np.maximum(count, 1)


class _FriedelSpectrum:
    """The expected windowed power spectrum of Poisson-placed Friedel scatterers on
    ``grid``, in radial bins, for the two basis patterns ``A = Re H0(kr)²``,
    ``B = Im H0(kr)²`` and their cross term."""

    def __init__(self, grid: Grid, pad: int = 2, reach: float | None = None,
                 sigma0: float = TIP_RANGE[0]) -> None:
        R = grid.resolution
        self.n = pad * R
        self.h = grid.pitch / 2  # the kernel's grid: twice as fine as the pixels
        reach = reach or grid.fov + grid.pitch
        N = 2 * int(np.ceil(reach / self.h))
        axis = (np.arange(N) - N // 2) * self.h
        self.r = np.hypot(axis[None, :], axis[:, None])
        # the scatterers lie in the field: a pixel p sees a scatterer at offset u only when
        # p - u is in the field; weighted by the window over p, that is a taper of K
        w2 = _window(R) ** 2
        inside = np.abs(grid.x[None, :] - axis[:, None]) <= grid.fov / 2 + grid.pitch / 2
        m = np.sqrt((inside * w2).sum(1) / w2.sum())
        self.taper = np.outer(m, m)
        self.M = 2 * N  # zero padding: the autocorrelation does not wrap
        f = 2 * np.pi * scipy.fft.fftfreq(self.M, self.h)
        self.q2 = (f[None, :] ** 2 + f[:, None] ** 2)[:, : self.M // 2 + 1]
        self.sigma0 = sigma0
        w = _window(R)
        cw = np.correlate(w, w, "full")  # the window's autocorrelation, lags -(R-1)..R-1
        self.cw = np.outer(cw, cw)
        lags = np.arange(-(R - 1), R)
        self.at_lags = np.ix_((2 * lags) % self.M, (2 * lags) % self.M)
        self.out = np.ix_(lags % self.n, lags % self.n)
        fq = 2 * np.pi * scipy.fft.fftfreq(self.n, grid.pitch)
        q = np.hypot(fq[None, :], fq[:, None])
        self.dq = 2 * np.pi / (self.n * grid.pitch)
        self.bins = np.round(q / self.dq).astype(int).ravel()
        self.count = np.bincount(self.bins)
        self._bases: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def radial(self, power: np.ndarray) -> np.ndarray:
        """A spectrum ``(n, n)`` averaged in rings of width ``dq``."""
        return _radial(power, self.bins, self.count)

    def _basis(self, k: float):
        """The Fourier transforms of ``A`` and ``B`` blurred by ``sigma0`` (cached by k):
        the blur matters only near the scatterer, so the exact radial blur is used
        within ``6 + 8 sigma0`` Å and the bare pattern beyond."""
        key = round(float(k), 9)
        if key not in self._bases:
            step = self.h / 4
            rr = np.arange(0.0, self.r.max() + 2 * step, step)
            near = rr < 6.0 + 8 * self.sigma0
            h2 = special.hankel1(0, k * np.maximum(rr, 1e-12)) ** 2
            A, B = h2.real.copy(), h2.imag.copy()
            A[near] = gaussian_blur_radial(lambda x: np.real(special.hankel1(0, k * x) ** 2),
                                           rr[near], self.sigma0)
            B[near] = gaussian_blur_radial(lambda x: np.imag(special.hankel1(0, k * x) ** 2),
                                           rr[near], self.sigma0)
            self._bases[key] = tuple(
                scipy.fft.rfft2(np.interp(self.r, rr, v) * self.taper, s=(self.M, self.M))
                for v in (A, B))
        return self._bases[key]

    def spectra(self, k: float, sigma: float) -> np.ndarray:
        """``(3, bins)``: the radial windowed spectra of ``A``, ``B`` and ``(A, B)`` for
        wave vector ``k`` and tip width ``sigma``."""
        a, b = self._basis(k)
        g = np.exp(-(sigma**2 - self.sigma0**2) * self.q2)
        out = []
        for s in (np.abs(a) ** 2, np.abs(b) ** 2, np.real(a * np.conj(b))):
            c = scipy.fft.irfft2(s * g, s=(self.M, self.M))[self.at_lags] * self.cw
            full = np.zeros((self.n, self.n))
            full[self.out] = c
            out.append(self.radial(np.real(scipy.fft.fft2(full))))
        return np.array(out)


def spectrum_anisotropy(images: Sequence[np.ndarray], grid: Grid) -> float:
    """How far the images' power spectrum is from isotropic: the power-weighted RMS of
    its relative departure from its ring means, over the rings between the field's scale
    and the Nyquist frequency (the spectrum smoothed over 3x3 bins first, so that the
    estimate's own scatter, about ``1/sqrt(9 n)`` for ``n`` images, stays small).
    Isotropic kernels gave 0.2-0.3 from 10 images (Cu, Ag), lattice and d-wave
    kernels 1.2-2.7."""
    from scipy.ndimage import uniform_filter

    power = scipy.fft.fftshift(image_power(images))
    power = scipy.fft.ifftshift(uniform_filter(power, 3, mode="wrap"))
    n = power.shape[0]
    fq = 2 * np.pi * scipy.fft.fftfreq(n, grid.pitch)
    dq = 2 * np.pi / (n * grid.pitch)
    bins = np.round(np.hypot(fq[None, :], fq[:, None]) / dq).astype(int).ravel()
    count = np.bincount(bins)
    mean = _radial(power, bins, count)
    ring = (bins >= 6) & (bins <= int(np.pi / grid.pitch / dq))
    p, m = power.ravel()[ring], mean[bins[ring]]
    return float(np.sqrt(np.sum(m * (p - m) ** 2 / m**2) / np.sum(m)))


#: Above this :func:`spectrum_anisotropy` the blind estimate fits a 2D kernel.
SPECTRUM_ANISOTROPY = 0.6


@dataclass
class SpectralStart:
    """What :func:`spectral_start` found: the surface-state parameters that explain the
    images' power spectrum, and the start kernel they make."""

    k: float
    phase_shift: float
    tip_sigma: float
    sign: float
    misfit: float
    kernel: Kernel
    evaluations: int = 0

    def record(self) -> dict:
        return {"k": round(self.k, 6), "phase_shift": round(self.phase_shift, 4),
                "tip_sigma": round(self.tip_sigma, 4), "sign": self.sign,
                "misfit": round(self.misfit, 6), "evaluations": self.evaluations}


def _friedel_radial(k: float, delta: float, sigma: float, r: np.ndarray) -> np.ndarray:
    """``sin(delta) Re H0(kr)² + cos(delta) Im H0(kr)²`` blurred by a Gaussian tip."""
    def bare(x):
        h2 = special.hankel1(0, k * x) ** 2
        return np.sin(delta) * h2.real + np.cos(delta) * h2.imag

    return gaussian_blur_radial(bare, r, sigma)


def _as_spline(values_at, rmax: float) -> SplineKernel:
    """A radial function as the B-spline of :func:`kernel_from_positions` (same knots)."""
    knots = spline_knots(rmax)
    r = np.linspace(0.0, rmax, int(rmax / 0.05) + 1)
    return SplineKernel(knots, make_lsq_spline(r, values_at(r), knots, k=3).c)


def _rmax(grid: Grid) -> float:
    return float(np.sqrt(2.0) * grid.fov + 1.0)


def spectral_start(images: Sequence[np.ndarray], grid: Grid, *, k: float | None = None,
                   phases: int = 72) -> SpectralStart:
    """Fit a surface-state point scatterer's expected power spectrum to the images' (module
    docs, stage 1).

    Parameters
    ----------
    images : sequence of (R, R) arrays
    grid : Grid
    k : float, optional
        Starting wave vector (1/Å); default half the ring of :func:`ring_wavevector`.
    phases : int
        Phase shifts scanned in ``[0, pi)``.

    Returns
    -------
    SpectralStart
        ``.kernel`` is a radial spline, signed so that the strengths are positive.
    """
    images = [np.asarray(i, float) for i in images]
    model = _FriedelSpectrum(grid)
    data = model.radial(image_power(images))
    lo = 3  # the lowest rings hold the field's own scale (and each image's mean)
    hi = min(len(data), int(np.pi / grid.pitch / model.dq) + 1)
    y = data[lo:hi]
    weight = 1.0 / np.maximum(y, 1e-300)  # relative misfit: every ring counts
    delta = np.arange(phases) * np.pi / phases
    sn, cs = np.sin(delta)[:, None], np.cos(delta)[:, None]
    calls = [0]

    def fit(kk: float, sigma: float):
        calls[0] += 1
        AA, BB, AB = model.spectra(kk, sigma)[:, lo:hi]
        basis = (sn**2 * AA + cs**2 * BB + 2 * sn * cs * AB) * weight  # (phases, bins)
        ones = weight
        # per phase: min ||c basis + f ones - y w||² over scale c and floor f (2x2 normal eqs)
        b11 = np.sum(basis * basis, 1)
        b12 = basis @ ones
        b22 = float(ones @ ones)
        r1 = basis @ (y * weight)
        r2 = float(ones @ (y * weight))
        det = b11 * b22 - b12**2
        c = (r1 * b22 - b12 * r2) / det
        f = (b11 * r2 - b12 * r1) / det
        rss = np.sum((c[:, None] * basis + f[:, None] * ones - y * weight) ** 2, 1)
        rss[c <= 0] = np.inf
        i = int(np.argmin(rss))
        return float(rss[i]) / len(y), float(delta[i])

    k0 = k or ring_wavevector(images, grid) / 2
    ks = k0 * np.linspace(0.7, 1.3, 13)  # the ring's estimate is coarse (its q bins)
    scan = [(fit(kk, 1.0)[0], kk) for kk in ks]
    kbest = min(scan)[1]
    sig = [(fit(kbest, s)[0], s) for s in (0.3, 0.6, 1.0, 1.5, 2.2, 3.0)]
    sbest = min(sig)[1]
    dk = k0 * 0.025
    kbest = float(minimize_scalar(lambda kk: fit(kk, sbest)[0], bounds=(kbest - dk, kbest + dk),
                                  method="bounded", options={"xatol": 1e-4 * k0}).x)
    sbest = float(minimize_scalar(lambda s: fit(kbest, s)[0], bounds=TIP_RANGE,
                                  method="bounded", options={"xatol": 0.01}).x)
    misfit, dbest = fit(kbest, sbest)
    rmax = _rmax(grid)
    X, Y = grid.meshgrid()
    row = _friedel_radial(kbest, dbest, sbest, np.unique(np.hypot(X, Y)))
    third = float(np.mean([np.mean((i - i.mean()) ** 3) for i in images]))
    sign = 1.0 if third * np.sum(row**3) >= 0 else -1.0
    peak = float(np.max(np.abs(row)))
    kernel = _as_spline(lambda r: sign * _friedel_radial(kbest, dbest, sbest, r) / peak, rmax)
    return SpectralStart(kbest, dbest, sbest, sign, misfit, kernel, calls[0])


@dataclass
class BlindResult:
    """What :func:`blind_kernel` did: the kernel, the last round's detections, the start,
    and per round the relative change of the kernel and the scatterers found."""

    kernel: Kernel
    positions: list[np.ndarray]
    strengths: list[np.ndarray]
    start: SpectralStart | None
    changes: list[float] = field(default_factory=list)
    scatterers: list[int] = field(default_factory=list)
    converged: bool = False
    isotropic: bool = True
    #: Per round, how well the detections explain the images (:func:`_evidence`, summed).
    scores: list[float] = field(default_factory=list)
    #: The round whose detections made :attr:`kernel` (the best score).
    best: int = 0

    @property
    def rounds(self) -> int:
        return len(self.scores)

    def __iter__(self):  # ``kernel, positions = blind_kernel(...)``
        return iter((self.kernel, self.positions))

    def record(self) -> dict:
        return {"isotropic": self.isotropic, "rounds": len(self.changes),
                "changes": [round(c, 6) for c in self.changes], "scatterers": self.scatterers,
                "converged": self.converged, "scores": [round(v, 1) for v in self.scores],
                "best": self.best,
                "start": None if self.start is None else self.start.record(),
                "kernel": self.kernel.describe()}


def blind_steps(n_images: int, rounds: int = 3) -> int:
    """Most steps :func:`blind_kernel` reports to ``on_step``: the start, then per round
    one per image detected and one for the kernel fit."""
    return 1 + rounds * (n_images + 1)


def blind_kernel(images: Sequence[np.ndarray], grid: Grid, *, rounds: int = 3,
                 tol: float = 0.01, isotropic: bool | None = None,
                 detector_options: dict | None = None, smooth: float = 1e-3,
                 project: bool = True, on_step=None) -> BlindResult:
    """The kernel from the images alone: a start from their power spectrum, then rounds
    of detection and kernel refit (module docs).

    Parameters
    ----------
    images : sequence of (R, R) arrays ``[iy, ix]``
        Ten images of 51-100 scatterers suffice for Cu(111) and Ag(111) at noise 0.1
        (``benchmarks/bench_blind.py``).
    grid : Grid
    rounds : int
        At most this many rounds of detection and refit.
    tol : float
        Stop when the kernel changes by less than this (relative RMS over the field).
    isotropic : bool, optional
        Fit a radial kernel (True) or a 2D one (False). Default: radial when the images'
        power spectrum is isotropic (:func:`spectrum_anisotropy` below
        :data:`SPECTRUM_ANISOTROPY`), else a ``ValueError``: the 2D path, asked for with
        ``False``, has not recovered an anisotropic kernel yet (NMSE 0.99 on a lattice
        kernel, ``benchmarks/README.md``), so it is never taken unasked.
    detector_options : dict, optional
        Options of :class:`SparseDeconvolution` for every round.
    smooth : float
        Second-difference penalty of the radial refit (:func:`kernel_from_positions`).
    project : bool
        Detect in the second round with the first refit projected onto the surface-state
        family (:func:`_project`) rather than the refit itself (radial only).
    on_step : callable, optional
        Called with 1 after the start, each image detected and each refit, and with the
        steps left when the rounds stop early (:func:`blind_steps` in all).

    Returns
    -------
    BlindResult
        Unpacks as ``kernel, positions``; the kernel is determined up to scale.
    """
    from ..forward import Forward
    from .calibrate import _change
    from .sparse import SparseDeconvolution, pixel_noise

    done = [0]

    def step(k: int) -> None:
        done[0] += k
        if on_step is not None:
            on_step(k)

    images = [np.asarray(i, float) for i in images]
    if not images:
        raise ValueError("blind kernel estimation needs at least one image")
    start = spectral_start(images, grid)
    if isotropic is None:
        score = spectrum_anisotropy(images, grid)
        if score >= SPECTRUM_ANISOTROPY:
            raise ValueError(
                f"the images' power spectrum is anisotropic ({score:.2f} > "
                f"{SPECTRUM_ANISOTROPY}): blind estimation recovers isotropic kernels only "
                f"(a lattice or superconductor's kernel needs positions: method lsq, or "
                f"calibrate from a kernel row)")
        isotropic = True
    step(1)
    result = BlindResult(start.kernel, [], [], start, isotropic=isotropic)
    noise = [max(pixel_noise(img), 1e-12) for img in images]
    kernel: Kernel = start.kernel
    best = np.inf
    for round_ in range(rounds):
        detector = SparseDeconvolution(**(detector_options or {}))
        op = Forward(kernel, grid)
        positions, strengths, score = [], [], 0.0
        for img, sigma in zip(images, noise):
            found = detector.detect(img[None], op)
            pos, s = found.positions[0], found.strengths[0]
            positions.append(pos)
            strengths.append(s)
            score += _evidence(img, op, pos, s, sigma, detector)
            step(1)
        result.scores.append(score)
        if not any(len(p) for p in positions):
            break
        if isotropic:
            new = kernel_from_positions(images, positions, grid, strengths, smooth=smooth)
        else:
            new = _refit_2d(images, Detections(positions, strengths), op)
        step(1)
        change = _change(kernel, new, grid)
        result.changes.append(change)
        result.scatterers.append(int(sum(len(p) for p in positions)))
        if score < best:  # these detections explain the images best: keep their kernel
            best = score
            result.kernel, result.positions, result.strengths = new, positions, strengths
            result.best = round_
        kernel = new
        if round_ == 0 and isotropic and project:
            kernel = _project(new, start, grid)
        if change < tol:
            result.converged = True
            break
    left = blind_steps(len(images), rounds) - done[0]
    if left > 0:  # stopped early: the progress bar completes
        step(left)
    return _normalised(result)


def _normalised(result: BlindResult) -> BlindResult:
    """The kernel scaled so that the median strength of its detections is 1 (the images
    fix only the product of the two)."""
    found = [s for s in result.strengths if len(s)]
    if not found:
        return result
    c = float(np.median(np.concatenate(found)))
    if not np.isfinite(c) or c <= 0:
        return result
    k = result.kernel
    if isinstance(k, SplineKernel):
        result.kernel = SplineKernel(k.knots, c * k.coef)
    elif isinstance(k, ImageKernel):
        result.kernel = ImageKernel(image=c * k.image, fov=k.fov, taper=k.taper)
    else:  # pragma: no cover - the refits make one of the two
        return result
    result.strengths = [s / c for s in result.strengths]
    return result


def _project(kernel: SplineKernel, start: SpectralStart, grid: Grid) -> SplineKernel:
    """The surface-state pattern (``k``, ``delta``, ``tip_sigma`` and a scale, started at
    the spectral fit) closest to ``kernel`` within ``0.45 fov`` of the scatterer, where
    the images constrain it: the first refit corrects the start's ``k`` (coarse for a
    long wavelength: few rings of the spectrum hold the ring) but also carries the first
    detections' misses and extras, which the projection drops."""
    r = np.linspace(0.0, 0.45 * grid.fov, 300)
    v = kernel.radial(r)

    def model(p):
        m = _friedel_radial(p[0], p[1], p[2], r)
        return m * float(m @ v) / max(float(m @ m), 1e-300)

    x0 = [start.k, start.phase_shift, start.tip_sigma]
    fit = least_squares(lambda p: model(p) - v, x0,
                        bounds=([0.7 * start.k, start.phase_shift - np.pi, TIP_RANGE[0]],
                                [1.3 * start.k, start.phase_shift + np.pi, TIP_RANGE[1]]),
                        x_scale=[0.01 * start.k, 0.1, 0.05])
    k, delta, sigma = fit.x
    m = _friedel_radial(k, delta, sigma, r)
    c = float(m @ v) / max(float(m @ m), 1e-300)
    return _as_spline(lambda rr: c * _friedel_radial(k, delta, sigma, rr), _rmax(grid))


def _refit_2d(images, detections, op) -> Kernel:
    """The band-limited 2D kernel of :mod:`.calibrate` (twice as fine as the pixels) fitted
    to the images with the detections held; no kernel row (its weight is zero)."""
    from .calibrate import _calibrate_2d

    return _calibrate_2d(images, detections, op, oversample=2, smooth=1e-3, iterations=100,
                         row_weight=0.0, decay=0.1)


def _evidence(image, op, positions, strengths, sigma: float, detector) -> float:
    """How well a kernel's detections explain an image: chi² of the residual (constant
    background fitted) plus the prior odds the detector charges per scatterer."""
    r = image - op.image(positions, strengths).reshape(image.shape)
    r = r - r.mean()
    return float(np.sum(r**2) / sigma**2 + len(strengths) * detector._odds(len(strengths)))


@dataclass
class BlindKernel:
    """Kernel estimator ``blind``: :func:`blind_kernel`, from the images alone (the
    positions, when given, are not used). ``.result`` is the last run's record."""

    rounds: int = 3
    tol: float = 0.01
    isotropic: bool | None = None
    result: BlindResult | None = field(default=None, init=False, repr=False)

    def steps(self, n_images: int) -> int:
        return blind_steps(n_images, self.rounds)

    def estimate(self, images, grid: Grid, positions=None, on_step=None) -> Kernel:
        self.result = blind_kernel(images, grid, rounds=self.rounds, tol=self.tol,
                                   isotropic=self.isotropic, on_step=on_step)
        return self.result.kernel
