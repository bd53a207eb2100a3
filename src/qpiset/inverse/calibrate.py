"""Self-calibration: the kernel refined jointly with the scatterers, finer than the pixels.

A file's kernel row samples ``K`` on the pixel grid only, so between pixels it says
nothing (the bicubic or radial interpolation of the row guesses). But a file holds
thousands of scatterers at random sub-pixel offsets: with their positions known to a
fraction of a pixel, the images sample ``K`` much more finely than the row. Calibration
alternates the two fits:

1. detect the scatterers of the first ``images`` images with the current kernel;
2. refit the kernel to those images with the detections held (the images are linear in
   ``K``), the file's row kept as data (one scatterer of strength 1 at the origin, no
   noise: it pins the scale and the values at the pixels);

and stops when the kernel changes by less than ``tol`` (relative RMS at the pixels of the
row's field and between them) or after ``rounds`` rounds. A calibration that has not
converged by then (its last change above ``tol`` and not shrinking, or above ``accept``)
is dropped and the row kept, and the record says why: at high noise the detections'
misses and extras pull the kernel round by round, and a kernel already smooth at the pixel
scale (the dataset's 1 Å tip) only drifts with the noise.

The kernel models (step 2):

- **isotropic**: a radial cubic B-spline (knots every 0.25 Å to 8 Å, then every 0.5 Å),
  by linear least squares with a light second-difference penalty
  (:func:`~qpiset.inverse.kernel.kernel_from_positions`);
- **any shape**: ``K`` on a square grid ``oversample`` times finer than the pixels,
  band-limited (its trigonometric interpolant), so an image of scatterers at
  continuous positions is exact in Fourier space, ``Y(q) = K(q) sum_i s_i exp(-i q r_i)``,
  sampled at the pixels. The least-squares problem with the penalty
  ``lam ||laplacian K||²`` (which only damps what the data leave free) is solved by
  conjugate gradients on the normal equations, two FFTs per image and iteration, started
  from the current kernel. The result is tabulated four times finer and interpolated by a
  bicubic spline (:class:`~qpiset.physics.ImageKernel`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from scipy.sparse.linalg import LinearOperator, cg

from ..core.grid import Grid
from ..forward import Forward
from ..physics import ImageKernel, Kernel
from .kernel import kernel_from_positions
from .protocols import Detections

__all__ = ["calibrate_kernel", "calibrate", "calibrated_operator", "Calibration",
           "calibration_steps", "CalibratedKernel", "MIN_SCATTERERS", "MIN_IMAGES",
           "CALIBRATION_IMAGES"]

#: Fewest scatterers found in the images used for which calibration goes on by default:
#: below it the row is used as it is (10 images of 32 px with 350 scatterers gave a
#: noisier kernel than the row: F1 0.994 -> 0.919; 20 of 64 px with 1,500 a better one).
MIN_SCATTERERS = 1000
#: Fewest images a file must have for calibration to run by default.
MIN_IMAGES = 10
#: How many of a file's first images calibration uses by default.
CALIBRATION_IMAGES = 20


def _fine_axes(grid: Grid, oversample: int, reach: float):
    """``(h, M, d)``: the fine step, the periodic grid's size and its offsets (FFT
    layout, index 0 at offset 0)."""
    h = grid.pitch / oversample
    M = scipy.fft.next_fast_len(2 * int(np.ceil(reach / h)) + 2, real=True)
    M += M % 2
    d = scipy.fft.ifftshift((np.arange(M) - M // 2) * h)
    return h, M, d


class _FourierModel:
    """The images' linear map from ``K`` on the fine periodic grid ``(M, M)`` (FFT
    layout) to the pixels, for known scatterers; its normal operator."""

    def __init__(self, grid: Grid, oversample: int, reach: float) -> None:
        self.o = int(oversample)
        self.h, self.M, self.d = _fine_axes(grid, self.o, reach)
        self.qx = 2 * np.pi * np.fft.rfftfreq(self.M, self.h)
        self.qy = 2 * np.pi * np.fft.fftfreq(self.M, self.h)
        self.x0 = float(grid.x[0])
        self.at_pixels = (slice(0, self.o * grid.resolution, self.o),) * 2
        self.spectra: list[np.ndarray] = []
        self.weights: list[float] = []

    def add(self, positions, strengths, weight: float = 1.0) -> None:
        """One image's scatterers: its ``sum_i s_i exp(-i q (r_i - x0))``."""
        pos = np.asarray(positions, float).reshape(-1, 2)
        s = np.asarray(strengths, float).reshape(-1)
        ex = np.exp(-1j * np.outer(pos[:, 0] - self.x0, self.qx))
        ey = np.exp(-1j * np.outer(pos[:, 1] - self.x0, self.qy))
        self.spectra.append((ey * s[:, None]).T @ ex)
        self.weights.append(float(weight))

    def pixels(self, fine: np.ndarray) -> np.ndarray:
        """The fine image's values at the pixels, ``(R, R)`` ``[iy, ix]``."""
        return fine[self.at_pixels]

    def spread(self, values: np.ndarray) -> np.ndarray:
        """A fine image with ``values`` ``(R, R)`` at the pixels and zero between them
        (the adjoint of :meth:`pixels`)."""
        fine = np.zeros((self.M, self.M))
        fine[self.at_pixels] = values
        return fine

    def image(self, K: np.ndarray, n: int) -> np.ndarray:
        spec = scipy.fft.rfft2(K)
        return self.pixels(scipy.fft.irfft2(spec * self.spectra[n], s=(self.M, self.M)))

    def adjoint_data(self, images) -> np.ndarray:
        """``sum_n w_n A_n^T y_n``."""
        total = np.zeros((self.M, self.M // 2 + 1), complex)
        for S, w, y in zip(self.spectra, self.weights, images):
            total += w * np.conj(S) * scipy.fft.rfft2(self.spread(y))
        return scipy.fft.irfft2(total, s=(self.M, self.M))

    def normal(self, K: np.ndarray, b: np.ndarray, penalty: np.ndarray,
               ridge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The normal operator of the kernel and the images' backgrounds ``b`` (the row's,
        the last, is held at 0): ``(A^T (A K + b) + lam L^T L K + ridge K, sum(A K + b))``
        per image; ``penalty = lam |q|^4`` (rfft layout)."""
        spec = scipy.fft.rfft2(K)
        total = penalty * spec
        sums = np.zeros(len(self.spectra))
        for n, (S, w) in enumerate(zip(self.spectra, self.weights)):
            pred = self.pixels(scipy.fft.irfft2(spec * S, s=(self.M, self.M))) + b[n]
            total += w * np.conj(S) * scipy.fft.rfft2(self.spread(pred))
            sums[n] = w * pred.sum()
        sums[-1] = b[-1]  # the row has no background: its equation is b = 0
        return scipy.fft.irfft2(total, s=(self.M, self.M)) + ridge * K, sums


def _backgrounds(images, model_images) -> list[float]:
    return [float(np.mean(y - m)) for y, m in zip(images, model_images)]


def _calibrate_2d(images, detections: Detections, op: Forward, oversample: int,
                  smooth: float, iterations: int, row_weight: float,
                  decay: float) -> Kernel:
    grid = op.grid
    reach = grid.fov + 4 * grid.pitch
    model = _FourierModel(grid, oversample, reach)
    strengths = detections.strengths or [np.ones(len(p)) for p in detections.positions]
    for pos, s in zip(detections.positions, strengths):
        model.add(pos, s)
    n = len(model.spectra)
    model.add(np.zeros((1, 2)), np.ones(1), weight=row_weight * max(n, 1))
    axis = scipy.fft.fftshift(model.d)  # increasing
    K0 = scipy.fft.ifftshift(op.kernel.evaluate_grid(axis, axis))
    data = [np.asarray(y, float) for y in images] + [np.asarray(op.kernel_row, float)]
    b0 = np.array(_backgrounds(data[:n], [model.image(K0, i) for i in range(n)]) + [0.0])
    q2 = model.qy[:, None] ** 2 + model.qx[None, :] ** 2
    # the data's weight per fine node: sum of w s² over the scatterers, a pixel node in o²
    scale = (sum(float(np.sum(np.asarray(s) ** 2)) for s in strengths) + row_weight * max(n, 1)
             ) / oversample**2
    lam = smooth * scale * (model.h / np.pi) ** 4
    penalty = lam * q2**2
    r = np.hypot(model.d[:, None], model.d[None, :])
    ridge = decay * scale * (r / (grid.fov / 2)) ** 4
    M = model.M

    def matvec(v):
        k, bb = model.normal(v[: M * M].reshape(M, M), v[M * M:], penalty, ridge)
        return np.concatenate([k.ravel(), bb])

    A = LinearOperator((M * M + n + 1,) * 2, dtype=float, matvec=matvec)
    sums = [w * float(np.sum(y)) for y, w in zip(data, model.weights)]
    rhs = np.concatenate([model.adjoint_data(data).ravel(), sums[:-1], [0.0]])
    sol, _ = cg(A, rhs, x0=np.concatenate([K0.ravel(), b0]), rtol=1e-7, maxiter=iterations)
    return _as_image_kernel(sol[: M * M].reshape(M, M), model, reach)


def _as_image_kernel(K: np.ndarray, model: _FourierModel, reach: float,
                     refine: int = 4) -> ImageKernel:
    """The band-limited fine kernel tabulated ``refine`` times finer (its trigonometric
    interpolant: Fourier resampling), cropped to ``±reach``, as an image kernel."""
    big = model.M * refine  # offset 0 at index 0, then (fftshift) at index big // 2
    from scipy.signal import resample  # here: importing scipy.signal takes half a second

    fine = scipy.fft.fftshift(resample(resample(K, big, axis=0), big, axis=1))
    h = model.h / refine
    c = int(np.ceil(reach / h))
    mid = big // 2
    image = fine[mid - c: mid + c + 1, mid - c: mid + c + 1]
    return ImageKernel(image=image, fov=2 * c * h, taper=0.02)


def _calibrate_radial(images, detections: Detections, op: Forward, smooth: float,
                      row_weight: float) -> Kernel:
    n = len(detections.positions)
    strengths = detections.strengths or [np.ones(len(p)) for p in detections.positions]
    imgs = [np.asarray(y, float) for y in images] + [np.asarray(op.kernel_row, float)]
    pos = list(detections.positions) + [np.zeros((1, 2))]
    s = list(strengths) + [np.ones(1)]
    weights = [1.0] * n + [row_weight * max(n, 1)]
    return kernel_from_positions(imgs, pos, op.grid, s, smooth=smooth, weights=weights,
                                 backgrounds=[True] * n + [False])


def calibrate_kernel(images, detections: Detections, op: Forward, *, oversample: int = 2,
                     smooth: float | None = None, decay: float = 0.1,
                     iterations: int = 200,
                     row_weight: float = 1.0) -> Kernel:
    """The kernel refitted to ``images`` with the scatterers of ``detections`` held, and
    the operator's kernel row as noise-free data (module docs).

    Parameters
    ----------
    images : (n, R, R) array
    detections : Detections
        Their scatterers (positions in Å, strengths).
    op : Forward
        The current forward operator: its kernel starts the fit, its row is data.
    oversample : int
        How much finer than the pixels the 2D model is.
    smooth : float, optional
        Weight of the smoothness penalty relative to the data (default 1e-6 for the radial
        model's second differences, 1e-3 for the 2D model's Laplacian).
    decay : float
        Weight of the penalty ``(r / (fov/2))^4 K²`` (2D model): where few pixel pairs
        sample the kernel, far from its scatterer, it is drawn to zero.
    iterations : int
        Conjugate-gradient iterations of the 2D model.
    row_weight : float
        Weight of the row relative to all the images together.

    Returns
    -------
    Kernel
        A radial spline (isotropic ``op``) or an image kernel on a fine grid.
    """
    if op.kernel.isotropic:
        return _calibrate_radial(images, detections, op, 1e-6 if smooth is None else smooth,
                                 row_weight)
    return _calibrate_2d(images, detections, op, oversample, 1e-3 if smooth is None else smooth,
                         iterations, row_weight, decay)


@dataclass
class Calibration:
    """What :func:`calibrate` did: the calibrated operator, its kernel, and per round the
    relative change of the kernel and the scatterers it used."""

    op: Forward
    kernel: Kernel
    changes: list[float] = field(default_factory=list)
    scatterers: list[int] = field(default_factory=list)
    images: int = 0
    #: Why the row was kept as it is (``None`` when calibration ran).
    skipped: str | None = None
    seconds: float = 0.0

    @property
    def rounds(self) -> int:
        return len(self.changes)

    def record(self) -> dict:
        """A JSON record (for result files)."""
        return {"applied": self.skipped is None, "skipped": self.skipped,
                "rounds": self.rounds, "images": self.images, "scatterers": self.scatterers,
                "changes": [round(c, 6) for c in self.changes],
                "seconds": round(self.seconds, 3), "kernel": self.kernel.describe()}


def _change(old: Kernel, new: Kernel, grid: Grid) -> float:
    """Relative RMS change of the kernel on a grid twice as fine as the pixels, over the
    row's field."""
    axis = np.linspace(-grid.fov / 2, grid.fov / 2, 2 * grid.resolution - 1)
    a, b = old.evaluate_grid(axis, axis), new.evaluate_grid(axis, axis)
    return float(np.sqrt(np.mean((a - b) ** 2) / max(np.mean(b**2), 1e-300)))


def _converged(changes: list[float], tol: float, accept: float) -> bool:
    """The rule: the last change is below ``tol``, or below ``accept`` and smaller than
    the one before (still shrinking)."""
    last = changes[-1]
    return last < tol or (len(changes) > 1 and last < min(accept, changes[-2]))


def calibrate(images, op: Forward, detector, *, rounds: int = 3, tol: float = 0.01,
              accept: float = 0.05, first=None, min_scatterers: int = MIN_SCATTERERS,
              on_step=None, **options) -> Calibration:
    """Alternate detection and :func:`calibrate_kernel` on ``images`` (module docs).

    Parameters
    ----------
    images : (n, R, R) array
        The images to calibrate on (a file's first few dozen suffice).
    op : Forward
        The starting operator (a file's :func:`file_operator`); its row stays the row.
    detector : Detector
        Finds the scatterers each round (``sparse``).
    rounds : int
        At most this many rounds.
    tol : float
        Stop when the kernel changes by less than this (relative RMS, :func:`_change`).
    accept : float
        Keep the row unless the last change is below ``tol``, or below ``accept`` and
        smaller than the one before (:func:`_converged`).
    first : Detector, optional
        Finds the scatterers of the first round instead (e.g. the learned ``unet``).
    min_scatterers : int
        Keep the row as it is when the first round finds fewer scatterers than this.
    on_step : callable, optional
        Called with 1 after each image detected and each kernel fit.
    **options
        Options of :func:`calibrate_kernel`.

    Returns
    -------
    Calibration
        ``.op`` is the calibrated forward operator.
    """
    step = on_step or (lambda k: None)
    start = time.perf_counter()
    images = np.asarray(images, float)
    result = Calibration(op, op.kernel, images=len(images))
    current = op
    for round_ in range(rounds):
        parts = []
        finder = first if round_ == 0 and first is not None else detector
        for img in images:
            parts.append(finder.detect(img[None], current))
            step(1)
        found = Detections.concat(parts)
        if round_ == 0 and found.counts.sum() < min_scatterers:
            result.skipped = (f"{int(found.counts.sum())} scatterers found in {len(images)} "
                              f"images, fewer than {min_scatterers}")
            break
        kernel = calibrate_kernel(images, found, current, **options)
        step(1)
        change = _change(current.kernel, kernel, op.grid)
        current = Forward(kernel, op.grid, row=op.kernel_row, backend=op.backend.name)
        result.changes.append(change)
        result.scatterers.append(int(found.counts.sum()))
        result.op, result.kernel = current, kernel
        if change < tol:
            break
    if result.changes and not _converged(result.changes, tol, accept):
        result.skipped = (f"did not converge in {result.rounds} rounds (changes "
                          f"{', '.join(f'{c:.1%}' for c in result.changes)})")
        result.op, result.kernel = op, op.kernel
    result.seconds = time.perf_counter() - start
    return result


def calibrated_operator(images, op: Forward, mode: str = "auto", *, detector=None,
                        on_step=None, **options) -> Calibration:
    """The operator the classical detectors should use for a file's images: calibrated
    (:func:`calibrate` on the first :data:`CALIBRATION_IMAGES`) or the row as it is.

    ``mode``: ``"off"``; ``"on"`` (whatever the kernel and the count); ``"auto"`` (the
    default of ``qpiset detect`` and ``bench``): on for an isotropic kernel when the file
    has at least :data:`MIN_IMAGES` images and they hold at least :data:`MIN_SCATTERERS`
    scatterers (found in the first round; a matched-filter count that finds fewer than
    half as many skips the rounds). The 2D model is not calibrated by default: from the
    detections a poor row model gives (an aliased lattice kernel), the alternation does not
    converge (``benchmarks/README.md``).
    """
    from .sparse import SparseDeconvolution

    if mode not in ("auto", "on", "off"):
        raise ValueError(f"calibration mode must be auto, on or off, got {mode!r}")
    n = len(images)
    reason = None
    if mode == "off":
        reason = "not asked for"
    elif mode == "auto" and not op.kernel.isotropic:
        reason = "an anisotropic kernel is calibrated only when asked (--calibrate on)"
    elif mode == "auto" and n < MIN_IMAGES:
        reason = f"{n} images, fewer than {MIN_IMAGES}"
    if reason is not None:
        return Calibration(op, op.kernel, images=0, skipped=reason)
    use = np.asarray(images[:CALIBRATION_IMAGES], float)
    if mode == "on":  # asked for: however few scatterers there are
        options.setdefault("min_scatterers", 1)
    else:  # a count in milliseconds before the rounds: clearly too few, no rounds
        from .matched import MatchedFilter

        rough = int(MatchedFilter().detect(use, op).counts.sum())
        if rough < MIN_SCATTERERS // 2:
            return Calibration(op, op.kernel, images=0,
                               skipped=f"about {rough} scatterers in {len(use)} images (matched "
                                       f"filter), fewer than {MIN_SCATTERERS}")
    return calibrate(use, op, detector or SparseDeconvolution(), on_step=on_step, **options)


def calibration_steps(n_images: int, rounds: int = 3) -> int:
    """Most steps :func:`calibrated_operator` reports for a file of ``n_images``."""
    return rounds * (min(n_images, CALIBRATION_IMAGES) + 1)


@dataclass
class CalibratedKernel:
    """Kernel estimator ``calibrate``: :func:`calibrate` from the file's kernel row
    (``row=``, which ``qpiset kernel`` passes) and its images; the model is finer than
    the grid (save it with :func:`qpiset.io.save_kernel_model`). Asked for explicitly, it
    returns the last round's kernel even when the rounds did not converge;
    ``.calibration`` is then the record to look at."""

    row: np.ndarray | None = None
    rounds: int = 3
    calibration: Calibration | None = field(default=None, init=False, repr=False)

    def steps(self, n_images: int) -> int:
        return self.rounds * (n_images + 1)

    def estimate(self, images, grid: Grid, positions=None, on_step=None) -> Kernel:
        from .file_kernel import file_operator
        from .sparse import SparseDeconvolution

        if self.row is None:
            raise ValueError("method 'calibrate' needs the file's kernel row (row=)")
        op = file_operator(self.row, grid)
        cal = calibrate(images, op, SparseDeconvolution(), rounds=self.rounds,
                        on_step=on_step, min_scatterers=1, accept=np.inf)
        self.calibration = cal
        return cal.kernel
