"""Kernel families: many distinct kernels from one seed (qpiset.forward.sample_family and
``qpiset generate-family``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import qpiset
from qpiset.forward import Forward, family_file_seed, family_split, sample_family, samplers
from qpiset.physics import make_kernel


@pytest.mark.slow
def test_generate_family_is_reproducible_with_an_index(tmp_path, run):
    a, b = tmp_path / "a", tmp_path / "b"
    run("generate-family", a, "--kernels", 4, "--n", 3, "--fov", 200, "--seed", 5,
        "--models", "friedel", "--test-fraction", 0.25)
    run("generate-family", b, "--kernels", 4, "--n", 3, "--fov", 200, "--seed", 5,
        "--models", "friedel", "--test-fraction", 0.25)
    index = json.loads((a / "index.json").read_text())
    assert (a / "index.json").read_bytes() == (b / "index.json").read_bytes()
    assert len(index["kernels"]) == 4 and len(index["split"]["test"]) == 1
    kernels = {json.dumps(e["kernel"], sort_keys=True) for e in index["kernels"]}
    assert len(kernels) == 4  # distinct
    for e in index["kernels"]:
        assert (a / e["file"]).read_bytes() == (b / e["file"]).read_bytes()
        ds = qpiset.read(a / e["file"])
        assert ds.meta["kernel"] == e["kernel"] and ds.grid.fov == 200
        assert np.allclose(ds.kernel, Forward(make_kernel(**e["kernel"]), ds.grid).kernel_row)
    run("generate-family", tmp_path / "c", "--kernels", 2, "--models", "nope", code=2)


def test_sample_family_is_reproducible_distinct_and_recreatable():
    able = samplers()
    assert {"friedel", "lattice", "bdg"} <= set(able)
    assert "image" not in able and "sampled" not in able  # no parameters to draw
    models = ["friedel", "lattice", "bdg"]
    family = sample_family(6, seed=3, models=models, fov=200.0)
    assert family == sample_family(6, seed=3, models=models, fov=200.0)
    assert family != sample_family(6, seed=4, models=models, fov=200.0)
    assert [p["model"] for p in family] == models * 2  # models taken in turn
    assert len({json.dumps(p, sort_keys=True) for p in family}) == 6
    for p in family:
        json.dumps(p)
        kernel = make_kernel(**p)
        assert kernel.name == p["model"]
        assert make_kernel(**kernel.params()) == kernel
        if p["model"] != "friedel":  # reach covers scatterer-pixel offsets up to the field
            assert kernel.extent >= 200.0
    # kernel i depends on (seed, i) only: a longer family starts with the shorter one
    assert sample_family(3, seed=3, models=models, fov=200.0) == family[:3]
    with pytest.raises(ValueError, match="no sampler"):
        sample_family(2, models=["image"])

    seeds = [family_file_seed(3, i) for i in range(6)]
    assert seeds == [family_file_seed(3, i) for i in range(6)] and len(set(seeds)) == 6
    split = family_split(3, 20, 0.25)
    assert split == family_split(3, 20, 0.25) and len(split) == 5 and split <= set(range(20))
    assert family_split(3, 20, 0.0) == set()
    with pytest.raises(ValueError, match="test_fraction"):
        family_split(3, 20, 1.0)
