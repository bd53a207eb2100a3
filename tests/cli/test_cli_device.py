"""``--device`` on the command line (extra 'ml'): an absent device is one line and exit 1;
generate's default device keeps a seed's bytes; the learned commands run on the CPU."""

import pytest

from helpers import one_thread, require_torch

pytestmark = pytest.mark.torch
torch = require_torch()


_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@no_cuda
@pytest.mark.parametrize("args", [["train", "detector", "--out", "{tmp}/x.pt"],
                                  ["train", "kernel-vae", "--out", "{tmp}/k.pt"],
                                  ["generate", "{tmp}/g.csv", "--n", "2"]])
def test_an_absent_device_is_one_line_and_exit_1(run, tmp_path, args):
    args = [a.format(tmp=tmp_path) for a in args]
    result = run(*args, "--device", "cuda", code=1)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "'cuda' asked for but not available" in lines[0], result.output
    assert not list(tmp_path.iterdir())  # refused before any work


@no_cuda
def test_learned_inverse_commands_refuse_an_absent_device(run, tmp_path, row_file):
    for args in (["detect", row_file, "--method", "unet", "--out", tmp_path / "p.json"],
                 ["kernel", row_file, "--method", "vae", "--out", tmp_path / "k.npy"],
                 ["bench", row_file, "--methods", "unet", "--out", tmp_path / "b.json"]):
        out = run(*args, "--device", "cuda", code=1).output
        assert out.count("\n") == 1 and "not available" in out, out
    # a classical method does not need the device
    run("detect", row_file, "--method", "matched", "--out", tmp_path / "m.json",
        "--device", "cuda")


def test_generate_device_default_keeps_bytes(run, tmp_path):
    common = ["--n", 3, "--seed", 5, "--resolution", 16, "--fov", 30, "--noise", "0.2"]
    run("generate", tmp_path / "a.csv", *common)
    run("generate", tmp_path / "b.csv", *common, "--device", "cpu")
    run("generate", tmp_path / "c.csv", *common, "--device", "auto")
    a = (tmp_path / "a.csv").read_bytes()
    assert a == (tmp_path / "b.csv").read_bytes()
    if not torch.cuda.is_available():
        assert a == (tmp_path / "c.csv").read_bytes()


def test_generate_on_the_torch_renderer_keeps_the_scatterers(tmp_path):
    import numpy as np

    import qpiset
    from qpiset.core import Grid, Recipe
    from qpiset.physics import FriedelKernel
    from qpiset.workflows import generate_file

    from qpiset.forward import as_noise

    grid = Grid(16, 30.0)
    recipe = Recipe(n=4, seed=1, max_scatterers=6, noise=as_noise(0.1))
    generate_file(tmp_path / "a.npz", FriedelKernel(), grid, recipe)
    cpu = qpiset.read(tmp_path / "a.npz")
    from qpiset.forward import simulate

    dev = simulate(FriedelKernel(), grid, recipe, device="cpu")  # the torch renderer
    assert all(np.array_equal(p, q) for p, q in zip(cpu.positions, dev.positions))
    assert np.abs(cpu.images - dev.images).max() < 1e-5 * np.abs(cpu.images).max()
    _refuse_zarr(tmp_path, grid, recipe)


def _refuse_zarr(tmp_path, grid, recipe):
    """A device is refused for a store (the device check faked: a CUDA device)."""
    from unittest import mock

    import qpiset.workflows.generate as gen
    from qpiset.physics import FriedelKernel

    with mock.patch.object(gen, "_render_device", lambda d: torch.device("cuda")), \
            pytest.raises(ValueError, match="zarr store"):
        gen.generate_file(tmp_path / "s.zarr", FriedelKernel(), grid, recipe, device="cuda")


def test_train_detector_on_the_cpu_device(run, tmp_path, row_file):
    ckpt = tmp_path / "t.pt"
    out = run("train", "detector", "--out", ckpt, "--data", row_file, "--width", 4,
              "--batch-size", 4, "--steps-per-epoch", 2, "--epochs", 1, "--val-images", 2,
              "--val-kernels", 0, "--kernels", 0, "--device", "cpu").output
    assert f"{ckpt}: detector after 2 steps" in out
    state = torch.load(ckpt, weights_only=True)
    assert state["train"]["record"]["device"] == "cpu"
    run("detect", row_file, "--method", "unet", "--weights", ckpt, "--out",
        tmp_path / "p.json", "--device", "auto")
