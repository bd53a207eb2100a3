"""``Recipe(placement=...)``: the full width of the square the scatterers are placed in,
recorded in the metadata only when given (every other run's metadata is as before)."""

from __future__ import annotations

import json

import pytest

from qpiset.core import Recipe


def test_placement_defaults_to_none_and_is_not_recorded():
    r = Recipe(n=4, seed=2)
    assert r.placement is None
    assert "placement" not in r.to_dict()
    meta = r.meta({"model": "friedel"})
    assert "placement" not in meta
    assert set(meta) == {"generator", "kernel", "n", "seed", "min_scatterers", "max_scatterers",
                         "strength", "noise", "scattering"}


def test_a_given_placement_is_recorded_and_read_back():
    r = Recipe(n=4, seed=2, max_scatterers=20, placement=200)
    assert r.placement == 200.0 and isinstance(r.placement, float)
    assert r.to_dict()["placement"] == 200.0
    meta = r.meta({"model": "friedel"})
    assert meta["placement"] == 200.0
    assert Recipe.from_meta(json.loads(json.dumps(meta))) == r
    assert Recipe(**r.to_dict()) == r  # what a worker process receives
    assert r.replace(placement=None) == Recipe(n=4, seed=2, max_scatterers=20)


@pytest.mark.parametrize("bad", [0, -5.0, float("nan"), float("inf"), "wide", True])
def test_bad_placements_are_refused(bad):
    with pytest.raises(ValueError, match="placement"):
        Recipe(placement=bad)
