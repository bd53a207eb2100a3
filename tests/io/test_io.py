"""Row format and npz: bit-exact round trips, published-format compatibility, variants."""

import gzip
import importlib
import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import qpiset
from qpiset import Dataset, Grid
from qpiset.io import FormatError, read, stream, write
from qpiset.io.rows import check_kernel_row

from helpers import assert_same_dataset, same_bits

rows_write = importlib.import_module("qpiset.io.rows.write")  # the row writer's module

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


def usable_kernel(k) -> bool:
    """Kernels the reader accepts (item 3 of issue 13 refuses zero, constant, overflowing)."""
    try:
        check_kernel_row("k", k)
    except FormatError:
        return False
    return True


@st.composite
def datasets(draw):
    r = draw(st.integers(2, 7))
    m = draw(st.integers(1, 4))
    n = draw(st.integers(0, 4))
    fov = draw(st.floats(0.5, 900.0))
    grid = Grid(r, fov)
    arrays = st.lists(finite, min_size=r * r, max_size=r * r).map(lambda v: np.reshape(v, (r, r)))
    kernel = draw(arrays.filter(usable_kernel))
    images = np.array([draw(arrays) for _ in range(n)]).reshape(n, r, r)
    coord = st.floats(-fov, fov, allow_nan=False).filter(lambda v: v != 1000.0)
    positions = [np.array(draw(st.lists(st.tuples(coord, coord), max_size=m))).reshape(-1, 2)
                 for _ in range(n)]
    return Dataset(grid, kernel, images, positions, m)


@given(ds=datasets(), layout=st.sampled_from(["padded", "ragged"]),
       suffix=st.sampled_from([".csv", ".csv.gz", ".npz"]))
def test_round_trip_is_bit_exact(tmp_path, ds, layout, suffix):
    path = tmp_path / f"d{suffix}"
    write(path, ds, layout=layout)
    assert_same_dataset(read(path), ds)


def test_writes_the_published_padded_layout(tmp_path, small_ds):
    path = tmp_path / "d.csv"
    write(path, small_ds)
    lines = path.read_text().splitlines()
    r, m = 24, 6
    width = r * r + 2 * m
    assert all(len(ln.split(",")) == width for ln in lines)
    assert lines[0].split(",")[:2] == ["24", "6"] and set(lines[0].split(",")[2:]) == {"0"}
    assert float(lines[1].split(",")[0]) == -20.0 and float(lines[1].split(",")[23]) == 20.0
    kernel_coords = [float(v) for v in lines[2].split(",")[r * r:]]
    assert kernel_coords == [0.0, 0.0] + [1000.0] * (2 * m - 2)
    write(tmp_path / "r.csv", small_ds, layout="ragged")
    ragged = (tmp_path / "r.csv").read_text().splitlines()
    assert len(ragged[0].split(",")) == 2 and len(ragged[1].split(",")) == r


def test_pandas_reads_it_like_the_published_data(tmp_path, small_ds):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "d.csv"
    write(path, small_ds)
    df = pd.read_csv(path, header=None)
    r, m = small_ds.grid.resolution, small_ds.max_scatterers
    assert df.shape == (small_ds.n_images + 3, r * r + 2 * m)
    assert same_bits(df.iloc[1, :r].values, small_ds.grid.x)
    kernel = np.reshape(df.iloc[2, : r * r].values, (r, r))
    assert same_bits(kernel.T, small_ds.kernel)  # [ix, iy] -> [iy, ix]
    images = df.iloc[3:, : r * r].values
    coords = df.iloc[3:, -2 * m:].values
    for row in range(small_ds.n_images):
        img = np.reshape(images[row], (r, r))
        # the pixel at (x[ix], y[iy]) is img[ix, iy] in the published convention
        ix, iy = 3, 17
        assert img[ix, iy] == small_ds.images[row, iy, ix]
        pos = coords[row].reshape(-1, 2)
        pos = pos[pos[:, 0] != 1000]
        assert same_bits(pos, small_ds.positions[row])
    # orientation, physically: a one-scatterer image read the published way matches the
    # kernel model evaluated at (x[ix] - px, y[iy] - py), and not its transpose
    from qpiset.physics import FriedelKernel

    kernel = FriedelKernel()
    one = qpiset.simulate(kernel, Grid(32, 50.0), n=1, seed=0, min_scatterers=1, max_scatterers=1)
    assert abs(one.positions[0][0, 0] - one.positions[0][0, 1]) > 3  # off the diagonal
    write(tmp_path / "one.csv", one)
    df = pd.read_csv(tmp_path / "one.csv", header=None)
    img = np.reshape(df.iloc[3, :1024].values, (32, 32))
    px, py = df.iloc[3, 1024], df.iloc[3, 1025]
    xs = df.iloc[1, :32].values
    model = kernel.evaluate(xs[:, None] - px, xs[None, :] - py)  # indexed [ix, iy]
    assert np.corrcoef(img.ravel(), model.ravel())[0, 1] > 0.999
    assert np.corrcoef(img.T.ravel(), model.ravel())[0, 1] < 0.9


def _variant(path, text: str, mode="w", **kw):
    if mode == "gz":
        with gzip.open(path, "wb") as f:
            f.write(text.encode())
    else:
        with open(path, "w", newline="", **kw) as f:
            f.write(text)
    return path


def test_valid_variants_read_identically(tmp_path, small_ds):
    base = tmp_path / "d.csv"
    write(base, small_ds, layout="ragged")
    os.remove(qpiset.io.sidecar_path(base))
    text = base.read_text()
    ref = read(base)
    lines = text.splitlines()
    width = len(lines[2].split(","))
    variants = {
        "spaces.txt": "\n".join(" ".join(ln.split(",")) for ln in lines) + "\n",
        "aligned.txt": "\n".join("  " + "   ".join(ln.split(",")) + "  " for ln in lines) + "\n",
        "tabs.tsv": "\n".join("\t".join(ln.split(",")) for ln in lines) + "\n",
        "crlf_bom.csv": "\ufeff" + "\r\n".join(lines) + "\r\n",
        "comma_space.csv": "\n".join(", ".join(ln.split(",")) for ln in lines) + "\n",
        "pad_nan.csv": "\n".join([",".join(lines[0].split(",") + ["NaN"] * (width - 2)),
                                  ",".join(lines[1].split(",") + [""] * (width - 24))]
                                 + lines[2:]) + "\n",
        "no_final_newline.csv": "\n".join(lines),
        "trailing_blank_lines.csv": "\n".join(lines) + "\n\n\n",
    }
    for name, content in variants.items():
        got = read(_variant(tmp_path / name, content))
        assert_same_dataset(got, ref)
    got = read(_variant(tmp_path / "d.csv.gz", text, mode="gz"))
    assert_same_dataset(got, ref)
    # the streaming reader, with tiny blocks (lines longer than a block), agrees too
    for name in ("crlf_bom.csv", "aligned.txt", "d.csv.gz"):
        parts = list(stream(tmp_path / name, chunk_rows=5, block_bytes=3000))
        assert [len(p) for p in parts] == [5, 5, 2]
        assert same_bits(np.concatenate([p.images for p in parts]), ref.images)


def test_pixel_order_c_and_auto(tmp_path, small_ds):
    path = tmp_path / "d.csv"
    write(path, small_ds)
    assert read(path, order="auto").meta["order"] == "F"
    # the same data written x-fastest ("C"): transpose every image and the kernel
    transposed = Dataset(small_ds.grid, small_ds.kernel.T, small_ds.images.transpose(0, 2, 1),
                         small_ds.positions, small_ds.max_scatterers)
    c_path = tmp_path / "c.csv"
    write(c_path, transposed)
    assert_same_dataset(read(c_path, order="C"), small_ds)
    auto = read(c_path, order="auto")
    assert auto.meta["order"] == "C"
    assert_same_dataset(auto, small_ds)
    with pytest.raises(ValueError):
        read(path, order="Z")


def test_auto_order_refuses_to_guess_without_scatterers(tmp_path, small_ds):
    empty = Dataset(small_ds.grid, small_ds.kernel, small_ds.images[:2],
                    [np.zeros((0, 2))] * 2, 6)
    write(tmp_path / "e.csv", empty)
    with pytest.raises(FormatError, match="cannot decide the pixel order"):
        read(tmp_path / "e.csv", order="auto")


def test_write_is_atomic(tmp_path, small_ds, monkeypatch):
    path = tmp_path / "d.csv"
    write(path, small_ds)
    before = path.read_bytes()
    calls = []

    def explode(out, values):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk on fire")
        out.write(b"1,2,3\n")

    monkeypatch.setattr(rows_write, "_write_matrix", explode)
    with pytest.raises(RuntimeError):
        write(path, small_ds)
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["d.csv", "d.csv.json"]  # no temporary left
    with pytest.raises(RuntimeError):
        write(tmp_path / "new.csv", small_ds)
    assert not (tmp_path / "new.csv").exists()


def test_gzip_and_npz_bytes_are_reproducible(tmp_path, small_ds):
    for name in ("a.csv.gz", "b.csv.gz", "a.npz", "b.npz"):
        write(tmp_path / name, small_ds)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = read(tmp_path / "a.npz")
    assert all(same_bits(p, q) for p, q in zip(back.strengths, small_ds.strengths))
    assert back.meta == small_ds.meta


def test_sidecar_metadata_and_stale_sidecar(tmp_path, small_ds):
    path = tmp_path / "d.csv"
    write(path, small_ds)
    side = json.loads((tmp_path / "d.csv.json").read_text())
    assert side["meta"]["kernel"]["model"] == "friedel" and side["n_images"] == 12
    assert read(path).meta["seed"] == 3
    with open(path, "a") as f:  # someone appends a row: the sidecar no longer describes it
        f.write(path.read_text().splitlines()[-1] + "\n")
    with pytest.warns(UserWarning, match="stale"):
        assert "seed" not in read(path).meta


def test_streaming_bounds_memory_per_chunk(tmp_path, small_ds):
    path = tmp_path / "d.csv"
    write(path, small_ds)
    sizes = [len(c) for c in stream(path, chunk_rows=4)]
    assert sizes == [4, 4, 4]
    starts = [c.meta["first_image"] for c in stream(path, chunk_rows=5)]
    assert starts == [0, 5, 10]
