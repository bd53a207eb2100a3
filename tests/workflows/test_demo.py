"""The demo: the main job on built-in defaults (``qpiset demo``, :func:`run_demo`)."""

import pytest

import qpiset
from qpiset.inverse import learned_available
from qpiset.workflows import run_demo


@pytest.mark.slow  # ~4.5 s
def test_demo_runs_the_main_job(tmp_path, run):
    out = run("demo", "--out", tmp_path / "demo", "--n", 40, "--bench-images", 3).output
    assert "[5/5]" in out and "ok: 40 images, 64x64 px, fov 100 Å, max_scatterers 100" in out
    assert "| sparse | all | 3 |" in out and (tmp_path / "demo" / "bench.md").exists()
    # the learned detector is benchmarked exactly when torch is there
    assert ("| unet | all | 3 |" in out) == learned_available()
    page = (tmp_path / "demo" / "report.html").read_text()
    assert "<h2>Benchmark</h2>" in page and "2k_F (model)" in page
    ds = qpiset.read(tmp_path / "demo" / "qpi.csv")
    assert ds.meta["kernel"]["material"] == "Cu(111)" and ds.meta["kernel"]["energy"] == 0.0


def test_run_demo_without_report_or_bench(tmp_path):
    lines = []
    path = run_demo(tmp_path / "d", n=5, seed=3, echo=lines.append, bench_images=0)
    assert path == tmp_path / "d" / "qpi.csv" and qpiset.read(path).n_images == 5
    assert lines[0].startswith("[1/4] generate 5 images") and "seed 3" in lines[0]
    assert not any("bench" in line for line in lines)
    assert not (tmp_path / "d" / "bench.json").exists()
    assert not (tmp_path / "d" / "report.html").exists()
