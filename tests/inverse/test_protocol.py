"""Every registered inverse method honours the protocol of :mod:`qpiset.inverse.protocols`.

Detectors (:data:`qpiset.inverse.DETECTORS`): ``detect(images (n, R, R), op) -> Detections``
with one entry per image, an empty batch included; per-scatterer lists (strengths,
confidence) have one value per position; a single image ``(R, R)`` is a batch of one for
:func:`qpiset.inverse.detect`. Kernel estimators (:data:`qpiset.inverse.KERNEL_ESTIMATORS`):
``estimate(images, grid, positions) -> Kernel`` whose ``sample(grid)`` is a kernel row.
Learned methods run only with torch (marked ``torch``: skipped without it).
"""

import numpy as np
import pytest

from qpiset.bench import aggregate, kernel_nmse, score_detections
from qpiset.core import Grid
from qpiset.forward import simulate
from qpiset.inverse import (DETECTORS, KERNEL_ESTIMATORS, Detections, Detector, KernelEstimator,
                            detect, file_operator, make_detector, make_kernel_estimator)
from qpiset.physics import FriedelKernel, Kernel

GRID = Grid(64, 100.0)  # the learned detector's and kernel models' training grid
SMALL = Grid(32, 60.0)  # for the blind kernel estimator (it fits many trial kernels)

#: The F1 (1.5 Å) every detector must reach on the 3 images of :func:`ds`, but the matched
#: filter: the classical baseline, whose correlation side lobes shift peaks of neighbouring
#: scatterers by more than the tolerance (benchmarks/README.md: F1 0.83-0.87 in the 1-10
#: band; here 0.68, the same as before the reorganisation, while sparse scores 1.0).
MIN_F1 = {"matched": 0.6}


def _by_name(registry, slow=()):
    """The registered names as test parameters: learned ones need torch."""
    return [pytest.param(name, id=name,
                         marks=([pytest.mark.torch] if method.learned else [])
                         + ([pytest.mark.slow] if name in slow else []))
            for name, method in registry.items()]


@pytest.fixture(scope="module")
def ds():
    """3 images, 5-10 scatterers each, noise 0.1 of each image's std."""
    return simulate(FriedelKernel("Cu(111)", energy=0.0), GRID, n=3, seed=11, min_scatterers=5,
                    max_scatterers=10, noise=0.1)


@pytest.fixture(scope="module")
def op(ds):
    return file_operator(ds.kernel, ds.grid)


@pytest.fixture(scope="module")
def easy():
    """Two noise-free images of ten scatterers on a small grid."""
    return simulate(FriedelKernel("Cu(111)", energy=0.0), SMALL, n=2, seed=24,
                    min_scatterers=10, max_scatterers=10)


def _check_lists(found: Detections, n: int) -> None:
    assert isinstance(found, Detections) and len(found) == n and len(found.positions) == n
    for p in found.positions:
        assert p.ndim == 2 and p.shape[1] == 2 and np.all(np.isfinite(p))
    for name in ("strengths", "confidence"):
        lists = getattr(found, name)
        if lists is not None:
            assert len(lists) == n, name
            assert [len(v) for v in lists] == [len(p) for p in found.positions], name
            assert all(np.all(np.isfinite(v)) for v in lists), name
    if found.confidence is not None:
        assert all(np.all((c >= 0) & (c <= 1)) for c in found.confidence)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = a[np.lexsort(a.T)], b[np.lexsort(b.T)]
    return a.shape == b.shape and np.allclose(a, b, atol=1e-4)


def test_the_registries_name_the_documented_methods():
    assert {"matched", "sparse", "unet", "hybrid"} <= set(DETECTORS)
    assert {"lsq", "blind", "vae", "direct"} <= set(KERNEL_ESTIMATORS)
    assert not DETECTORS["sparse"].learned and DETECTORS["unet"].learned
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        make_detector("nope")
    with pytest.raises(ValueError, match="unknown kernel method 'nope'"):
        make_kernel_estimator("nope")


@pytest.mark.parametrize("name", _by_name(DETECTORS))
def test_detector_protocol(name, ds, op):
    det = make_detector(name)
    assert isinstance(det, Detector)
    # an empty batch: empty detections (the benchmark warms detectors up with one)
    empty = det.detect(np.empty((0,) + GRID.shape), op)
    _check_lists(empty, 0)
    # a batch of three: one position list each, and good ones
    found = det.detect(ds.images, op)
    _check_lists(found, 3)
    s = aggregate(score_detections(t, p, 1.5) for t, p in zip(ds.positions, found.positions))
    assert s.f1 >= MIN_F1.get(name, 0.8), (name, s.f1, s.precision, s.recall)
    # a single image: qpiset.inverse.detect treats it as a batch of one
    one = detect(ds.images[0], op, name)
    _check_lists(one, 1)
    assert _same(one.positions[0], found.positions[0]), name
    # the detector itself: refused with a clear ValueError, or a batch of one as well
    try:
        direct = det.detect(ds.images[0], op)
    except ValueError as exc:
        assert "(n, R, R)" in str(exc) or "shape" in str(exc), str(exc)
    else:
        _check_lists(direct, 1)
        assert _same(direct.positions[0], found.positions[0]), name
    # images that do not fit the operator's grid are refused
    with pytest.raises(ValueError, match="px"):
        det.detect(np.zeros((1, 32, 32)), op)


@pytest.mark.parametrize("name", _by_name(KERNEL_ESTIMATORS))  # blind: about 3 s
def test_kernel_estimator_protocol(name, ds, easy):
    # blind with a smaller search than its default (test_kernel_estimation.py runs that)
    data = ds if KERNEL_ESTIMATORS[name].learned else easy  # learned: their training grid
    options = {"blind": {"rounds": 1}, "calibrate": {"row": data.kernel}}
    est = make_kernel_estimator(name, **options.get(name, {}))
    assert isinstance(est, KernelEstimator)
    kernel = est.estimate(np.asarray(data.images), data.grid, data.positions)
    assert isinstance(kernel, Kernel), type(kernel)
    row = kernel.sample(data.grid)
    assert row.shape == data.grid.shape and np.all(np.isfinite(row))
    error = kernel_nmse(row, data.kernel)
    if name == "calibrate":  # the row refined: it still reproduces the row
        assert error < 1e-3, (name, error)
    elif name == "lsq":
        assert error < 0.2, (name, error)
    elif name == "blind":  # one round (the default is up to 3)
        assert error < 0.25, (name, error)  # the full estimate's
        # bound is in test_kernel_estimation.py
    else:
        # learned: their held-out bound (test_learned.py; vae 0.11, direct 0.43 here)
        assert error < 0.6, (name, error)


def test_lsq_needs_positions(easy):
    with pytest.raises(ValueError, match="needs the scatterer positions"):
        make_kernel_estimator("lsq").estimate(easy.images, easy.grid)
