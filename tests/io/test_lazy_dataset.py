"""Reading part of a file costs what that part costs (issue 13, item 4): the lazy row
dataset (qpiset.io.open_dataset) gives what qpiset.read gives, reads no line beyond what
is asked for (line offsets scanned lazily, gzip decompressed forward in bounded memory),
and leaves no file open."""

import gc
import gzip
import os
import subprocess
import sys
import tracemalloc
import zlib

import numpy as np
import pytest

import qpiset
from helpers import assert_same_dataset, same_bits
from qpiset.io import FormatError, RowDataset, RowIndex, count, head, open_dataset, read


@pytest.fixture()
def files(tmp_path, small_ds):
    plain = tmp_path / "d.csv"
    qpiset.write(plain, small_ds)
    qpiset.write(tmp_path / "d.csv.gz", small_ds)
    text = plain.read_text()
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode())
    aligned = tmp_path / "aligned.txt"
    aligned.write_text("\n".join("  " + "   ".join(ln.split(",")) + "  "
                                 for ln in text.splitlines()) + "\n\n\n")
    return {"plain": plain, "gz": tmp_path / "d.csv.gz", "crlf": crlf, "aligned": aligned}


@pytest.mark.parametrize("kind", ["plain", "gz", "crlf", "aligned"])
def test_lazy_dataset_gives_what_read_gives(files, kind, small_ds):
    path = files[kind]
    ds = read(path)
    with open_dataset(path) as lazy:
        assert isinstance(lazy, RowDataset)
        assert lazy.grid == ds.grid and lazy.max_scatterers == ds.max_scatterers
        assert same_bits(lazy.kernel, ds.kernel) and lazy.strengths is None
        assert lazy.meta == ds.meta and lazy.n_images == len(lazy) == 12
        for i in (0, 5, 11, -1, -12):
            assert same_bits(lazy.images[i], ds.images[i]), i
            assert same_bits(lazy.positions[i], ds.positions[i]), i
        assert same_bits(lazy.images[2:7], ds.images[2:7])
        assert same_bits(np.asarray(lazy.images), ds.images)
        assert [p.shape for p in lazy.positions[3:5]] == [p.shape for p in ds.positions[3:5]]
        assert lazy.counts.tolist() == ds.counts.tolist()
        assert_same_dataset(lazy.load(), ds)
        assert_same_dataset(lazy.load(4), head(ds, 4))
        for bad in (12, -13):
            with pytest.raises(IndexError, match="12 images"):
                lazy.images[bad]
        first = lazy.head(3)
        assert first.n_images == 3 and count(lazy, 3) == 3 and count(lazy, 50) == 12
        with pytest.raises(IndexError):
            first.images[3]
        assert same_bits(first.images[2], ds.images[2])
        assert head(lazy, 100).n_images == 12


def test_order_c_and_auto_lazily(tmp_path, small_ds):
    from qpiset import Dataset

    path = tmp_path / "c.csv"
    qpiset.write(path, Dataset(small_ds.grid, small_ds.kernel.T,
                               small_ds.images.transpose(0, 2, 1), small_ds.positions,
                               small_ds.max_scatterers))
    with open_dataset(path, order="C") as lazy:
        assert same_bits(lazy.kernel, small_ds.kernel)
        assert same_bits(lazy.images[7], small_ds.images[7])
    with pytest.warns(qpiset.io.OrderWarning, match="auto: C"):
        lazy = open_dataset(path, order="auto")
    assert lazy.meta["order"] == "C" and same_bits(lazy.images[7], small_ds.images[7])


@pytest.fixture(scope="module")
def many(cu):
    """200 images of 24 px (about 2.4 MB as text)."""
    from qpiset.core import Grid
    from qpiset.forward import simulate

    return simulate(cu, Grid(24, 40.0), n=200, seed=1, max_scatterers=6)


@pytest.fixture(scope="module")
def more(cu):
    """1000 images of 24 px (about 12 MB as text)."""
    from qpiset.core import Grid
    from qpiset.forward import simulate

    return simulate(cu, Grid(24, 40.0), n=1000, seed=2, max_scatterers=6)


@pytest.fixture()
def small_scans(monkeypatch):
    """Line ends looked for 64 kB at a time (16 MB in use): files of a few MB show it."""
    import qpiset.io.rows.index as index

    monkeypatch.setattr(index, "SCAN_BLOCK", 1 << 16)


def _with_bad_line(tmp_path, ds, name, bad_line: int, gz: bool = False):
    """``ds`` as a file (no metadata) whose line ``bad_line`` has a word for a number."""
    qpiset.write(tmp_path / "clean.csv", ds)
    lines = (tmp_path / "clean.csv").read_text().splitlines()
    fields = lines[bad_line - 1].split(",")
    fields[5] = "oops"
    lines[bad_line - 1] = ",".join(fields)
    text = ("\n".join(lines) + "\n").encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(text) if gz else text)
    return path


@pytest.mark.parametrize("gz", [False, True], ids=["csv", "gz"])
def test_nothing_beyond_what_is_asked_is_parsed(tmp_path, many, small_scans, gz):
    path = _with_bad_line(tmp_path, many, "t.csv.gz" if gz else "t.csv", bad_line=4 + 150,
                          gz=gz)
    with pytest.raises(FormatError) as info:
        read(path)  # the whole file: the bad line is found
    assert info.value.line == 154
    with open_dataset(path) as lazy:  # the order check reads only the first images
        assert same_bits(lazy.images[3], many.images[3])
        few = lazy.head(100)
        assert few.n_images == 100 and same_bits(few.load().images, many.images[:100])
        text = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
        assert lazy._rows._scanned < 0.75 * len(text)  # 128 of 200 lines, and a block
        with pytest.raises(FormatError) as info:
            lazy.images[150]
        assert (info.value.line, info.value.column) == (154, 6)
        assert lazy.n_images == 200  # counting lines does not parse them


def test_gzip_is_read_forward_without_holding_it(tmp_path, many, small_scans):
    """A .gz whose end is damaged: the first images read (the old reader decompressed the
    whole file into memory first, and failed); reading to the end names the damage."""
    qpiset.write(tmp_path / "d.csv.gz", many)
    raw = (tmp_path / "d.csv.gz").read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    rows = RowIndex(cut)
    assert same_bits(rows.image(1), many.images[1])
    with open_dataset(cut, order_check="off") as lazy:
        assert same_bits(lazy.images[0], many.images[0])
        assert same_bits(lazy.head(70).load().images, many.images[:70])
        with pytest.raises(FormatError, match="cannot read compressed data"):
            lazy.n_images
    with pytest.raises(FormatError, match="cannot read compressed data"):
        len(rows)
    with pytest.raises(FormatError, match="cannot read compressed data"):
        read(cut)


def test_gzip_ranges_match_the_decompressed_bytes(tmp_path, monkeypatch):
    """Any range, forward or back, through checkpoints and gzip members."""
    import qpiset.io.rows.gzip_access as ga

    monkeypatch.setattr(ga, "CHECKPOINT", 1 << 14)
    monkeypatch.setattr(ga, "_PIECE", 1 << 11)
    monkeypatch.setattr(ga, "_INPUT", 1 << 9)
    rng = np.random.default_rng(0)
    data = "\n".join(",".join(map(repr, rng.random(rng.integers(1, 30)))) for _ in range(3000))
    data = data.encode()
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(data[:50000]) + gzip.compress(data[50000:]) + b"\0\0")
    g = ga.GzipRanges(str(path))
    try:
        for _ in range(400):
            start, size = int(rng.integers(0, len(data) + 10)), int(rng.integers(0, 9000))
            assert g.read(start, size) == data[start:start + size]
        assert len(g._points) > 3  # it kept checkpoints to go back to
    finally:
        g.close()
    path.write_bytes(gzip.compress(data)[:-100] + zlib.compress(b"junk"))
    g = ga.GzipRanges(str(path))
    with pytest.raises(FormatError, match="cannot read compressed data"):
        g.read(0, len(data))
    g.close()


def _peak_bytes(path, what) -> int:
    what(path)  # once untraced: imports and caches are not the file's doing
    gc.collect()
    tracemalloc.start()
    try:
        what(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_memory_of_a_few_images_does_not_grow_with_the_file(tmp_path, more, small_scans,
                                                             suffix):
    """The first image, and the first 10, of an 80-image file and of a 1000-image one: the
    same peak (Python and numpy allocations, traced), a small fraction of the larger
    file's size. (Lines are parsed 64 at a time: both files have more.)"""
    small, large = tmp_path / f"s{suffix}", tmp_path / f"l{suffix}"
    qpiset.write(small, head(more, 80))
    qpiset.write(large, more)

    def first_image(path):
        with open_dataset(path) as lazy:
            return lazy.images[0], lazy.positions[0]

    def limited(path):  # what detect --limit 10 reads
        with open_dataset(path) as lazy:
            return np.asarray(head(lazy, 10).images[0:10])

    size = len(gzip.decompress(large.read_bytes())) if suffix.endswith(".gz") else \
        os.path.getsize(large)
    for what in (first_image, limited):
        a, b = _peak_bytes(small, what), _peak_bytes(large, what)
        assert b < 1.2 * a + (64 << 10), (what.__name__, a, b)
        assert b < size / 4, (what.__name__, b, size)
    assert _peak_bytes(large, read) > size / 6  # the old way: every image in memory


def test_no_file_is_left_open(files, tmp_path, small_ds):
    """read (order auto included), stream, open_dataset and RowIndex close what they open:
    with ResourceWarning an error, a fresh interpreter reads every way and stays quiet."""
    from qpiset import Dataset

    c_file = tmp_path / "c.csv"
    qpiset.write(c_file, Dataset(small_ds.grid, small_ds.kernel.T,
                                 small_ds.images.transpose(0, 2, 1), small_ds.positions,
                                 small_ds.max_scatterers))
    code = f"""
import gc, warnings
warnings.simplefilter("ignore", UserWarning)
import qpiset
from qpiset.io import RowIndex, open_dataset, stream
for p in {[str(files['plain']), str(files['gz']), str(c_file)]!r}:
    qpiset.read(p, order="auto")
    qpiset.read(p)
    for part in stream(p, order="auto", chunk_rows=5):
        break
    list(stream(p))
    ds = open_dataset(p, order="auto"); ds.images[1]; ds.n_images; del ds
    rows = RowIndex(p); rows.item(2); del rows
    with open_dataset(p) as ds:
        ds.images[0]
    gc.collect()
print("done")
"""
    res = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c",
                          code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "done", res.stderr
    assert "ResourceWarning" not in res.stderr and "unclosed" not in res.stderr, res.stderr
