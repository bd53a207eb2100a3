"""The torch backend of the forward operator (extra 'ml'): the numba renderer's images
within 1e-5 of the peak for radial and 2D tables, Born images and every noise model."""

import warnings

import numpy as np
import pytest

from helpers import one_thread, require_torch

pytestmark = pytest.mark.torch
torch = require_torch()


_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)

from qpiset.core import Grid, Recipe  # noqa: E402
from qpiset.forward import Forward, as_noise, simulate, simulate_blocks  # noqa: E402
from qpiset.forward.backends import BACKENDS, get_backend  # noqa: E402
from qpiset.forward.device import (DeviceUnavailable, resolve_device,  # noqa: E402
                                   using_device, default_device)
from qpiset.forward.torch_backend import TorchBackend, TorchRenderer, compiled  # noqa: E402
from qpiset.forward.torch_noise import apply_noise  # noqa: E402
from qpiset.physics import FriedelKernel, ImageKernel, make_kernel  # noqa: E402

GRID = Grid(32, 50.0)


def _scatterers(n=12, most=30, seed=0, half=25.0):
    rng = np.random.default_rng(seed)
    positions = [rng.uniform(-half, half, (k, 2)) for k in rng.integers(0, most + 1, n)]
    return positions, [rng.uniform(0.5, 1.5, len(p)) for p in positions]


def _kernels():
    image = Forward(FriedelKernel(), Grid(33, 60.0)).kernel_row
    return {"friedel": FriedelKernel(), "lattice": make_kernel("lattice"),
            "image": ImageKernel(image=image, fov=60.0)}


@pytest.fixture(scope="module")
def kernels():
    return _kernels()


def _gap(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(a)).max())


@pytest.mark.parametrize("name", ["friedel", "lattice", "image"])
def test_torch_backend_equals_numba(kernels, name):
    kernel = kernels[name]
    assert kernel.isotropic == (name == "friedel")  # radial table, else the 2D table
    positions, strengths = _scatterers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a kernel known to a finite extent says so
        op = Forward(kernel, GRID)
        ref = op.render_batch(positions, strengths)
        seam = Forward(kernel, GRID, backend="torch").render_batch(positions, strengths)
        tensor = TorchRenderer(op, "cpu").render_batch(positions, strengths)
    assert seam.shape == ref.shape == tuple(tensor.shape) and tensor.dtype == torch.float32
    assert _gap(ref, seam) < 1e-5 and _gap(ref, tensor.numpy()) < 1e-5
    assert not np.array_equal(ref, np.zeros_like(ref))


def test_backend_seam_and_fitting_model(cu):
    assert isinstance(BACKENDS["torch"], TorchBackend)
    backend = TorchBackend("cpu")
    assert get_backend(backend) is backend
    op, ref = Forward(cu, GRID, backend=backend), Forward(cu, GRID)
    pos, s = [[1.0, 2.0], [-3.0, 4.5]], [1.0, 0.5]
    img, jac = op.image_and_jacobian(pos, s)  # float64 fits stay on the numba loops
    img0, jac0 = ref.image_and_jacobian(pos, s)
    assert np.array_equal(img, img0) and np.array_equal(jac, jac0)
    assert op.render_batch([]).shape == (0, 32, 32)


@pytest.mark.parametrize("spec", [None, "white:0.3", "snr:4", "pink:0.2:1.3", "lines:0.1:0.5",
                                  "lines:0.05:20", "blur:1.5", "setpoint:0.3",
                                  "setpoint:0.3,blur:1.0,lines:0.05:0.2,pink:0.1,white:0.2"])
def test_born_and_noise_recipes_on_the_torch_backend(cu, spec):
    recipe = Recipe(n=20, seed=3, max_scatterers=15, strength=(0.5, 1.5),
                    noise=as_noise(spec) if spec else None)
    cpu = next(simulate_blocks(cu, GRID, recipe))
    dev = next(simulate_blocks(cu, GRID, recipe, device="cpu"))
    assert isinstance(dev[1], torch.Tensor)
    assert _gap(cpu[1], dev[1].numpy()) < 1e-5
    for a, b in zip(cpu[2] + cpu[3], dev[2] + dev[3]):  # positions, strengths: the same draws
        assert np.array_equal(a, b)


def test_noise_on_tensors_checks_like_the_models():
    from qpiset.forward.noise import Setpoint, White

    with pytest.raises(TypeError, match="numpy.random.Generator"):
        apply_noise(White(0.1), torch.ones(2, 4, 4), None)
    with pytest.raises(ValueError, match="finite"):
        apply_noise(White(0.1), torch.full((4, 4), float("nan")), np.random.default_rng(0))
    with pytest.raises(ValueError, match="image 0 reaches"):
        apply_noise(Setpoint(2.0), -torch.ones(1, 4, 4))
    single = apply_noise(White(0.1), torch.ones(4, 4), np.random.default_rng(1))
    assert single.shape == (4, 4) and single.dtype == torch.float64


def test_simulate_on_a_device_keeps_scatterers_and_row(cu):
    a = simulate(cu, GRID, n=6, seed=2, max_scatterers=8, noise=0.2)
    b = simulate(cu, GRID, n=6, seed=2, max_scatterers=8, noise=0.2, device="cpu")
    assert np.array_equal(a.kernel, b.kernel)
    assert all(np.array_equal(p, q) for p, q in zip(a.positions, b.positions))
    assert _gap(a.images, b.images) < 1e-5
    with pytest.raises(ValueError, match="renders on the CPU only"):
        next(simulate_blocks(make_kernel("lattice"), Grid(8, 20.0),
                             Recipe(n=1, max_scatterers=2, scattering="full"), device="cpu"))


def test_compile_falls_back_to_eager(monkeypatch):
    def broken(fn, **kw):
        def run(*args):
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    fn = compiled(lambda x: x + 1, True)
    with pytest.warns(RuntimeWarning, match="torch.compile is not usable"):
        assert fn(torch.ones(1)).item() == 2.0
    assert fn.active is None and fn(torch.ones(1)).item() == 2.0


def test_device_resolution():
    assert str(resolve_device("cpu")) == "cpu" and str(resolve_device(None)) == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(DeviceUnavailable, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceUnavailable, match="'cuda' asked for but not available"):
            resolve_device("cuda")
    with using_device("cpu"):
        assert default_device() == "cpu"
