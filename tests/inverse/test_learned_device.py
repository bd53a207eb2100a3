"""The learned side on a torch device (extra 'ml'), exercised on the CPU: the stream
rendered by the torch backend, targets encoded on the device, a training step, models
loaded onto a device."""

import numpy as np
import pytest

from helpers import one_thread, require_torch

pytestmark = pytest.mark.torch
torch = require_torch()


_one_thread = pytest.fixture(autouse=True, scope="module")(one_thread)

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


@pytest.mark.parametrize("high", [0.9, 0.0])
def test_the_fast_path_decodes_as_decode(high):
    """The fast path of ``detect`` (the kept cells gathered on the device, batches
    pipelined one deep, the last one partial) gives ``decode``'s positions; run on the
    CPU in float32 through the same code, without a CUDA graph. ``high`` 0 keeps every
    cell: more than the slots hold, so each batch is redone eagerly."""
    from qpiset.forward import Forward

    torch.manual_seed(0)
    net = DetectorNet(width=4)
    with torch.no_grad():
        net.head[2].bias[:4] = 0.0  # many cells kept
    detector = UNetDetector.from_net(net, threshold=0.5, high=high, batch=4)
    assert detector.fast is False  # the CPU's default: probabilities, then decode
    op = Forward(FriedelKernel(), GRID)
    images = np.random.default_rng(1).standard_normal((6, 16, 16))
    ref = detector.detect(images, op)
    fast = UNetDetector.from_net(net, threshold=0.5, high=high, batch=4, fast=True)
    got = fast.detect(images, op)
    assert sum(map(len, ref.positions)) > (3000 if high == 0 else 0)
    assert len(got.positions) == len(images)
    for a, b, ca, cb in zip(ref.positions, got.positions, ref.confidence, got.confidence):
        assert a.shape == b.shape and np.allclose(a, b, atol=1e-5)
        assert np.allclose(ca, cb, atol=1e-5)


def test_kept_cells_are_nonzero_in_static_slots():
    from qpiset.inverse.learned.detector import kept_cells

    gen = torch.Generator().manual_seed(3)
    keep = torch.rand((3, 8, 8), generator=gen) < 0.2
    conf, shift = torch.rand((3, 8, 8), generator=gen), torch.rand((3, 2, 8, 8), generator=gen)
    b, iy, ix = keep.nonzero(as_tuple=True)
    want = (b * 64 + iy * 8 + ix).tolist()
    for cap in (len(want) + 5, len(want), 4):
        index, values, total = kept_cells(keep, conf, shift, cap)
        assert index.shape == (cap,) and values.shape == (cap, 3) and int(total) == len(want)
        m = min(cap, len(want))
        assert index[:m].tolist() == want[:m]
        assert torch.equal(values[:m], torch.stack([conf[b, iy, ix], shift[b, 0, iy, ix],
                                                    shift[b, 1, iy, ix]], 1)[:m])
    none = kept_cells(torch.zeros((1, 4, 4), dtype=torch.bool), conf[:1, :4, :4],
                      shift[:1, :, :4, :4], 3)
    assert int(none[2]) == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_cuda_fast_path_keeps_the_positions():  # pragma: no cover - CUDA only
    from qpiset.forward import Forward

    grid = Grid(64, 100.0)
    op = Forward(FriedelKernel(), grid)
    images = SimulatedStream([FriedelKernel()], grid, 64, seed=2, noise=(0.0, 1.0)).batch(0)
    images = images["image"].numpy()
    ref = UNetDetector(device="cuda", fast=False).detect(images, op)
    got = UNetDetector(device="cuda").detect(images, op)
    total = sum(map(len, ref.positions))
    lost = 0
    for a, b in zip(ref.positions, got.positions):
        if len(a) and len(b):  # a cell kept by both: the same position within 0.05 A
            d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
            lost += int((d.min(axis=1) > 0.05).sum()) + int((d.min(axis=0) > 0.05).sum())
        else:
            lost += len(a) + len(b)
    assert lost <= 0.02 * total  # gained or lost at the thresholds (half precision)


def test_stream_draws_in_two_worker_processes_keep_the_batches_in_order():
    """Draws made ahead by two spawned workers, taken in turn: the same batches, in the same
    order, as the draws made in a thread; an error in the drawing thread reaches the
    consumer."""
    import itertools

    from qpiset.physics import FriedelKernel

    def stream(draw_workers):
        return SimulatedStream([FriedelKernel("Cu(111)")], Grid(32, 50.0), batch_size=4,
                               seed=3, max_scatterers=5, device="cpu", noise=(0.2, 0.5),
                               draw_workers=draw_workers, prefetch=2)

    for a, b in zip(itertools.islice(iter(stream(2)), 4), itertools.islice(iter(stream(0)), 4)):
        assert torch.equal(a["image"], b["image"])
        assert torch.equal(torch.nan_to_num(a["positions"]), torch.nan_to_num(b["positions"]))
    broken = stream(0)
    broken._draw = lambda j, recipe, pin: 1 / 0
    with pytest.raises(ZeroDivisionError):
        next(iter(broken))
