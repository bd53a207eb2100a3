"""What the generate commands tell their users (here because they write through
:func:`qpiset.workflows.generate_file`): a ragged layout warns that pandas cannot read it
(the padded default can), and ``qpiset kernels`` gives each parameter's unit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

import qpiset
from qpiset.cli.generate import parameter_units
from qpiset.core import Grid, Recipe
from qpiset.io.rows.write import RAGGED_WARNING
from qpiset.physics import KERNELS, RadialKernel
from qpiset.workflows import generate_file

pd = pytest.importorskip("pandas")


def test_ragged_files_warn_and_do_not_load_with_pandas(tmp_path, cu):
    grid, recipe = Grid(8, 10.0), Recipe(n=3, seed=1, max_scatterers=2)
    with pytest.warns(UserWarning, match=r"pandas\.read_csv") as caught:
        generate_file(tmp_path / "r.csv", cu, grid, recipe, layout="ragged")
    assert len(caught) == 1 and str(caught[0].message) == RAGGED_WARNING
    assert "\n" not in RAGGED_WARNING and "padded" in RAGGED_WARNING
    with pytest.raises(pd.errors.ParserError, match="Expected 2 fields in line 2"):
        pd.read_csv(tmp_path / "r.csv", header=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default layout: no warning
        generate_file(tmp_path / "p.csv", cu, grid, recipe)
    frame = pd.read_csv(tmp_path / "p.csv", header=None)
    assert frame.shape == (2 + 1 + 3, 8 * 8 + 2 * 2)
    assert qpiset.read(tmp_path / "r.csv").images.tobytes() \
        == qpiset.read(tmp_path / "p.csv").images.tobytes()


def test_the_commands_warn_once_on_one_line(tmp_path, run):
    exe = os.path.join(os.path.dirname(sys.executable), "qpiset")
    out = tmp_path / "r.csv"
    done = subprocess.run([exe, "generate", str(out), "--n", "2", "--resolution", "8",
                           "--layout", "ragged"], capture_output=True, text=True, check=True)
    assert done.stderr.splitlines() == [f"warning: {RAGGED_WARNING}"]
    res = run("convert", out, tmp_path / "back.csv", "--layout", "ragged")
    assert [line for line in res.output.splitlines() if line.startswith("warning:")] \
        == [f"warning: {RAGGED_WARNING}"]
    res = run("convert", out, tmp_path / "padded.csv")
    assert "warning" not in res.output


EXPECTED_UNITS = {
    "friedel": {"energy": "eV", "mass": "m_e", "band_bottom": "eV", "phase_shift": "rad",
                "potential": "eV Å²", "scatterer_radius": "Å", "eta": "eV",
                "decay_length": "Å", "tip_sigma": "Å"},
    "lattice": {"energy": "eV", "t": "eV", "t_prime": "eV", "a": "Å", "mu": "eV", "eta": "eV",
                "potential": "eV", "orbital_sigma": "Å", "reach": "Å", "orbital_pitch": "Å"},
    "bdg": {"energy": "eV", "delta0": "eV", "potential": "eV", "t": "eV", "t_prime": "eV",
            "mu": "eV", "eta": "eV", "a": "Å", "orbital_sigma": "Å", "reach": "Å"},
    "image": {"fov": "Å"},
    "sampled": {"r": "Å", "taper": "Å"},  # the sampled values and tolerances: no unit
}


@pytest.mark.parametrize("model", sorted(EXPECTED_UNITS))
def test_units_from_the_models_docstrings(model):
    assert parameter_units(KERNELS[model]) == EXPECTED_UNITS[model]


def test_kernels_lists_units(run):
    text = run("kernels").output
    assert "    energy = 0.0  [eV]" in text and "    mass = None  [m_e]" in text
    assert "    potential = None  [eV Å²]" in text and "    t_prime = -0.045  [eV]" in text
    assert "    r (required)  [Å]" in text and "    values (required)\n" in text
    info = json.loads(run("kernels", "--json").output)
    assert info["models"]["lattice"]["units"]["a"] == "Å"
    assert set(info["models"]["bdg"]["units"]) <= set(info["models"]["bdg"]["parameters"])

    class Declared(RadialKernel):  # a model may declare its units instead
        units = {"width": "Å"}

    assert parameter_units(Declared) == {"width": "Å"}
