"""Generation into the chunked store and on a dask cluster: the same bytes for any number
of workers, rows written in order, and runs killed at a chosen block resumed to the bytes
of an uninterrupted run."""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest

import qpiset
from qpiset.core import Grid
from qpiset.forward import BLOCK, simulate
from qpiset.physics import FriedelKernel

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


#: The store's arrays chunked by block (chunk ``<array>/c/<block>/...``).
BLOCK_ARRAYS = ("images", "positions", "counts", "strengths", "block_done", "block_hash")


def block_chunks(path, blocks) -> dict:
    """``{chunk file: (inode, mtime in ns)}`` of the given blocks' chunks: a resumed run
    must leave those of the blocks it keeps alone."""
    out = {}
    for f in pathlib.Path(path).rglob("*"):
        parts = f.relative_to(path).parts
        if (f.is_file() and len(parts) >= 3 and parts[0] in BLOCK_ARRAYS and parts[1] == "c"
                and int(parts[2]) in blocks):
            st = f.stat()
            out[f] = (st.st_ino, st.st_mtime_ns)
    return out


@pytest.mark.cluster
@pytest.mark.slow
def test_one_and_two_workers_give_identical_stores(tmp_path):
    args = ["generate", "--n", 600, "--seed", 9, "--resolution", 24, "--max-scatterers", 6]
    for name, workers in (("w1.zarr", 1), ("w2.zarr", 2)):
        subprocess.run([EXE, args[0], str(tmp_path / name), *map(str, args[1:]),
                        "--workers", str(workers)], check=True, capture_output=True)
    assert tree_hash(tmp_path / "w1.zarr") == tree_hash(tmp_path / "w2.zarr")
    ds = qpiset.read(tmp_path / "w2.zarr")
    ref = simulate(FriedelKernel(), Grid(24, 100.0), n=600, seed=9, max_scatterers=6)
    assert np.array_equal(np.asarray(ds.images[:]), ref.images)


@pytest.mark.cluster
@pytest.mark.slow
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


# --------------------------------------------------------------------------- resuming

#: The run that is interrupted and resumed: 5 blocks, the last one partial.
N_IMAGES = 1200
GENERATE = ["generate", "--n", str(N_IMAGES), "--seed", "4", "--resolution", "24",
            "--max-scatterers", "6", "--noise", "0.1"]

#: The same run as GENERATE, made by the library in a process that kills itself (SIGKILL,
#: no clean-up) at a chosen point: ``after_block K`` once K blocks are written and marked
#: done (from the progress callback); ``in_block K`` while writing block K, after its
#: images, positions, counts, strengths and hash are on disk, just before it is marked done.
INTERRUPTED_RUN = r"""
import os, signal, sys
from qpiset.core import Grid, Recipe
from qpiset.forward import BLOCK, as_noise
from qpiset.physics import make_kernel
from qpiset.workflows import generate_file

path, stage, at = sys.argv[1], sys.argv[2], int(sys.argv[3])


def die():
    os.kill(os.getpid(), signal.SIGKILL)


made = 0


def on_block(k):  # called as blocks are done (first with the images already there)
    global made
    made += k
    if stage == "after_block" and made >= at * BLOCK:
        die()


if stage == "in_block":
    import qpiset.io.store as store
    import qpiset.workflows.distributed as distributed

    real_write_block = store.write_block

    class KillOnSet:
        def __setitem__(self, key, value):
            die()

    class Group:  # the store's group, except that marking block `at` done kills
        def __init__(self, group, b):
            self.group, self.b = group, b

        @property
        def attrs(self):
            return self.group.attrs

        def __getitem__(self, name):
            if name == "block_done" and self.b == at:
                return KillOnSet()
            return self.group[name]

    def write_block(group, b, *args, **kwargs):
        return real_write_block(Group(group, b), b, *args, **kwargs)

    store.write_block = distributed.write_block = write_block

generate_file(path, make_kernel("friedel"), Grid(24, 100.0),
              Recipe(n=%d, seed=4, max_scatterers=6, noise=as_noise("0.1")), on_block=on_block)
sys.exit("the run was not interrupted")
""" % N_IMAGES


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted run's store."""
    path = tmp_path_factory.mktemp("whole") / "whole.zarr"
    subprocess.run([EXE, GENERATE[0], str(path), *GENERATE[1:]], check=True,
                   capture_output=True)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("stage, at", [("after_block", 2), ("in_block", 1), ("in_block", 4)])
def test_killed_run_resumes_to_the_same_bytes(tmp_path, whole, run, stage, at):
    nblocks = -(-N_IMAGES // BLOCK)
    cut = tmp_path / "cut.zarr"
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_RUN, str(cut), stage, str(at)],
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    # the store holds exactly the blocks before `at`; block `at` is on disk but not marked
    # done when the run was killed in it
    group, ref = zarr.open_group(str(cut), mode="r"), zarr.open_group(str(whole), mode="r")
    assert np.asarray(group["block_done"][:]).tolist() == [1] * at + [0] * (nblocks - at)
    written = at + (stage == "in_block")
    stop = min(N_IMAGES, written * BLOCK)
    assert np.array_equal(group["images"][:stop], ref["images"][:stop])
    assert np.array_equal(group["block_hash"][:written], ref["block_hash"][:written])
    assert not np.any(np.asarray(group["images"][stop:]))
    if stage == "in_block":
        assert np.asarray(group["block_hash"][at]) != 0
    # reading refuses it; validating names the missing blocks
    with pytest.raises(qpiset.FormatError, match="incomplete"):
        qpiset.read(cut)
    res = run("validate", cut, code=1)
    missing = list(range(at, nblocks))
    assert f"{cut}: blocks {missing} missing or not matching their hash" in res.output
    # the same command resumes it to the bytes of the uninterrupted run
    kept = block_chunks(cut, range(at))
    assert len(kept) == len(BLOCK_ARRAYS) * at
    run(GENERATE[0], cut, *GENERATE[1:])
    assert tree_hash(cut) == tree_hash(whole)
    assert block_chunks(cut, range(at)) == kept  # the blocks done before were kept
    run("validate", cut)


def test_damaged_block_is_found_and_redone(tmp_path, run):
    path = tmp_path / "d.zarr"
    args = ("generate", path, "--n", 600, "--resolution", 24, "--max-scatterers", 6)
    run(*args)
    before = tree_hash(path)
    chunk = sorted((path / "images" / "c" / "1").rglob("*"))[-1]
    chunk.write_bytes(chunk.read_bytes()[:10])  # a chunk cut short
    res = run("validate", path, code=1)
    assert f"{path}: blocks [1] missing or not matching their hash" in res.output
    kept = block_chunks(path, (0, 2))
    assert len(kept) == 2 * len(BLOCK_ARRAYS)
    run(*args)  # resumes: only the damaged block is made again
    assert tree_hash(path) == before
    assert block_chunks(path, (0, 2)) == kept
    res = run("generate", path, "--n", 700, "--resolution", 24, code=1)
    assert "exists with other parameters" in res.output
    run("validate", tmp_path / "nothing.zarr", code=1)
