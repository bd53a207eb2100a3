"""A detector and a kernel model added from outside the package, each in one file with one
registry line (tests/plugins/), run through ``qpiset generate``, ``detect``, ``bench``,
``kernels`` and ``show`` with no other edit."""

import json
import sys
from pathlib import Path

import numpy as np

import qpiset

sys.path.insert(0, str(Path(__file__).parent / "plugins"))

import toy_detector  # noqa: E402,F401  (registers "toy-maxima")
import toy_kernel  # noqa: E402,F401  (registers "toy-bump")

from qpiset.inverse import DETECTORS  # noqa: E402
from qpiset.physics import KERNELS, make_kernel  # noqa: E402


def test_registered_from_one_file_each():
    assert "toy-maxima" in DETECTORS and not DETECTORS["toy-maxima"].learned
    assert "toy-bump" in KERNELS
    bump = make_kernel("toy-bump", width=2.0)
    assert make_kernel(**bump.params()) == bump


def test_toy_model_and_detector_through_the_commands(tmp_path, run):
    data = tmp_path / "bumps.csv"
    run("generate", data, "--kernel", "toy-bump", "--set", "width=1.2", "--n", 6, "--seed", 5,
        "--resolution", 48, "--fov", 60, "--min-scatterers", 2, "--max-scatterers", 5)
    ds = qpiset.read(data)
    assert ds.meta["kernel"] == {"model": "toy-bump", "width": 1.2, "height": 1.0}
    # the row is the bump at (0, 0), between the four central pixels
    nearest = make_kernel("toy-bump", width=1.2).radial(ds.grid.pitch / np.sqrt(2))
    assert np.isclose(ds.kernel.max(), nearest, rtol=1e-4)
    listed = run("kernels", "--json").output
    assert "toy-bump" in json.loads(listed)["models"]

    out = tmp_path / "found.json"
    run("detect", data, "--method", "toy-maxima", "--out", out)
    found = json.loads(out.read_text())
    assert found["method"] == "toy-maxima" and len(found["positions"]) == 6

    results = tmp_path / "bench.json"
    run("bench", data, "--methods", "toy-maxima,sparse", "--out", results)
    scores = json.loads(results.read_text())["methods"]
    assert scores["toy-maxima"]["overall"]["f1"] >= 0.8  # isolated bumps: maxima find them
    assert scores["sparse"]["overall"]["f1"] >= 0.95  # the physics fit works for any kernel
    assert scores["toy-maxima"]["learned"] is False

    fig = tmp_path / "fig.png"
    run("show", data, "--out", fig, "--predictions", out)
    assert fig.stat().st_size > 10_000


def test_unknown_names_and_unsupported_scattering_are_usage_errors(tmp_path, run):
    res = run("detect", tmp_path / "x.csv", "--method", "nonsense", "--out", tmp_path / "o.json",
              code=2)
    assert "toy-maxima" in res.output  # the choices come from the registry
    res = run("generate", tmp_path / "y.csv", "--kernel", "toy-bump", "--scattering", "full",
              code=2)
    assert "full multiple scattering is implemented for the friedel, lattice, bdg" in res.output
    assert not (tmp_path / "y.csv").exists()
