"""The learned side on a torch device (extra 'ml'), exercised on the CPU: the stream
rendered by the torch backend, targets encoded on the device, a training step, models
loaded onto a device."""

import numpy as np
import pytest

from helpers import require_torch

pytestmark = pytest.mark.torch
torch = require_torch()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One thread for torch and numba: tiny tensors gain nothing from more, and on a
    shared 2-core machine OpenMP threads left spinning after a parallel loop slow the
    training steps 20-fold."""
    import numba

    threads, loops = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    numba.set_num_threads(loops)

from qpiset.core import Grid  # noqa: E402
from qpiset.inverse.learned.data import SimulatedStream, positions_of  # noqa: E402
from qpiset.inverse.learned.detector import DetectorNet, UNetDetector, load_detector  # noqa: E402
from qpiset.inverse.learned.kernel_vae import LearnedKernel  # noqa: E402
from qpiset.inverse.learned.targets import encode, encode_tensor  # noqa: E402
from qpiset.physics import FriedelKernel, make_kernel  # noqa: E402
from qpiset.workflows.train_detector import detector_loss, detector_step  # noqa: E402

GRID = Grid(16, 30.0)


def _streams(kernels=None, **options):
    kernels = kernels or [FriedelKernel(), make_kernel("lattice")]
    return (SimulatedStream(kernels, GRID, seed=4, max_scatterers=40, **options),
            SimulatedStream(kernels, GRID, seed=4, max_scatterers=40, device="cpu", **options))


def test_stream_on_the_torch_backend_draws_the_same_scatterers():
    numba, device = _streams(batch_size=8, noise=(0.0, 1.0), varied_strength=0.5)
    for b in range(3):
        a, d = numba.batch(b), device.batch(b)
        assert set(a) == set(d) and d["image"].dtype == torch.float32
        assert torch.equal(a["count"], d["count"])
        assert torch.equal(torch.nan_to_num(a["positions"], 1e9),
                           torch.nan_to_num(d["positions"], 1e9))
        assert torch.equal(a["kernel"], d["kernel"].contiguous())
        gap = (a["image"] - d["image"]).abs().max() / a["image"].abs().max()
        assert float(gap) < 1e-5


def test_targets_encoded_on_the_device_equal_encode():
    batch = _streams(batch_size=8)[1].batch(0)
    occ, off = encode(positions_of(batch), GRID, 2)
    t_occ, t_off = encode_tensor(batch["positions"], GRID, 2)
    assert np.array_equal(occ, t_occ.numpy()) and np.array_equal(off, t_off.numpy())
    # two scatterers in one cell (the later one's offset kept), one outside, padding
    pos = torch.tensor([[[0.1, 0.1], [0.3, 0.2], [90.0, 0.0], [float("nan")] * 2]])
    ref = encode([pos[0, :3].double().numpy()], GRID, 2)
    got = encode_tensor(pos, GRID, 2)
    assert np.array_equal(ref[0], got[0].numpy()) and np.array_equal(ref[1], got[1].numpy())


@pytest.mark.parametrize("mixed", [False, True])
def test_tiny_training_through_the_device_path_learns(mixed):
    stream = iter(_streams([FriedelKernel()], batch_size=8, noise=(0.1, 0.1))[1])
    held, *batches = [next(stream) for _ in range(31)]
    torch.manual_seed(0)
    net = DetectorNet(width=4)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)

    def held_loss():
        occ, off = encode_tensor(held["positions"], GRID, 2)
        with torch.no_grad():
            return float(detector_loss(net(held["image"], held["kernel"]), occ, off)[0])

    before = held_loss()
    amp = torch.bfloat16 if mixed else None
    losses = [float(detector_step(net, opt, batch, GRID, amp)) for batch in batches]
    assert np.isfinite(losses).all()
    assert held_loss() < 0.95 * before, (held_loss(), before)


def test_models_load_on_a_device(tmp_path):
    net, _ = load_detector(device="cpu")
    assert next(net.parameters()).device.type == "cpu"
    detector = UNetDetector(device="cpu")
    assert detector.device.type == "cpu" and detector.batch == 32
    images = np.random.default_rng(0).standard_normal((3, 64, 64))
    prob, off = detector.probabilities(images, images[0])
    assert prob.shape == (3, 128, 128) and off.shape == (3, 2, 128, 128)
    assert LearnedKernel("vae", device="cpu").extractor.device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda' asked for but not available"):
            UNetDetector(device="cuda")


def test_device_noise_and_prefetch_keep_the_scatterers():
    """Noise variates drawn on the device: the same scatterers and kernel rows, white noise
    of the asked level (another realisation), reproducible; the prefetching thread yields
    the stream in order; a batch over 256 images holds every block."""
    kernels = [FriedelKernel(), make_kernel("lattice")]
    numba, device = _streams(kernels, batch_size=300, noise=(0.5, 1.0), start=1,
                             device_noise=True)
    it = iter(device)
    for b in (1, 2):
        a, d = numba.batch(b), next(it)
        assert len(d["image"]) == len(a["image"]) == 300
        assert torch.equal(a["count"], d["count"])
        assert torch.equal(torch.nan_to_num(a["positions"], 1e9),
                           torch.nan_to_num(d["positions"], 1e9))
        ratio = float((a["image"] - d["image"]).std() / a["image"].std())
        assert 0.5 < ratio < 2.0  # two realisations of levels 0.5-1.0: about sqrt(2) level
    again = _streams(kernels, batch_size=300, noise=(0.5, 1.0), device_noise=True)[1]
    assert torch.equal(again.batch(2)["image"], d["image"])


def test_a_broadcast_kernel_row_is_used_once():
    torch.manual_seed(0)
    net = DetectorNet(width=4).eval()
    x, k = torch.randn(3, 16, 16), torch.randn(16, 16)
    with torch.no_grad():
        shared = net(x, k.expand(3, -1, -1))
        full = net(x, k.expand(3, -1, -1).contiguous())
    assert torch.allclose(shared, full, atol=1e-4)
