"""The chunked zarr store and generation on a dask cluster: exact, lazy, resumable."""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import qpiset
from qpiset.grid import Grid
from qpiset.physics import FriedelKernel
from qpiset.synth import simulate

zarr = pytest.importorskip("zarr")
EXE = os.path.join(os.path.dirname(sys.executable), "qpiset")


def tree_hash(path) -> str:
    """Hash of every file (name and bytes) under a store."""
    h = hashlib.sha256()
    for f in sorted(pathlib.Path(path).rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(path)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def data():
    return simulate(FriedelKernel(), Grid(24, 40.0), n=300, seed=3, max_scatterers=7,
                    strength=(0.5, 1.5), noise=0.1)


def test_store_round_trip_is_exact_and_lazy(tmp_path, data):
    path = tmp_path / "d.zarr"
    qpiset.write(path, data)
    back = qpiset.read(path)
    assert not isinstance(back.images, np.ndarray)  # a zarr array: nothing loaded yet
    assert np.array_equal(np.asarray(back.images[7]), data.images[7])
    full = back.load()
    assert np.array_equal(full.images, data.images) and np.array_equal(full.kernel, data.kernel)
    assert all(np.array_equal(a, b) for a, b in zip(full.positions, data.positions))
    assert all(np.array_equal(a, b) for a, b in zip(full.strengths, data.strengths))
    assert full.meta == data.meta and back.counts.tolist() == data.counts.tolist()
    xr = pytest.importorskip("xarray")
    xd = xr.open_zarr(path)
    assert xd["images"].dims == ("image", "y", "x")
    np.testing.assert_array_equal(xd["x"].values, data.grid.x)
    assert float(xd["images"].sel(x=data.grid.x[3], y=data.grid.x[5]).isel(image=2)) == \
        data.images[2, 5, 3]
    assert qpiset.io.summarize(path).n_images == 300
    assert len(back.plot(4).axes) >= 4  # figures read one image from the store
    from qpiset.viz import build_report

    assert build_report(back, label="d.zarr", gallery=2).count('class="fig"') >= 4


def test_convert_streams_between_rows_and_store_exactly(tmp_path, data):
    csv, store, again = tmp_path / "a.csv", tmp_path / "b.zarr", tmp_path / "c.csv"
    qpiset.write(csv, data)
    assert qpiset.io.convert(csv, store) == 300
    assert qpiset.io.convert(store, again) == 300
    assert csv.read_bytes() == again.read_bytes()


def test_one_and_two_workers_give_identical_stores(tmp_path):
    args = ["generate", "--n", 600, "--seed", 9, "--resolution", 24, "--max-scatterers", 6]
    for name, workers in (("w1.zarr", 1), ("w2.zarr", 2)):
        subprocess.run([EXE, args[0], str(tmp_path / name), *map(str, args[1:]),
                        "--workers", str(workers)], check=True, capture_output=True)
    assert tree_hash(tmp_path / "w1.zarr") == tree_hash(tmp_path / "w2.zarr")
    ds = qpiset.read(tmp_path / "w2.zarr")
    ref = simulate(FriedelKernel(), Grid(24, 100.0), n=600, seed=9, max_scatterers=6)
    assert np.array_equal(np.asarray(ds.images[:]), ref.images)


def test_row_format_from_a_cluster_is_written_in_order(tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        out = tmp_path / "c.csv"
        subprocess.run([EXE, "generate", str(out), "--n", "600", "--resolution", "24",
                        "--max-scatterers", "6", "--scheduler", cluster.scheduler_address],
                       check=True, capture_output=True)
    local = tmp_path / "l.csv"
    subprocess.run([EXE, "generate", str(local), "--n", "600", "--resolution", "24",
                    "--max-scatterers", "6"], check=True, capture_output=True)
    assert out.read_bytes() == local.read_bytes()


def test_killed_run_resumes_to_the_same_bytes(tmp_path):
    cmd = ["generate", "--n", "5120", "--seed", "4", "--max-scatterers", "100"]
    whole, cut = tmp_path / "whole.zarr", tmp_path / "cut.zarr"
    subprocess.run([EXE, cmd[0], str(whole), *cmd[1:]], check=True, capture_output=True)
    proc = subprocess.Popen([EXE, cmd[0], str(cut), *cmd[1:]], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    done = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            done = int(np.sum(zarr.open_group(str(cut), mode="r")["block_done"][:]))
        except Exception:  # the store is still being created
            done = 0
        if done >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert 2 <= done < 20, f"the run was not interrupted mid-way ({done} blocks)"
    with pytest.raises(qpiset.io.FormatError, match="incomplete"):
        qpiset.read(cut)
    res = subprocess.run([EXE, "validate", str(cut)], capture_output=True, text=True)
    assert res.returncode == 1 and "missing or not matching" in res.stderr
    subprocess.run([EXE, cmd[0], str(cut), *cmd[1:]], check=True, capture_output=True)
    assert tree_hash(cut) == tree_hash(whole)


def test_damaged_block_is_found_and_redone(tmp_path, run):
    path = tmp_path / "d.zarr"
    args = ("generate", path, "--n", 600, "--resolution", 24, "--max-scatterers", 6)
    run(*args)
    before = tree_hash(path)
    chunk = sorted((path / "images" / "c" / "1").rglob("*"))[-1]
    chunk.write_bytes(chunk.read_bytes()[:10])  # a chunk cut short
    res = run("validate", path, code=1)
    assert f"{path}: blocks [1] missing or not matching their hash" in res.output
    run(*args)  # resumes: only the damaged block is made again
    assert tree_hash(path) == before
    res = run("generate", path, "--n", 700, "--resolution", 24, code=1)
    assert "exists with other parameters" in res.output
    run("validate", tmp_path / "nothing.zarr", code=1)
