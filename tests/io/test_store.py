"""The chunked zarr store: exact, lazy, convertible to and from the row format."""

from __future__ import annotations

import numpy as np
import pytest

import qpiset
from qpiset.core import Grid
from qpiset.forward import simulate
from qpiset.physics import FriedelKernel

zarr = pytest.importorskip("zarr")


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


@pytest.mark.slow  # ~4-5 s alone (matplotlib, the HTML report)
def test_figures_and_report_read_from_the_store(tmp_path, data):
    path = tmp_path / "d.zarr"
    qpiset.write(path, data)
    back = qpiset.read(path)
    assert len(back.plot(4).axes) >= 4  # figures read one image from the store
    from qpiset.viz import build_report

    assert build_report(back, label="d.zarr", gallery=2).count('class="fig"') >= 4


def test_convert_streams_between_rows_and_store_exactly(tmp_path, data):
    csv, store, again = tmp_path / "a.csv", tmp_path / "b.zarr", tmp_path / "c.csv"
    qpiset.write(csv, data)
    assert qpiset.io.convert(csv, store) == 300
    assert qpiset.io.convert(store, again) == 300
    assert csv.read_bytes() == again.read_bytes()


def test_a_store_begun_under_former_parameter_names_resumes(tmp_path):
    from qpiset.forward import Forward
    from qpiset.io.store import create_store

    g, k = Grid(8, 10.0), FriedelKernel(eta=0.01)
    row = Forward(k, g).kernel_row
    meta = {"kernel": k.params(), "seed": 1}
    old = {"kernel": {("gamma" if key == "eta" else key): v for key, v in k.params().items()},
           "seed": 1}
    create_store(tmp_path / "s.zarr", g, row, 10, 3, old)  # as an older version recorded it
    create_store(tmp_path / "s.zarr", g, row, 10, 3, meta)  # the same run: resumes
    with pytest.raises(qpiset.io.FormatError, match="other parameters"):
        create_store(tmp_path / "s.zarr", g, row, 10, 3, {**meta, "seed": 2})
    other = {"kernel": FriedelKernel(eta=0.02).params(), "seed": 1}
    with pytest.raises(qpiset.io.FormatError, match="other parameters"):
        create_store(tmp_path / "s.zarr", g, row, 10, 3, other)
