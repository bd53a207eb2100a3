"""The placement window: scatterers drawn in a centred square narrower (or wider) than the
field of view, e.g. within ±100 Å of a 400 Å field as the published 400 Å dataset's
activation maps keep them; the default (the field of view) leaves every output as it was."""

from __future__ import annotations

import numpy as np
import pytest

import qpiset
from qpiset.core import Grid, Recipe
from qpiset.forward import simulate
from qpiset.forward.simulate import placement_half_width, with_default_placement
from qpiset.physics import LatticeKernel


def _extent(ds):
    return max(float(np.abs(p).max()) for p in ds.positions if len(p))


def test_scatterers_stay_in_the_window(cu):
    grid = Grid(16, 400.0)
    wide = simulate(cu, grid, n=40, seed=3, max_scatterers=20)
    narrow = simulate(cu, grid, n=40, seed=3, max_scatterers=20, placement=200.0)
    assert _extent(wide) > 150  # over the field, ±200 Å
    assert _extent(narrow) < 100  # the window, ±100 Å
    # the same draws, scaled: the counts and the uniform variates are those of the default
    for p, q in zip(wide.positions, narrow.positions):
        assert p.shape == q.shape and np.allclose(q, p / 2, atol=1e-12)
    assert narrow.meta["placement"] == 200.0 and "placement" not in wide.meta


def test_the_default_window_is_the_field_and_leaves_outputs_bit_identical(cu):
    grid = Grid(16, 60.0)
    base = simulate(cu, grid, n=6, seed=1, max_scatterers=5)
    same = simulate(cu, grid, n=6, seed=1, max_scatterers=5, placement=60.0)
    assert np.array_equal(base.images, same.images)
    assert all(np.array_equal(p, q) for p, q in zip(base.positions, same.positions))
    assert base.meta == same.meta and "placement" not in same.meta
    assert with_default_placement(Recipe(placement=60.0), grid).placement is None
    assert with_default_placement(Recipe(placement=30.0), grid).placement == 30.0
    assert placement_half_width(Recipe(), grid) == 30.0
    assert placement_half_width(Recipe(placement=100.0), grid) == 50.0


def test_a_window_wider_than_files_hold_is_refused(cu):
    with pytest.raises(ValueError, match="twice the field of view"):
        simulate(cu, Grid(8, 20.0), n=1, placement=41.0)
    ds = simulate(cu, Grid(8, 20.0), n=20, seed=4, max_scatterers=6, placement=40.0)
    assert 10 < _extent(ds) <= 20  # beyond the image, within ±fov (the readers' bound)


def test_lattice_scatterers_snap_inside_the_window():
    kernel = LatticeKernel("square", energy=0.1, mu=-1.0, reach=40.0)
    ds = simulate(kernel, Grid(8, 50.0), n=10, seed=2, max_scatterers=6, placement=20.0)
    for p in ds.positions:
        assert np.allclose(p / 2.5, np.rint(p / 2.5), atol=1e-9)
        assert np.all(np.abs(p) <= 10.0 + 1.25)


def test_generate_placement_fov(tmp_path, run):
    base, same, narrow = (tmp_path / f"{n}.csv" for n in ("base", "same", "narrow"))
    args = ["--n", 30, "--seed", 5, "--resolution", 16, "--fov", 400, "--max-scatterers", 20]
    run("generate", base, *args)
    run("generate", same, *args, "--placement-fov", 400)
    run("generate", narrow, *args, "--placement-fov", 200)
    assert base.read_bytes() == same.read_bytes()
    assert (tmp_path / "base.csv.json").read_bytes().replace(b"base", b"same") \
        == (tmp_path / "same.csv.json").read_bytes().replace(b"base", b"same")
    ds = qpiset.read(narrow)
    assert ds.meta["placement"] == 200.0 and "placement" not in qpiset.read(base).meta
    assert _extent(ds) < 100
    res = run("generate", tmp_path / "x.csv", *args, "--placement-fov", 801, code=2)
    assert "--placement-fov" in res.output
    # the store takes it too (and a worker process receives it through Recipe.to_dict)
    pytest.importorskip("zarr")
    run("generate", tmp_path / "n.zarr", *args, "--placement-fov", 200)
    store = qpiset.read(tmp_path / "n.zarr").load()
    assert store.meta["placement"] == 200.0 and _extent(store) < 100
    assert np.array_equal(store.images, ds.images)


def test_generate_help_states_the_defaults(run):
    text = " ".join(run("generate", "--help").output.split())
    assert "π/2 ≈ 1.5708 rad" in text and "1.5707963267948966" not in text
    assert "--min-scatterers INTEGER RANGE Fewest scatterers per image" in text
    assert "--placement-fov A Full width (Å)" in text and "±100 Å" in text
    family = " ".join(run("generate-family", "--help").output.split())
    assert "--min-scatterers INTEGER RANGE Fewest scatterers per image" in family
    assert "--placement-fov" in family and "--naming [qpiset|published]" in family
