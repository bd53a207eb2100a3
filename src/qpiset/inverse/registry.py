"""The inverse methods by name: one registry that the command line (``qpiset detect
--method``, ``qpiset kernel --method``, ``qpiset bench --methods``), the benchmark and the
demo read. A method is its module plus one :func:`register_detector` (or
:func:`register_kernel_estimator`) line here, or a call from anywhere (a test, a plugin).

Learned methods need the extra ``ml`` (torch); their factories import it only when the
method is asked for, so everything else runs without torch.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..core.checks import as_image_stack
from .calibrate import CalibratedKernel
from .blind import BlindKernel
from .kernel import LeastSquaresKernel
from .matched import MatchedFilter
from .parallel import detect_images
from .protocols import Detections, Detector, KernelEstimator, check_operator
from .sparse import SparseDeconvolution

__all__ = ["DETECTORS", "KERNEL_ESTIMATORS", "Method", "register_detector",
           "register_kernel_estimator", "make_detector", "make_kernel_estimator", "detect",
           "estimate_kernel", "learned_available"]


@dataclass(frozen=True)
class Method:
    """A registered method: how to make it, a one-line summary, whether it is learned
    (needs torch; takes ``weights``), whether ``qpiset demo`` benchmarks it and whether
    it fits the kernel model of the forward operator (so that self-calibration refines
    what it uses)."""

    factory: Callable[..., Any]
    summary: str
    learned: bool = False
    demo: bool = True
    fits_kernel: bool = True


#: Detectors by name.
DETECTORS: dict[str, Method] = {}
#: Kernel estimators by name.
KERNEL_ESTIMATORS: dict[str, Method] = {}


def register_detector(name: str, factory: Callable[..., Detector], summary: str,
                      learned: bool = False, demo: bool = True,
                      fits_kernel: bool = True) -> None:
    """Add a detector: ``factory(**options)`` (learned ones also take ``weights=``) makes
    an object with ``detect(images, op) -> Detections``; ``demo``: whether ``qpiset demo``
    benchmarks it; ``fits_kernel``: whether it uses ``op``'s kernel model (not only the
    kernel row)."""
    DETECTORS[name] = Method(factory, summary, learned, demo, fits_kernel)


def register_kernel_estimator(name: str, factory: Callable[..., KernelEstimator], summary: str,
                              learned: bool = False) -> None:
    """Add a kernel estimator: ``factory(**options)`` makes an object with
    ``estimate(images, grid, positions=None) -> Kernel``."""
    KERNEL_ESTIMATORS[name] = Method(factory, summary, learned)


def learned_available() -> bool:
    """Whether torch (the ``ml`` extra) can be imported."""
    return importlib.util.find_spec("torch") is not None


def _make(registry: dict[str, Method], what: str, name: str, weights, options):
    try:
        method = registry[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; {what}s: {', '.join(registry)}") from None
    if method.learned:
        if not learned_available():
            raise ValueError(f"method {name!r} needs torch: pip install 'qpiset[ml]'")
        return method.factory(weights=weights, **options)
    return method.factory(**options)


def make_detector(name: str, weights=None, **options) -> Detector:
    """The detector registered as ``name``; ``weights`` (a checkpoint, default the shipped
    one) goes to learned detectors only. A bad checkpoint is a ``ValueError`` naming it."""
    return _make(DETECTORS, "detector", name, weights, options)


def make_kernel_estimator(name: str, weights=None, **options) -> KernelEstimator:
    """The kernel estimator registered as ``name`` (``weights`` as for detectors)."""
    return _make(KERNEL_ESTIMATORS, "kernel method", name, weights, options)


def worker_count(method: str, workers: int) -> int:
    """Processes that fit the images of ``method``: ``workers`` for a classical detector,
    1 for a learned one, whose network runs on whole batches in one process (a batch of one
    image in each of several processes would round its float32 sums differently, and the
    output would depend on the number of workers)."""
    return 1 if method in DETECTORS and DETECTORS[method].learned else max(int(workers), 1)


def detect(images, op, method: str = "sparse", weights=None, workers: int = 1,
           **options) -> Detections:
    """Scatterers in one image ``(R, R)`` or a batch ``(n, R, R)`` (a batch of one for a
    single image) with the forward operator ``op``, as ``qpiset detect`` finds them.

    Parameters
    ----------
    images : array_like
        One image ``(R, R)`` or a batch ``(n, R, R)``, indexed ``[iy, ix]``.
    op : Forward
        The forward operator of the images' kernel and grid (``file_operator(row, grid)``
        for a file's kernel row).
    method : str
        A name of :data:`DETECTORS`: ``"matched"``, ``"sparse"``, and with the extra ``ml``
        ``"unet"``, ``"hybrid"``.
    weights : path, optional
        Checkpoint of a learned method (default: the shipped weights).
    workers : int
        Processes fitting images side by side (:func:`detect_images`; classical detectors
        only, :func:`worker_count`); the detections do not depend on it. Spawned processes re-import the calling script: call from under
        ``if __name__ == "__main__":`` when ``workers > 1``.
    **options
        Options of the detector (e.g. ``threshold=`` for ``matched``).

    Returns
    -------
    Detections
        ``.positions`` (one ``(k, 2)`` array per image, Å), and ``.strengths`` or
        ``.confidence`` where the method gives them.

    Examples
    --------
    >>> from qpiset.core import Grid
    >>> from qpiset.forward import simulate
    >>> from qpiset.inverse import file_operator
    >>> from qpiset.physics import FriedelKernel
    >>> ds = simulate(FriedelKernel(), Grid(32, 50.0), n=1, seed=2, min_scatterers=3,
    ...               max_scatterers=3)
    >>> found = detect(ds.images, file_operator(ds.kernel, ds.grid))
    >>> len(found.positions[0])
    3
    """
    stack, _ = as_image_stack(images, check_operator(op).grid.resolution)
    detector = make_detector(method, weights=weights, **options)
    if worker_count(method, workers) == 1:
        return detector.detect(stack, op)
    return Detections.concat([d for d, _ in detect_images(detector, stack, op, workers)])


def estimate_kernel(images, grid, method: str = "lsq", positions=None, on_step=None,
                    **options):
    """The kernel of one image ``(R, R)`` or a batch ``(n, R, R)`` on ``grid`` with the
    estimator ``method`` (:data:`KERNEL_ESTIMATORS`; ``lsq`` needs ``positions``).

    Parameters
    ----------
    images : array_like
        One image or a batch, indexed ``[iy, ix]``.
    grid : Grid
        Their grid.
    method : str
        ``"lsq"``, ``"blind"``, or with the extra ``ml`` ``"vae"`` and ``"direct"``.
    positions : sequence of (k, 2) arrays, optional
        The scatterers of each image (Å), for ``lsq``.
    on_step : callable, optional
        Called with 1 after each step (``make_kernel_estimator(method).steps(n)`` of them).
    **options
        Options of the estimator (e.g. ``iterations=`` for ``blind``, ``weights=``).

    Returns
    -------
    Kernel
        The estimated model; ``kernel.sample(grid)`` is its kernel row.
    """
    stack, single = as_image_stack(images, grid.resolution)
    if single and positions is not None and len(positions) and np.ndim(positions[0]) == 1:
        positions = [positions]  # the positions of the one image
    return make_kernel_estimator(method, **options).estimate(stack, grid, positions,
                                                             on_step=on_step)


def _unet(weights=None, **options):
    from .learned.detector import UNetDetector

    return UNetDetector(weights, **options)


def _hybrid(weights=None, **options):
    from .learned.detector import HybridDetector

    return HybridDetector(weights, **options)


def _learned_kernel(method: str):
    def make(weights=None, **options):
        from .learned.kernel_vae import LearnedKernel

        return LearnedKernel(method, weights, **options)

    return make


register_detector("matched", MatchedFilter, "cross-correlation with the kernel and peak picking")
register_detector("sparse", SparseDeconvolution,
                  "non-negative l1 on a 2x grid, then continuous refinement and evidence-based "
                  "model selection")
register_detector("unet", _unet, "kernel-conditioned U-Net, shipped weights", learned=True,
                  fits_kernel=False)
register_detector("hybrid", _hybrid, "the U-Net's scatterers refined and model-selected by the "
                                     "physics fit of 'sparse' (its stages 3-4)", learned=True,
                  demo=False)
register_kernel_estimator("lsq", LeastSquaresKernel,
                          "least squares with the file's positions")
register_kernel_estimator("blind", BlindKernel, "from the images alone (a start fitted to their "
                                                "power spectrum, then alternating detection "
                                                "and least squares)")
register_kernel_estimator("calibrate", CalibratedKernel,
                          "the kernel row refined finer than the pixels with the scatterers "
                          "found in the images (self-calibration)")
register_kernel_estimator("vae", _learned_kernel("vae"),
                          "learned, two-step latent alignment", learned=True)
register_kernel_estimator("direct", _learned_kernel("direct"),
                          "learned, the one-step baseline", learned=True)
