"""Kernel models beyond the isotropic table: image kernels, 2D rendering, lattice sites,
the model registry on the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

import qpiset
from qpiset.core import Grid
from qpiset.forward import Forward, simulate, snap_to_lattice
from qpiset.physics import FriedelKernel, ImageKernel, Kernel, describe_kernels, make_kernel

GRID = Grid(64, 100.0)


@pytest.fixture(scope="module")
def row():
    return Forward(FriedelKernel("Ag(111)"), GRID).kernel_row


def test_image_kernel_interpolates_its_samples_and_tapers(row):
    K = ImageKernel(image=row, fov=GRID.fov)
    X, Y = GRID.meshgrid()
    inner = (np.abs(X) < 40) & (np.abs(Y) < 40)  # inside the taper
    assert np.max(np.abs(K.evaluate(X, Y) - row)[inner]) < 1e-12
    # a bicubic spline reproduces a cubic polynomial exactly between the samples
    cubic = ImageKernel(image=(X / 50) ** 3 - 0.5 * (Y / 50) ** 2 * (X / 50), fov=GRID.fov,
                        taper=0.0)
    x, y = np.array([3.1, -17.77]), np.array([0.4, 22.2])
    assert np.allclose(cubic.evaluate(x, y), (x / 50) ** 3 - 0.5 * (y / 50) ** 2 * (x / 50),
                       atol=1e-12)
    assert K.evaluate(60.0, 0.0) == 0.0 and abs(K.evaluate(49.9, 0.0)) < 1e-3 * np.abs(row).max()


def test_anisotropic_rendering_matches_direct_evaluation(row):
    """The 2D-table path (cubic convolution, step = pitch/8) against the kernel's evaluate."""
    K = ImageKernel(image=row, fov=GRID.fov)
    op = Forward(K, GRID)
    pos = np.array([[3.3, -7.1], [-20.2, 11.0], [41.0, 40.0]])
    with pytest.warns(UserWarning, match="known to 50 Å"):  # the image covers ±50 Å only
        img = op.render(pos, strengths=[1.0, 0.5, 2.0])
    X, Y = GRID.meshgrid()
    exact = sum(s * K.evaluate(X - px, Y - py) for (px, py), s in zip(pos, [1.0, 0.5, 2.0]))
    assert np.max(np.abs(img - exact)) < 1e-3 * np.max(np.abs(exact))
    # linearity and translation: two scatterers = sum of one-scatterer images
    with pytest.warns(UserWarning):
        a, b = op.render(pos[:1]), op.render(pos[1:2])
        assert np.allclose(op.render(pos[:2]), a + b, atol=1e-6)


class _Checker(Kernel):
    """A test kernel on a 2.5 Å square lattice: cos(2 pi x / a) cos(2 pi y / a) e^(-r²/200)."""

    name = "checker"
    isotropic = False
    lattice = 2.5 * np.eye(2)

    def evaluate(self, x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        return (np.cos(2 * np.pi * x / 2.5) * np.cos(2 * np.pi * y / 2.5)
                * np.exp(-(x**2 + y**2) / 200))

    def params(self):
        return {"model": self.name}

    def default_step(self):
        return 0.05


def test_scatterers_of_a_lattice_kernel_sit_on_lattice_sites():
    ds = simulate(_Checker(), Grid(32, 40.0), n=4, seed=2, max_scatterers=6)
    for p in ds.positions:
        assert np.allclose(p / 2.5, np.rint(p / 2.5), atol=1e-12)
    # the images then agree with the lattice: every scatterer's pattern has the same registry
    X, Y = Grid(32, 40.0).meshgrid()
    exact = sum(_Checker().evaluate(X - px, Y - py) for px, py in ds.positions[1])
    assert np.max(np.abs(ds.images[1] - exact)) < 1e-3 * np.max(np.abs(exact))
    tri = np.array([[2.46, 0.0], [1.23, 2.13]])
    got = snap_to_lattice(np.array([[3.0, 2.0]]), tri)
    assert np.allclose(got, tri[0] + tri[1])


def test_registry_lists_models_and_recreates_them(tmp_path, row):
    info = describe_kernels()
    assert {"friedel", "image"} <= set(info["models"])
    assert info["materials"]["Cu(111)"]["band_bottom"] == -0.44
    npy = tmp_path / "k.npy"
    np.save(npy, row)
    K = make_kernel("image", source=str(npy), fov=100.0)
    again = make_kernel(**K.params())
    assert again == K and np.array_equal(again.image, row)
    with pytest.raises(ValueError, match="field of view"):
        make_kernel("image", source=str(npy))


def test_generate_with_an_image_kernel_and_settings(tmp_path, run, row):
    npy = tmp_path / "k.npy"
    np.save(npy, row)
    out = tmp_path / "d.csv"
    res = run("generate", out, "--n", 3, "--seed", 1, "--kernel", "image", "--kernel-file",
              npy, "--kernel-fov", 100, "--set", "taper=0.05")
    assert "patterns are cut there" in res.output  # told once, not a traceback
    ds = qpiset.read(out)
    assert ds.meta["kernel"] == {"model": "image", "source": str(npy), "fov": 100.0,
                                 "taper": 0.05}
    X, Y = GRID.meshgrid()
    inner = (np.abs(X) < 45) & (np.abs(Y) < 45)
    assert np.max(np.abs(ds.kernel - row)[inner]) < 1e-6
    # the kernel row of a dataset file works as a source too
    run("generate", tmp_path / "e.csv", "--n", 2, "--kernel", "image", "--kernel-file", out)
    res = run("generate", tmp_path / "f.csv", "--kernel", "image", "--kernel-file", npy,
              "--tip-sigma", 2, code=2)
    assert "friedel parameters" in res.output
    run("generate", tmp_path / "f.csv", "--kernel", "image", "--kernel-file", npy, code=2)
    run("generate", tmp_path / "f.csv", "--kernel", "nope", code=2)
    run("generate", tmp_path / "f.csv", "--set", "oops", code=2)
    kinds = json.loads(run("kernels", "--json").output)
    assert "tip_sigma" in kinds["models"]["friedel"]["parameters"]


def test_generate_with_a_lattice_model(tmp_path, run):
    from qpiset.physics import LatticeKernel

    out = tmp_path / "lat.csv"
    run("generate", out, "--n", 2, "--resolution", 32, "--fov", 30, "--max-scatterers", 4,
        "--kernel", "lattice", "--set", "structure=square", "--set", "mu=-1",
        "--set", "reach=40", "--energy", 0.1)
    ds = qpiset.read(out)
    K = make_kernel(**ds.meta["kernel"])
    assert isinstance(K, LatticeKernel) and K.mu == -1 and K.energy == 0.1
    for p in ds.positions:  # on the 2.5 Å square lattice
        assert np.allclose(p / 2.5, np.rint(p / 2.5), atol=1e-9)
    X, Y = ds.grid.meshgrid()
    assert np.max(np.abs(ds.kernel - K.evaluate(X, Y))) < 1e-3 * np.max(np.abs(ds.kernel))
    fig = ds.plot(0, kernel_model=K)  # no 2k_F circle for a lattice model
    assert all(not p.get_label().startswith("2k_F") for ax in fig.axes for p in ax.patches)
