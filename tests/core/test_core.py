"""The core: the grid's coordinates, the Dataset's checks, padding, the Recipe and its
metadata, the input checks."""

import json

import numpy as np
import pytest

from qpiset.core import SENTINEL, Dataset, FormatError, Grid, Recipe, pad_rows
from qpiset.core.checks import as_image_stack, as_positions, real, whole


def test_grid_follows_the_convention():
    g = Grid(64, 100.0)
    assert g.x[0] == -50.0 and g.x[-1] == 50.0 and g.pitch == pytest.approx(100 / 63)
    X, Y = g.meshgrid()
    assert X[0, 1] > X[0, 0] and Y[1, 0] > Y[0, 0]  # [iy, ix]
    assert Grid.from_x(g.x) == g
    with pytest.raises(ValueError, match="x coordinate 2 is 0.0, expected -0.5"):
        Grid.from_x(np.array([-1.5, 0.0, 0.5, 1.5]))
    with pytest.raises(ValueError):
        Grid(1, 10.0)


def test_dataset_refuses_what_it_cannot_hold():
    g = Grid(4, 3.0)
    with pytest.raises(ValueError, match="kernel has shape"):
        Dataset(g, np.zeros((3, 3)), np.zeros((1, 4, 4)), [np.zeros((0, 2))], 2)
    with pytest.raises(ValueError, match="position sets"):
        Dataset(g, np.zeros((4, 4)), np.zeros((2, 4, 4)), [np.zeros((0, 2))], 2)
    with pytest.raises(ValueError, match="> max_scatterers"):
        Dataset(g, np.zeros((4, 4)), np.zeros((1, 4, 4)), [np.ones((3, 2))], 2)
    with pytest.raises(ValueError, match="sentinel"):
        Dataset(g, np.zeros((4, 4)), np.zeros((1, 4, 4)), [np.full((1, 2), SENTINEL)], 2)


def test_padding_and_its_inverse():
    rows = [np.array([[1.0, 2.0]]), np.zeros((0, 2)), np.array([[3.0, 4.0], [5.0, 6.0]])]
    padded = pad_rows(rows, 3)
    assert padded.shape == (3, 3, 2) and padded[1].tolist() == [[SENTINEL] * 2] * 3
    back = [p[p[:, 0] != SENTINEL] for p in padded]
    assert all(np.array_equal(a, b) for a, b in zip(rows, back))
    ds = Dataset(Grid(4, 3.0), np.zeros((4, 4)), np.zeros((3, 4, 4)), rows, 3)
    assert np.array_equal(ds.positions_padded(), padded)
    with pytest.raises(ValueError, match="more than the 1 slots"):
        pad_rows(rows, 1)
    s = pad_rows([np.array([0.5]), np.array([])], 2, np.nan, tail=())
    assert s[0, 0] == 0.5 and np.isnan(s[0, 1]) and np.isnan(s[1]).all()


def test_recipe_checks_and_records_itself():
    r = Recipe(n=7, seed=3, min_scatterers=0, max_scatterers=4, strength=[0.5, 1.5],
               scattering="full")
    assert r.strength == (0.5, 1.5)
    meta = r.meta({"model": "friedel"})
    assert list(meta) == ["generator", "kernel", "n", "seed", "min_scatterers",
                          "max_scatterers", "strength", "noise", "scattering"]
    assert meta["strength"] == [0.5, 1.5] and meta["noise"] is None
    assert Recipe.from_meta(json.loads(json.dumps(meta))) == r
    assert r.replace(seed=9).seed == 9 and r.seed == 3
    assert Recipe(noise={"model": "white", "fraction": 0.1}).noise_params() == \
        {"model": "white", "fraction": 0.1}
    for bad in (dict(n=-1), dict(min_scatterers=3, max_scatterers=2), dict(max_scatterers=0),
                dict(strength=(2.0, 1.0)), dict(strength=float("nan")), dict(scattering=2)):
        with pytest.raises(ValueError):
            Recipe(**bad)


def test_input_checks_say_what_is_wrong():
    stack, single = as_image_stack(np.zeros((5, 5)))
    assert stack.shape == (1, 5, 5) and single
    with pytest.raises(ValueError, match="7 px per side, the grid 5"):
        as_image_stack(np.zeros((2, 7, 7)), 5)
    with pytest.raises(ValueError, match="finite"):
        as_image_stack(np.full((3, 3), np.nan))
    assert as_positions([]).shape == (0, 2)
    with pytest.raises(ValueError, match=r"\(k, 2\)"):
        as_positions(np.zeros((3, 3)))
    assert real(3, "x", minimum=0) == 3.0 and whole(4.0, "n") == 4
    with pytest.raises(ValueError, match="must be > 0"):
        real(0.0, "width", above=0)
    with pytest.raises(ValueError, match="whole number"):
        whole(2.5, "n")


def test_format_error_reads_as_a_location():
    assert str(FormatError("a.csv", 5, 7, "bad")) == "a.csv:5:7: bad"
    assert str(FormatError("a.csv", 5, None, "bad")) == "a.csv:5: bad"
    assert isinstance(FormatError("a", None, None, "x"), ValueError)


def test_recipe_noise_is_a_model_or_its_record():
    with pytest.raises(ValueError, match="as_noise"):
        Recipe(noise=0.1)
    with pytest.raises(ValueError, match="as_noise"):
        Recipe(noise="white:0.1")


def test_dataset_indexing_like_a_sequence():
    from qpiset.core import Sample

    g = Grid(4, 3.0)
    images = np.arange(3 * 16, dtype=float).reshape(3, 4, 4)
    ds = Dataset(g, np.eye(4), images, [np.zeros((0, 2)), np.ones((1, 2)), np.full((2, 2), 2.0)],
                 3, strengths=[np.zeros(0), np.ones(1), np.ones(2)])
    last = ds[-1]
    assert isinstance(last, Sample) and np.array_equal(last.image, images[2])
    assert last.positions.shape == (2, 2) and last.strengths.shape == (2,)
    part = ds[1:]
    assert isinstance(part, Dataset) and len(part) == 2 and part.counts.tolist() == [1, 2]
    assert [s.positions.shape[0] for s in ds] == [0, 1, 2]
    with pytest.raises(IndexError, match="the dataset has 3 images"):
        ds[3]
    with pytest.raises(TypeError):
        ds[1.5]


def test_plot_takes_negative_indices():
    from qpiset.forward import simulate
    from qpiset.physics import FriedelKernel

    ds = simulate(FriedelKernel(), Grid(16, 20.0), n=3, seed=1, max_scatterers=3)
    fig = ds.plot(-1)
    assert "image 2" in fig.axes[0].get_title()
    with pytest.raises(IndexError, match="out of range"):
        ds.plot(3)
