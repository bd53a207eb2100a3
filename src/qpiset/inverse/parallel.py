"""Detection on several CPU cores: one image per task, in worker processes.

The fits of one image are many small, sequential steps (a Levenberg-Marquardt loop, model
selection), so the cores are used across images: each worker holds its own detector and
forward operator and fits whole images. A detector's answer for an image does not depend
on which worker fits it or on what it fitted before (every fit runs with one BLAS thread),
so the output is the same for any number of workers. Workers are *spawned*, not forked:
the renderer's compiled loops use OpenMP, which a forked process must not touch.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

import numpy as np

from .protocols import Detections

__all__ = ["detect_images"]

_WORKER: dict = {}


def _start(detector, op) -> None:
    """Worker initialiser: one thread for every library, and the detector bound to ``op``."""
    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(1)
    threadpool_limits(1)
    try:
        import torch
    except ImportError:  # the learned detectors are absent then anyway
        pass
    else:
        torch.set_num_threads(1)
    detector.detect(np.empty((0,) + op.grid.shape), op)  # set up for op once
    _WORKER["detector"], _WORKER["op"] = detector, op


def _fit_one(detector, op, image: np.ndarray) -> tuple[Detections, float]:
    t0 = time.perf_counter()
    found = detector.detect(image[None], op)
    return found, time.perf_counter() - t0


def _fit(image: np.ndarray):
    return _fit_one(_WORKER["detector"], _WORKER["op"], image)


def detect_images(detector, images: Iterable[np.ndarray], op, workers: int = 1,
                  on_image: Callable[[int], None] | None = None
                  ) -> Iterator[tuple[Detections, float]]:
    """Run ``detector`` on each image, in order, on ``workers`` processes.

    Parameters
    ----------
    detector : Detector
        Any detector (:func:`~qpiset.inverse.make_detector`); it must pickle.
    images : iterable of (R, R) arrays
        Read as the workers go (at most ``4 workers`` images ahead).
    op : Forward
        The forward operator of the images.
    workers : int
        Processes; 1 fits in this process.
    on_image : callable, optional
        Called with 1 after each image (a progress bar).

    Yields
    ------
    (Detections, seconds)
        One per image, in the images' order: its detections (a batch of one) and the
        seconds of its fit alone.

    Examples
    --------
    >>> from qpiset.core import Grid
    >>> from qpiset.forward import Forward
    >>> from qpiset.physics import FriedelKernel
    >>> from qpiset.inverse import SparseDeconvolution
    >>> op = Forward(FriedelKernel(), Grid(32, 50.0))
    >>> image = op.render([[-8.3, 2.1], [6.6, -4.0]])
    >>> [len(d.positions[0]) for d, _ in detect_images(SparseDeconvolution(), [image] * 2, op)]
    [2, 2]
    """
    step = on_image or (lambda k: None)
    if workers <= 1:
        for image in images:
            yield _fit_one(detector, op, np.asarray(image, dtype=np.float64))
            step(1)
        return
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start,
                               initargs=(detector, op))
    try:
        pending = []
        for image in images:
            pending.append(pool.submit(_fit, np.asarray(image, dtype=np.float64)))
            if len(pending) >= 4 * workers:
                yield pending.pop(0).result()
                step(1)
        for future in pending:
            yield future.result()
            step(1)
    finally:  # also when the caller stops early (an error, a signal): drop what is queued
        pool.shutdown(wait=True, cancel_futures=True)
