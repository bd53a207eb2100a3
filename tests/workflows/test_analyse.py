"""Measured maps analysed: features, the standing-wave period, reciprocal space, the band,
the averaged kernel, tiles, `qpiset analyse` and `qpiset convert MAP` — on maps with known
answers (simulated, written through a Nanonis .sxm) and on the real files of
../shared/realdata (skipped, with the reason, where that folder is absent)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qpiset
from qpiset.cli.main import cli
from qpiset.core import Grid, Measurement
from qpiset.forward import Forward
from qpiset.inverse.dispersion import fit_parabolic_band
from qpiset.inverse.features import find_features
from qpiset.inverse.mapping import average_kernel, detect_map, tile_origins
from qpiset.inverse.period import standing_wave_period
from qpiset.inverse.qspace import BraggPeak, lattice_peaks, ring_radius
from qpiset.physics import FriedelKernel
from qpiset.workflows.analyse import analyse_map, measurement_dataset, parse_crop

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
CREATEC = REALDATA / "createc-probeflow"
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(),
                                    reason=f"the real measurements are not at {REALDATA}")


def write_sxm(path, data, size, bias=0.1, channel="Z", unit="m"):
    """A minimal Nanonis .sxm (the header keys nanonispy2 reads, big-endian float32
    forward then backward), written here so the test owns its format knowledge."""
    ny, nx = data.shape
    header = (":NANONIS_VERSION:\n2\n:SCANIT_TYPE:\n              FLOAT            MSBFIRST\n"
              ":REC_DATE:\n 26.11.2026\n:REC_TIME:\n12:00:00\n:REC_TEMP:\n      290.0\n"
              ":ACQ_TIME:\n      10.0\n"
              f":SCAN_PIXELS:\n       {nx}       {ny}\n"
              ":SCAN_TIME:\n             1.000E+0             1.000E+0\n"
              f":SCAN_RANGE:\n           {size[0] * 1e-10:.6E}           {size[1] * 1e-10:.6E}\n"
              ":SCAN_OFFSET:\n             0.000000E+0         0.000000E+0\n"
              ":SCAN_ANGLE:\n            0.000E+0\n:SCAN_DIR:\nup\n"
              f":BIAS:\n            {bias:.3E}\n"
              ":DATA_INFO:\n\tChannel\tName\tUnit\tDirection\tCalibration\tOffset\n"
              f"\t14\t{channel}\t{unit}\tboth\t1.000E+0\t0.000E+0\n\n:SCANIT_END:\n\n\n")
    body = np.concatenate([data.ravel(), data[:, ::-1].ravel()]).astype(">f4")
    Path(path).write_bytes(header.encode("latin-1") + b"\x1a\x04" + body.tobytes())


def simulated_map(kernel, n_px=224, pitch=1.0, seed=0, count=6, noise=0.01):
    """A map of ``n_px`` pixels a side with ``count`` scatterers at least 50 Å apart
    (inside it), its true positions in the map's frame (Å from the first pixel)."""
    rng = np.random.default_rng(seed)
    grid = Grid(n_px, (n_px - 1) * pitch)
    pos = []
    while len(pos) < count:
        p = rng.uniform(-grid.fov / 2 + 25, grid.fov / 2 - 25, 2)
        if all(np.hypot(*(p - q)) > 50 for q in pos):
            pos.append(p)
    pos = np.array(pos)
    image = Forward(kernel, grid).render(pos)
    image = image / np.abs(image).max() + rng.normal(0, noise, image.shape)
    return image, pos - grid.x[0], grid


# -- pieces --------------------------------------------------------------------------------
def test_period_of_simulated_friedel_maps_follows_the_band():
    for energy in (-0.2, 0.2):
        kernel = FriedelKernel("Cu(111)", energy=energy)
        image, _, grid = simulated_map(kernel, seed=3)
        features = find_features(image, grid.pitch)
        assert len(features.isolated) >= 3
        fit = standing_wave_period(image, features)
        # the asymptotic form reads the period a little short near the scatterers (~2 %)
        assert fit.period == pytest.approx(kernel.period, rel=0.03), energy


def test_period_outside_the_scanned_range_is_refused_not_clipped():
    kernel = FriedelKernel("Cu(111)", energy=0.0)  # period 15 Å
    image, _, grid = simulated_map(kernel, seed=3)
    with pytest.raises(ValueError, match="no minimum"):
        standing_wave_period(image, find_features(image, grid.pitch), period_range=(20, 40))


def test_ring_radius_and_band_fit_recover_cu111():
    energies = np.linspace(-0.2, 0.4, 7)
    k = []
    for e in energies:
        image, _, grid = simulated_map(FriedelKernel("Cu(111)", energy=e), seed=1, count=10)
        q, _, _ = ring_radius(image, grid.pitch)
        k.append(q / 2)
    band = fit_parabolic_band(energies, k)
    assert band.mass == pytest.approx(0.38, abs=0.03)
    assert band.band_bottom == pytest.approx(-0.44, abs=0.05)
    assert 0 < band.mass_error < 0.05 and 0 < band.band_bottom_error < 0.05


def test_band_fit_refuses_what_is_not_a_band():
    with pytest.raises(ValueError, match="at least 3"):
        fit_parabolic_band([0.0, 0.1], [0.2, 0.3])
    with pytest.raises(ValueError, match="does not grow"):
        fit_parabolic_band([0.0, 0.1, 0.2], [0.3, 0.2, 0.1])


def test_lattice_peaks_need_two_directions():
    a = BraggPeak(1.0, 0.0, 1.0, 100.0)
    b = BraggPeak(0.0, 1.02, 1.02, 90.0)
    streak = BraggPeak(2.0, 0.0, 2.0, 80.0)  # collinear with a: a harmonic of it
    assert lattice_peaks([a, b, streak]) == [a, b, streak]
    assert lattice_peaks([a, streak]) == []  # one direction: line noise, not a lattice


def test_tiles_cover_the_map_and_detect_map_finds_scatterers_across_tiles():
    assert tile_origins(150, 64, 16) == [0, 43, 86]
    grid = Grid(64, 100.0)
    kernel = FriedelKernel("Cu(111)", decay_length=20.0)  # a measured state's coherence
    big = Grid(150, 149 * grid.pitch)
    rng = np.random.default_rng(5)
    truth = rng.uniform(-100, 100, (6, 2))
    truth[0] = [big.x[0] + 64 * grid.pitch, 0.0]  # on a tile boundary
    image = Forward(kernel, big).render(truth)
    image += rng.normal(0, 0.02 * np.abs(image).max(), image.shape)  # a measurement's noise
    found = detect_map(image, Forward(kernel, grid), method="sparse")
    truth_map = truth - big.x[0]
    assert len(found) == len(truth)
    d = np.hypot(*(found.positions[:, None, :] - truth_map[None]).transpose(2, 0, 1))
    assert d.min(axis=0).max() < 0.3


def test_average_kernel_of_exact_windows_is_the_kernel_row():
    grid = Grid(64, 100.0)
    op = Forward(FriedelKernel("Cu(111)"), grid)
    big = Grid(200, 199 * grid.pitch)
    truth = np.array([[-60.0, -60.0], [60.0, 55.0]])
    image = Forward(op.kernel, big).render(truth)
    centres = (truth - big.x[0]) / grid.pitch  # map pixels (pitch equal by construction)
    kernel, count = average_kernel(image, centres, grid)
    assert count.max() == 2 and count.min() >= 1
    r = np.hypot(*np.meshgrid(grid.x, grid.x))
    ring = (r > 4) & (r < 45)
    # the windows hold the other scatterer's tail too: close, not equal
    assert np.corrcoef(kernel[ring], op.kernel_row[ring])[0, 1] > 0.95


def test_parse_crop():
    assert parse_crop("1:2,3:4A") == ((1.0, 2.0), (3.0, 4.0), "A")
    with pytest.raises(ValueError, match="X0:X1,Y0:Y1"):
        parse_crop("1:2")
    with pytest.raises(ValueError, match="low to high"):
        parse_crop("2:1,0:1")


# -- a simulated map through a Nanonis file ------------------------------------------------
def test_simulated_sxm_round_trip_recovers_scatterers_and_kernel(tmp_path):
    kernel = FriedelKernel("Cu(111)", energy=0.0)
    image, truth, grid = simulated_map(kernel, n_px=256, pitch=100 / 63, seed=7, count=5)
    path = tmp_path / "sim.sxm"
    write_sxm(path, image * 1e-10, (256 * grid.pitch, 256 * grid.pitch))
    m = qpiset.read(path)
    assert m.channel == "Z forward" and m.units == "m" and m.bias == pytest.approx(0.1)
    assert np.allclose(m.data, (image * 1e-10).astype(np.float32), rtol=0, atol=0)
    a = analyse_map(m, grid=Grid(64, 100.0))
    assert a.period.period == pytest.approx(kernel.period, rel=0.03)
    found = a.scatterers.positions
    d = np.hypot(*(found[:, None, :] - truth[None]).transpose(2, 0, 1))
    assert d.min(axis=0).max() < grid.pitch  # every true scatterer found within a pitch
    assert len(found) == len(truth)  # and nothing else
    # the averaged kernel against the true one, on the rings (beyond the core)
    r = np.hypot(*np.meshgrid(a.grid.x, a.grid.x))
    true_row = Forward(kernel, a.grid).kernel_row
    true_row = true_row / np.abs(true_row).max()
    est = a.kernel / np.abs(a.kernel).max()
    ring = (r > 5) & (r < 40)
    corr = np.corrcoef(est[ring], true_row[ring])[0, 1]
    assert corr > 0.9
    # and as a dataset: the same scatterers in tile frames
    ds = measurement_dataset(a)
    assert ds.counts.sum() == len(found)
    assert ds.meta["positions"].startswith("estimated")


# -- the command ---------------------------------------------------------------------------
def test_analyse_command_writes_json_kernel_and_report(tmp_path):
    kernel = FriedelKernel("Cu(111)", energy=0.1)
    image, truth, grid = simulated_map(kernel, n_px=160, pitch=100 / 63, seed=2, count=3)
    write_sxm(tmp_path / "m.sxm", image, (160 * grid.pitch, 160 * grid.pitch))
    out = tmp_path / "out"
    runner = CliRunner()
    r = runner.invoke(cli, ["analyse", str(tmp_path / "m.sxm"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads((out / "analysis.json").read_text())
    for key in ("period_angstrom", "q_peak_inv_angstrom", "scatterers", "kernel", "channel",
                "crop"):
        assert key in rec
    assert rec["period_angstrom"] == pytest.approx(kernel.period, rel=0.03)
    assert rec["q_peak_inv_angstrom"] == pytest.approx(2 * np.pi / rec["period_angstrom"])
    assert np.load(out / "kernel.npy").shape == (64, 64)
    assert len(rec["kernel"]["radial_profile"]["r_angstrom"]) > 10
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    again = runner.invoke(cli, ["analyse", str(tmp_path / "m.sxm"), "--out", str(out)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    bad = runner.invoke(cli, ["analyse", str(tmp_path / "m.sxm"), "--out", str(out),
                              "--overwrite", "--crop", "9:1,0:1"])
    assert bad.exit_code == 1 and bad.output.count("\n") == 1


def test_convert_map_to_row_format_and_back(tmp_path):
    kernel = FriedelKernel("Cu(111)")
    image, truth, grid = simulated_map(kernel, n_px=160, pitch=100 / 63, seed=4, count=3)
    write_sxm(tmp_path / "m.sxm", image, (160 * grid.pitch, 160 * grid.pitch))
    dst = tmp_path / "m.csv"
    r = CliRunner().invoke(cli, ["convert", str(tmp_path / "m.sxm"), str(dst)])
    assert r.exit_code == 0, r.output
    ds = qpiset.read(dst)
    assert ds.images.shape == (9, 64, 64) and ds.grid == Grid(64, 100.0)  # 3 x 3 tiles
    assert ds.counts.sum() >= 3  # a scatterer where the last tiles overlap is in both
    assert ds.meta["kind"] == "measurement" and "estimated" in ds.meta["positions"]
    assert "estimated" in ds.meta["kernel"]["model"]


# -- the real measurements -----------------------------------------------------------------
def _analyse(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyse_map(qpiset.read(path), **kw)


@needs_realdata
def test_island_standing_waves_and_adsorbates():
    a = _analyse(CREATEC / "createc_scan_island_60nm.dat")
    assert a.measurement.cropped[0] >= 80 and a.measurement.cropped[1] <= 450
    assert a.period.period == pytest.approx(14.4, abs=0.5)  # README: 1.44 ± 0.05 nm
    assert len(a.features.isolated) >= 3
    assert 4 <= len(a.scatterers) <= 20
    # the isolated adsorbate at ~(51, 23) nm in the file's frame is among the scatterers
    d = np.hypot(a.scatterers.positions[:, 0] - 510, a.scatterers.positions[:, 1] - 230)
    assert d.min() < 15


@needs_realdata
def test_step_period_and_no_point_scatterers_on_it():
    a = _analyse(CREATEC / "createc_scan_step_20nm.dat")
    assert a.period.period == pytest.approx(14.1, abs=0.5)  # README: 1.41 ± 0.05 nm
    assert len(a.features.lines) == 1
    assert len(a.scatterers) == 0


@needs_realdata
def test_fese_bragg_peaks_at_the_se_lattice_and_defects():
    a = _analyse(REALDATA / "stmpy-fese" / "FeSe_topography.sxm")
    assert a.measurement.channel == "LIY_1_omega forward"
    assert a.lattice == pytest.approx(3.77, abs=0.05)
    assert len(a.bragg) >= 2
    assert len(a.scatterers) >= 6
    assert any("uncertain" in n for n in a.notes)  # no surface state: the period is flagged


@needs_realdata
def test_grid_gets_a_ring_per_slice_and_says_why_there_is_no_scatterer():
    a = _analyse(REALDATA / "scifidatasets-3ds" / "NanonisReader_STS_grid_lockin.3ds")
    assert len(a.slices) == 200
    assert any("smaller than one" in n for n in a.notes)
    rec = a.record()
    assert rec["energy_slices"][0]["energy_ev"] == pytest.approx(-0.22, abs=1e-3)
    json.dumps(rec, allow_nan=False)


def test_measurement_dataclass_grid_slice_keeps_axes():
    m = Measurement(np.zeros((3, 8, 8)), np.arange(8.0), np.arange(8.0), "LockinX", "V",
                    energies=np.array([-0.1, 0.0, 0.1]))
    assert m.is_grid
