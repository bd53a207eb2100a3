"""Measured STM files (issue 16): every file in ``../shared/realdata`` reads with the right
metadata (scan size, pixels, bias, channels), stopped scans are cropped, and damaged files
get a one-line error naming them. The files are read where they are, never copied."""

import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

import qpiset
from qpiset.core import FormatError, Measurement
from qpiset.io import MeasurementWarning, read_measurement

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(),
                                    reason=f"the real measurements are not at {REALDATA}")

# file, pixels (ny, nx), size (Å), bias (eV), default channel, channel count
SCANS = [
    ("createc-probeflow/createc_scan_island_60nm.dat", (512, 512), 600.0, 1.2134, "Z forward", 4),
    ("createc-probeflow/createc_scan_atomic_11nm.dat", (512, 512), 112.5, -0.550, "Z forward", 4),
    ("createc-probeflow/createc_scan_molecular_30nm_pos.dat", (512, 512), 300.0, 1.1552,
     "Z forward", 4),
    ("stmpy-fese/FeSe_topography.sxm", (224, 224), 200.0, 0.045, "LIY_1_omega forward", 8),
]


@needs_realdata
@pytest.mark.parametrize("name, pixels, size, bias, channel, nch", SCANS)
def test_every_scan_reads_with_its_metadata(name, pixels, size, bias, channel, nch):
    pytest.importorskip("nanonispy2")
    m = qpiset.read(REALDATA / name)
    assert isinstance(m, Measurement) and not m.is_grid
    assert m.shape == pixels and m.size == pytest.approx((size, size), rel=1e-3)
    assert m.bias == pytest.approx(bias, abs=1e-4)
    assert m.channel == channel and len(m.channels) == nch
    assert np.isfinite(m.data).all() and np.std(m.data) > 0
    assert m.cropped is None and m.path.endswith(name.rsplit("/", 1)[1])


@needs_realdata
def test_the_fese_channels_their_units_and_the_scan_angle():
    pytest.importorskip("nanonispy2")
    path = REALDATA / "stmpy-fese/FeSe_topography.sxm"
    m = qpiset.read(path)
    assert set(m.channels) == {f"{c} {d}" for c in ("Z", "Current", "LIY_1_omega", "LIY_n_omega")
                               for d in ("forward", "backward")}
    assert m.units == "A" and m.angle == pytest.approx(45.0)
    z = qpiset.read(path, channel="Z")  # no direction: the forward scan
    assert z.channel == "Z forward" and z.units == "m" and 0 < np.ptp(z.data) < 1e-8
    with pytest.raises(ValueError, match="no channel 'dIdV'; channels: Z forward"):
        qpiset.read(path, channel="dIdV")


@needs_realdata
def test_a_scan_that_stopped_early_is_cropped_with_a_warning():
    path = REALDATA / "createc-probeflow/createc_scan_step_20nm.dat"
    with pytest.warns(MeasurementWarning, match="330 measured rows of 512"):
        m = qpiset.read(path)
    assert m.shape == (330, 512) and m.cropped == (0, 330)
    assert m.size[0] == pytest.approx(199.66, abs=0.01)
    assert m.pitch[0] == pytest.approx(m.pitch[1]) and m.bias == pytest.approx(0.02742)
    assert np.all(np.any(m.data != 0, axis=1))  # every row kept was measured


@needs_realdata
def test_the_old_header_grid_reads_with_its_energy_axis():
    pytest.importorskip("nanonispy2")
    m = qpiset.read(REALDATA / "scifidatasets-3ds/NanonisReader_STS_grid_lockin.3ds")
    assert m.is_grid and m.shape == (200, 30, 30) and m.size == pytest.approx((50.0, 50.0))
    assert m.energies[0] == pytest.approx(-0.22) and m.energies[-1] == pytest.approx(0.22)
    assert m.channel == "LockinX (V)" and m.units == "V"
    assert m.channels == ("Current (A)", "LockinX (V)", "LockinY (V)", "Bias_m (V)")
    # the tunnelling current, read through the same layout, is an I(V) curve: negative at
    # -0.22 V, positive at +0.22 V, near zero at zero bias (the file's Bias_m channel holds
    # a constant -6.5 mV, not the sweep, so it cannot check the axis)
    current = qpiset.read(m.path, channel="Current (A)").data.mean(axis=(1, 2))
    zero = int(np.argmin(np.abs(m.energies)))
    assert current[0] < 0 < current[-1]
    assert abs(current[zero]) < 0.05 * min(-current[0], current[-1])


def _createc(path, *, nx=8, ny=6, channels=4, values=None, cut=None, header_extra=""):
    header = (f"[Paramco32]\r\nNum.X / Num.X={nx}\r\nNum.Y / Num.Y={ny}\r\n"
              f"Length x[A]=40.0\r\nLength y[A]=30.0\r\nChannels / Channels={channels}\r\n"
              f"BiasVoltage / BiasVolt.[mV]=-120.5\r\n{header_extra}")
    if values is None:
        values = np.arange(1, 1 + channels * nx * ny, dtype="<f4")
    body = zlib.compress(np.concatenate([[0.0], values]).astype("<f4").tobytes())
    data = header.encode("latin-1") + b"DATA" + body
    path.write_bytes(data if cut is None else data[:cut])
    return path


def test_a_createc_scan_made_here_reads_back_exactly(tmp_path):
    m = read_measurement(_createc(tmp_path / "s.dat"))
    expected = np.arange(1, 1 + 4 * 48, dtype=np.float64).reshape(4, 6, 8)
    assert np.array_equal(m.data, expected[0]) and m.channel == "Z forward"
    assert np.array_equal(read_measurement(m.path, "Current backward").data, expected[3])
    assert m.size == (40.0, 30.0) and m.bias == pytest.approx(-0.1205) and m.units == "DAC"


def test_damaged_measurements_are_named_in_one_line(tmp_path):
    full = _createc(tmp_path / "full.dat")
    size = full.stat().st_size
    cases = {
        "cut.dat": dict(cut=size - 40),  # the compressed stream ends early
        "nodata.dat": dict(cut=100),  # header only
        "short.dat": dict(values=np.ones(10, "<f4")),  # fewer values than the header says
        "bad.dat": dict(header_extra="", nx=0),
    }
    reasons = {"cut.dat": "truncated|damaged", "nodata.dat": "no DATA marker",
               "short.dat": "truncated: 10 values", "bad.dat": "nothing to read"}
    for name, options in cases.items():
        with pytest.raises(FormatError, match=reasons[name]) as err:
            read_measurement(_createc(tmp_path / name, **options))
        assert str(err.value).startswith(str(tmp_path / name)) and "\n" not in str(err.value)
    garbage = tmp_path / "noise.sxm"
    garbage.write_bytes(b"\x00\x01 not a scan" * 50)
    if pytest.importorskip("nanonispy2"):
        with pytest.raises(FormatError, match="not a readable Nanonis .sxm"):
            read_measurement(garbage)
    (tmp_path / "x.sm4").write_bytes(b"RHK")
    with pytest.raises(FormatError, match="no maintained reader"):
        read_measurement(tmp_path / "x.sm4")


def test_a_gwyddion_file_reads_its_fields(tmp_path):
    pytest.importorskip("gwyfile")
    from gwyfile.objects import GwyContainer, GwyDataField, GwySIUnit

    c = GwyContainer()
    values = np.random.default_rng(0).normal(size=(5, 7))
    c["/0/data"] = GwyDataField(values, xreal=7e-9, yreal=5e-9, si_unit_z=GwySIUnit(unitstr="m"))
    c["/0/data/title"] = "Topography"
    c.tofile(str(tmp_path / "t.gwy"))
    m = qpiset.read(tmp_path / "t.gwy")
    assert m.channel == "Topography" and m.units == "m" and np.array_equal(m.data, values)
    assert m.size == pytest.approx((70.0, 50.0))


def test_a_measured_row_of_nan_is_not_kept(tmp_path):
    values = np.arange(1, 1 + 4 * 48, dtype="<f4").reshape(4, 6, 8)
    values[:, 4:] = 0.0  # the scan stopped after 4 of 6 rows
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        m = read_measurement(_createc(tmp_path / "s.dat", values=values.ravel()))
    assert m.shape == (4, 8) and m.cropped == (0, 4) and len(m.y) == 4
    assert any(issubclass(w.category, MeasurementWarning) for w in seen)


def test_a_row_format_file_named_dat_is_still_a_dataset(tmp_path):
    from qpiset.physics import FriedelKernel

    ds = qpiset.simulate(FriedelKernel(), qpiset.Grid(8, 20.0), n=2, max_scatterers=3)
    path = tmp_path / "train.dat"
    qpiset.write(tmp_path / "t.csv", ds)
    path.write_bytes((tmp_path / "t.csv").read_bytes())
    back = qpiset.read(path)
    assert np.array_equal(back.images, qpiset.read(tmp_path / "t.csv").images)


def test_commands_for_datasets_say_what_a_measured_file_is(tmp_path, run):
    path = _createc(tmp_path / "scan.dat")
    result = run("info", path, code=1)
    assert "a measured STM map, not a dataset" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
