"""Any kernel shape in the fits, and self-calibration, measured against known truth."""

import json

import numpy as np
import pytest

from qpiset.bench import aggregate, markdown_table, run_benchmark, score_detections
from qpiset.core import Grid
from qpiset.core.errors import FormatError
from qpiset.forward import Forward, simulate
from qpiset.inverse import (Detections, MatchedFilter, SparseDeconvolution, calibrate_kernel,
                            calibrated_operator, file_kernel, file_operator)
from qpiset.inverse.calibrate import _converged
from qpiset.io import load_kernel_model, save_kernel_model
from qpiset.physics import (FriedelKernel, ImageKernel, SampledKernel, SampledKernel2D,
                            SplineKernel, make_kernel)

SMALL = Grid(32, 50.0)


@pytest.fixture(scope="module")
def lattice():
    return make_kernel("lattice", structure="square", mu=-1.0, energy=0.1, reach=60.0)


def _f1(ds, found):
    return aggregate(score_detections(t, p) for t, p in zip(ds.positions, found.positions)).f1


def test_the_2d_fit_model_matches_the_kernel_and_its_jacobian(lattice):
    op = Forward(lattice, SMALL)
    rng = np.random.default_rng(0)
    pos = rng.uniform(-20, 20, (4, 2))
    s = rng.uniform(0.5, 1.5, 4)
    X, Y = SMALL.meshgrid()
    exact = sum(si * lattice.evaluate(X - p[0], Y - p[1]) for p, si in zip(pos, s))
    axis = np.linspace(-2, 2, 401)
    peak = np.abs(lattice.evaluate_grid(axis, axis)).max()  # the row misses it (5x lower)
    img, J = op.image_and_jacobian(pos, s)
    assert np.abs(img - exact.ravel()).max() < 1e-3 * peak  # cubic convolution, pitch / 8
    assert np.abs(op.render(pos, s) - exact).max() < 1e-3 * peak  # the simulator agrees
    h = 1e-4  # the Jacobian against central differences of the same model
    for col in (3, 4, 10):  # d/dx_1, d/dy_1, d/dy_3
        p1, p2 = pos.copy(), pos.copy()
        p1[col // 3, col % 3] += h
        p2[col // 3, col % 3] -= h
        fd = (op.image(p1, s) - op.image(p2, s)) / (2 * h)
        assert np.abs(J[:, col] - fd).max() < 0.05 * np.abs(fd).max()
    # strengths: the columns are the patterns; windows crop them
    assert np.allclose(J[:, 2::3] @ s, img)
    w = op.window(pos[0], 5)
    assert np.allclose(w.image(pos, s), w.crop(img))


def test_an_anisotropic_row_keeps_its_shape(lattice):
    row = Forward(lattice, SMALL).kernel_row
    K = file_kernel(row, SMALL)
    assert isinstance(K, SampledKernel2D) and K.anisotropy > 0.02
    X, Y = SMALL.meshgrid()
    inner = (np.abs(X) < 0.8 * SMALL.fov / 2) & (np.abs(Y) < 0.8 * SMALL.fov / 2)
    assert np.allclose(K.evaluate(X, Y)[inner], row[inner], atol=1e-12)
    assert make_kernel(**K.params()) == K
    # an isotropic row stays the radial model
    assert isinstance(file_kernel(Forward(FriedelKernel(), SMALL).kernel_row, SMALL),
                      SampledKernel)


def test_sparse_and_matched_fit_an_anisotropic_model(lattice):
    ds = simulate(lattice, SMALL, n=4, seed=3, min_scatterers=4, max_scatterers=8, noise=0.05)
    op = Forward(lattice, SMALL, row=ds.kernel)
    assert _f1(ds, SparseDeconvolution().detect(ds.images, op)) >= 0.95
    assert _f1(ds, MatchedFilter().detect(ds.images, op)) > 0.5


def _calibrated_on_truth(kernel, n, seed, most, noise):
    """The row's operator and the kernel calibrated with the true scatterers."""
    ds = simulate(kernel, SMALL, n=n, seed=seed, min_scatterers=10, max_scatterers=most,
                  noise=noise)
    op = file_operator(ds.kernel, SMALL)
    found = Detections(ds.positions, [np.ones(len(p)) for p in ds.positions])
    return op, calibrate_kernel(ds.images, found, op)


def test_2d_calibration_with_known_scatterers_recovers_the_kernel_between_pixels(lattice):
    op, K = _calibrated_on_truth(lattice, 30, 5, 25, 0.1)
    assert isinstance(K, ImageKernel)
    axis = np.linspace(-15, 15, 121)  # a quarter pixel: between the row's samples
    truth = lattice.evaluate_grid(axis, axis)
    err_row = np.sqrt(np.mean((op.kernel.evaluate_grid(axis, axis) - truth) ** 2))
    err_cal = np.sqrt(np.mean((K.evaluate_grid(axis, axis) - truth) ** 2))
    assert err_cal < 0.5 * err_row


def test_radial_calibration_finds_the_kernel_inside_the_nearest_pixel():
    sharp = FriedelKernel(tip_sigma=0.3)
    op, K = _calibrated_on_truth(sharp, 12, 1, 20, 0.05)
    assert isinstance(K, SplineKernel)
    r = np.linspace(0.0, 1.2, 25)  # inside the nearest pixel (1.1 Å): the row is blind here
    err_row = np.abs(op.kernel.radial(r) - sharp.radial(r)).max()
    err_cal = np.abs(K.radial(r) - sharp.radial(r)).max()
    assert err_cal < 0.5 * err_row


def test_calibrated_operator_says_when_it_keeps_the_row(lattice):
    few = simulate(FriedelKernel(), SMALL, n=12, seed=2, max_scatterers=3)
    op = file_operator(few.kernel, SMALL)
    off = calibrated_operator(few.images, op, "off")
    assert off.op is op and off.skipped == "not asked for"
    cal = calibrated_operator(few.images, op, "auto")
    assert cal.op is op and "fewer than 1000" in cal.skipped and cal.rounds == 0
    short = calibrated_operator(few.images[:5], op, "auto")
    assert "fewer than 10" in short.skipped
    aniso = file_operator(Forward(lattice, SMALL).kernel_row, SMALL)
    assert "anisotropic" in calibrated_operator(few.images, aniso, "auto").skipped
    with pytest.raises(ValueError, match="auto, on or off"):
        calibrated_operator(few.images, op, "maybe")


@pytest.mark.slow  # about 30 s: three rounds of detection on 10 images, twice
def test_calibration_runs_and_stops_by_its_rule():
    sharp = FriedelKernel(tip_sigma=0.3)
    ds = simulate(sharp, SMALL, n=10, seed=4, min_scatterers=25, max_scatterers=40,
                  noise=0.1)
    op = file_operator(ds.kernel, SMALL)
    cal = calibrated_operator(ds.images, op, "on", rounds=4, tol=0.01)
    assert cal.skipped is None and 1 <= cal.rounds <= 4
    assert cal.changes[-1] < 0.01 or cal.changes[-1] < cal.changes[-2]
    assert np.array_equal(cal.op.kernel_row, op.kernel_row)  # the row stays the file's
    rec = json.loads(json.dumps(cal.record()))
    assert rec["applied"] and rec["kernel"]["model"] == "spline"
    # the benchmark calibrates the same way, records it and says so in its table
    res = run_benchmark(ds, ["sparse", "oracle"], calibrate="on")
    assert res["config"]["calibration"]["changes"] == rec["changes"][:3]  # 3 rounds here
    assert "Kernel: self-calibrated on 10 images" in markdown_table(res)
    off = run_benchmark(ds, ["sparse"], calibrate="off")
    assert off["config"]["calibration"] is None
    auto = run_benchmark(ds, ["sparse"])  # ~330 scatterers: too few to calibrate by default
    assert "fewer than 1000" in auto["config"]["calibration"]["skipped"]
    # the calibrated kernel is nearer the continuous one (the physics model) than the row's
    # model, inside the nearest pixel most (0.45 -> 0.12 of the peak, RMS, when written).
    # Not asserted: better positions from it. With ~330 scatterers the fits with it were
    # worse or better by chance (RMSE 0.31 or 0.36 Å against 0.32 Å; F1 0.84-0.99), which
    # is why calibration by default needs 1,000 scatterers (auto, above).
    r = np.linspace(0.0, 20.0, 401)
    truth = sharp.radial(r)

    def error(kernel, near):
        e = (kernel.radial(r) - truth)[r < near]
        return np.sqrt(np.mean(e**2)) / np.abs(truth).max()

    for near in (1.6, 20.5):
        assert error(cal.op.kernel, near) < 0.5 * error(op.kernel, near), near


def test_the_convergence_rule():
    assert _converged([0.2, 0.009], 0.01, 0.05)  # below tol
    assert _converged([0.12, 0.013, 0.0102], 0.01, 0.05)  # shrinking and below accept
    assert not _converged([0.030, 0.031, 0.033], 0.01, 0.05)  # drifting with the noise
    assert not _converged([0.137, 0.126, 0.145], 0.01, 0.05)
    assert not _converged([0.2, 0.06], 0.01, 0.05)  # shrinking but still large
    assert not _converged([0.03], 0.01, 0.05)


@pytest.mark.parametrize("kernel", [FriedelKernel(tip_sigma=0.3),
                                    SplineKernel(np.r_[[0.0] * 3, np.arange(0, 10.5, 0.5),
                                                       [10.0] * 3], np.linspace(1, 0, 24)),
                                    ImageKernel(image=np.arange(81.0).reshape(9, 9), fov=8.0)])
def test_kernel_models_round_trip_bit_exactly(tmp_path, kernel):
    path = tmp_path / "k.npz"
    save_kernel_model(path, kernel)
    back = load_kernel_model(path)
    assert back == kernel and type(back) is type(kernel)
    for key, value in kernel.params().items():
        assert np.array_equal(np.asarray(back.params()[key]), np.asarray(value))


def test_a_bad_kernel_model_file_is_named(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="bad.npz"):
        load_kernel_model(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(FormatError, match="not a qpiset kernel model"):
        load_kernel_model(other)
    with pytest.raises(FormatError, match="no such file"):
        load_kernel_model(tmp_path / "missing.npz")
