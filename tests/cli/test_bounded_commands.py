"""Commands that look at part of a file read only that part (issue 13, item 4): show,
detect --limit, bench --limit, kernel --images and report never reach a bad line far into
the file (the old commands read every line first, and failed there), and every long pass
shows progress (item 6): validate, info, convert, kernel --method blind."""

import json

import numpy as np
import pytest

import qpiset


@pytest.fixture(scope="module")
def long_file(tmp_path_factory, cu):
    """200 images (24 px, noise-free, few scatterers, with metadata), line 4 + 150 bad."""
    from qpiset.core import Grid
    from qpiset.forward import simulate

    folder = tmp_path_factory.mktemp("long")
    ds = simulate(cu, Grid(24, 40.0), n=200, seed=4, max_scatterers=4)
    path = folder / "long.csv"
    qpiset.write(path, ds)
    lines = path.read_text().splitlines()
    fields = lines[4 + 150 - 1].split(",")
    fields[7] = "oops"
    lines[4 + 150 - 1] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    qpiset.write(folder / "side.csv", ds)  # its sidecar: metadata for the edited file
    (folder / "long.csv.json").write_text((folder / "side.csv.json").read_text().replace(
        str((folder / "side.csv").stat().st_size), str(path.stat().st_size)))
    return path, ds


def test_the_whole_file_is_refused_at_its_bad_line(long_file, run):
    path, _ = long_file
    res = run("validate", path, code=1)
    assert res.output.startswith(f"{path}:154:8: ")


def test_show_reads_only_up_to_its_image(long_file, run, tmp_path):
    path, ds = long_file
    for index in (0, 120):
        run("show", path, "--index", index, "--out", tmp_path / f"s{index}.png")
    res = run("show", path, "--index", 150, "--out", tmp_path / "bad.png", code=1)
    assert res.output.startswith(f"{path}:154:8: ")


def test_detect_bench_kernel_with_a_limit_read_only_that_far(long_file, run, tmp_path):
    path, ds = long_file
    pred = tmp_path / "p.json"
    res = run("detect", path, "--method", "matched", "--limit", 10, "--out", pred)
    assert "in 10 images" in res.output
    rec = json.loads(pred.read_text())
    assert rec["images"] == list(range(10)) and len(rec["positions"]) == 10
    out = tmp_path / "b.json"
    run("bench", path, "--methods", "matched", "--limit", 12, "--out", out)
    assert json.loads(out.read_text())["config"]["images"] == 12
    run("kernel", path, "--method", "lsq", "--images", 5, "--out", tmp_path / "k.npy")
    assert np.load(tmp_path / "k.npy").shape == (24, 24)
    run("detect", path, "--method", "matched", "--limit", 200, "--out", tmp_path / "all.json",
        code=1)  # the whole file: the bad line is met


def test_report_looks_at_the_first_images_of_a_long_file(long_file, run, tmp_path,
                                                        monkeypatch):
    import qpiset.viz.report as report

    path, ds = long_file
    monkeypatch.setattr(report, "REPORT_IMAGES", 20)
    out = tmp_path / "r.html"
    run("report", path, "--out", out, "--gallery", 2)
    page = out.read_text()
    assert "from the first 20 images; the file has more" in page
    assert '{&quot;images&quot;: 20' in page


class _Bar:
    """A stand-in for the progress bar: what it was told."""

    made: list = []

    def __init__(self, total, desc, unit="img"):
        self.total, self.desc, self.unit, self.n, self.updates = total, desc, unit, 0, 0
        _Bar.made.append(self)

    def update(self, k=1):
        self.n += k
        self.updates += 1

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.fixture()
def bars(monkeypatch):
    _Bar.made = []
    monkeypatch.setattr("qpiset.cli.files.progress", _Bar)
    monkeypatch.setattr("qpiset.cli.inverse.progress", _Bar)
    return _Bar.made


def test_validate_info_convert_progress(tmp_path, run, bars, cu):
    """The long passes drive a bar over the file's bytes, many times for a long file."""
    import qpiset.io.reading as reading
    from qpiset.core import Grid
    from qpiset.forward import simulate

    path = tmp_path / "d.csv"
    qpiset.write(path, simulate(cu, Grid(24, 40.0), n=300, seed=1, max_scatterers=4))
    size = path.stat().st_size
    # small blocks, as a big file has many
    original = reading.open_rows
    reading.open_rows = lambda p, chunk_rows, block_bytes: original(p, 16, 1 << 16)
    try:
        for command, args in (("validate", []), ("info", []),
                              ("convert", [tmp_path / "d.csv.gz"])):
            bars.clear()
            run(command, path, *args)
            (bar,) = bars
            assert bar.desc == command and bar.unit == "B" and bar.total == size
            assert bar.n == size and bar.updates >= 10, (command, bar.updates)
    finally:
        reading.open_rows = original


def test_store_validation_shows_both_passes(tmp_path, run, bars):
    """A .zarr store: its blocks' hashes and contents checked, then its images read."""
    pytest.importorskip("zarr")
    store = tmp_path / "s.zarr"
    run("generate", store, "--n", 300, "--resolution", 16, "--fov", 30, "--max-scatterers", 3)
    bars.clear()
    run("validate", store)
    assert [(b.unit, b.total, b.n) for b in bars] == [("block", 4, 4), ("img", 300, 300)]


def test_blind_kernel_shows_its_steps(tmp_path, run, bars, monkeypatch, cu):
    """kernel --method blind drives a bar of blind_steps(n) steps through on_step."""
    import inspect

    import qpiset.inverse.blind as blind
    from qpiset.core import Grid
    from qpiset.forward import simulate

    assert "on_step" in inspect.signature(blind.blind_kernel).parameters
    path = tmp_path / "d.csv"
    ds = simulate(cu, Grid(24, 40.0), n=3, seed=1, max_scatterers=4)
    qpiset.write(path, ds)
    seen = {}

    def quick_blind(images, grid, rounds=3, tol=0.01, isotropic=None, on_step=None, **_):
        seen["steps"] = blind.blind_steps(len(images), rounds)
        for _ in range(seen["steps"]):
            on_step(1)
        fitted = blind.kernel_from_positions(images, ds.positions[:len(images)], grid)
        return blind.BlindResult(fitted, [], [], None)

    monkeypatch.setattr(blind, "blind_kernel", quick_blind)
    run("kernel", path, "--method", "blind", "--images", 2, "--out", tmp_path / "k.npy")
    (bar,) = bars
    assert bar.unit == "step" and bar.total == blind.blind_steps(2) == seen["steps"]
    assert bar.n == bar.total


def test_progress_is_quiet_in_pipes(tmp_path, cu):
    """In a pipe (not a terminal) the bars write nothing: stdout and stderr are clean."""
    import subprocess
    import sys

    from qpiset.core import Grid
    from qpiset.forward import simulate

    path = tmp_path / "d.csv"
    qpiset.write(path, simulate(cu, Grid(16, 30.0), n=20, seed=1, max_scatterers=3))
    res = subprocess.run([sys.executable, "-c", "from qpiset.cli import main; main()",
                          "validate", str(path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout.startswith(f"{path}: ok: 20 images")
