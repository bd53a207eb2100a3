"""Training loops of the learned models (extra 'ml'): tiny models for a few steps only,
to test the mechanics (learning, checkpoints, resuming, early stopping, time budgets)."""

import numpy as np
import pytest

from helpers import require_torch

pytestmark = pytest.mark.torch
torch = require_torch()

from qpiset.core import Grid  # noqa: E402
from qpiset.forward import Forward  # noqa: E402
from qpiset.inverse.learned.data import SimulatedStream, positions_of  # noqa: E402
from qpiset.inverse.learned.detector import DetectorNet, load_detector  # noqa: E402
from qpiset.inverse.learned.kernel_vae import load_kernel_extractor  # noqa: E402
from qpiset.inverse.learned.targets import encode  # noqa: E402
from qpiset.physics import FriedelKernel  # noqa: E402
from qpiset.workflows.train_detector import detector_loss, train_detector  # noqa: E402
from qpiset.workflows.train_kernel import train_kernel_vae  # noqa: E402

TINY = dict(n_kernels=0, width=4, batch_size=4, steps_per_epoch=8, lr=3e-3, val_images=4,
            val_kernels=0, patience=10, grid=Grid(16, 30.0))


@pytest.mark.slow  # 4-5 s, 20-30 s under load
def test_tiny_detector_training_learns_saves_and_resumes(tmp_path):
    g = TINY["grid"]
    held = SimulatedStream([FriedelKernel()], g, batch_size=16, seed=99, max_scatterers=20,
                           noise=(0.1, 0.1)).batch(0)
    occ, off = (torch.from_numpy(t) for t in encode(positions_of(held), g, 2))

    def held_loss(net):
        with torch.no_grad():
            return float(detector_loss(net(held["image"], held["kernel"]), occ, off)[0])

    torch.manual_seed(3)
    before = held_loss(DetectorNet(width=TINY["width"]))  # the run's initial network
    a = tmp_path / "a.pt"
    rec = train_detector(a, epochs=4, seed=3, **TINY)
    trained = DetectorNet(width=TINY["width"])
    trained.load_state_dict(torch.load(a, weights_only=True)["train"]["last"])
    assert held_loss(trained) < 0.95 * before, (held_loss(trained), before)
    assert {"f1", "precision", "recall", "rmse"} <= set(rec["history"][-1]["val"]["all"])
    # the checkpoint reloads to the same network, bit for bit
    net, state = load_detector(a)
    assert state["info"]["threshold"] == rec["threshold"]
    x = torch.randn(2, 16, 16)
    k = torch.tensor(Forward(FriedelKernel(), Grid(16, 30.0)).kernel_row[None].repeat(2, 0),
                     dtype=torch.float32)
    again, _ = load_detector(a)
    assert torch.equal(net(x, k), again(x, k))
    # interrupted after 1 of 4 epochs (time budget), then resumed == never stopped
    b = tmp_path / "b.pt"
    first = train_detector(b, epochs=4, seed=3, max_minutes=1e-9, **TINY)
    assert first["step"] == 8
    train_detector(b, epochs=4, seed=3, resume=True, **TINY)
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert sb["train"]["record"]["step"] == 32
    for key in sa["train"]["last"]:
        assert torch.equal(sa["train"]["last"][key], sb["train"]["last"][key]), key
    for key in sa["state"]:
        assert torch.equal(sa["state"][key], sb["state"][key]), key
    # a shipped-style checkpoint (no training state) cannot be resumed
    del sa["train"]
    torch.save(sa, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="bare.pt: has no training state"):
        train_detector(tmp_path / "bare.pt", epochs=4, seed=3, resume=True, **TINY)


def test_early_stopping_and_time_budget(tmp_path):
    rec = train_detector(tmp_path / "c.pt", epochs=50, seed=1, **{**TINY, "patience": 1,
                                                                    "lr": 1e-9})
    assert len(rec["history"]) == 2  # nothing learnt at lr ~ 0: stops after one bad epoch
    rec = train_detector(tmp_path / "d.pt", epochs=50, seed=1, max_minutes=1e-6, **TINY)
    assert len(rec["history"]) == 1


def test_training_on_a_file(tmp_path, row_file):
    rec = train_detector(tmp_path / "f.pt", data=row_file, epochs=1, seed=0, **TINY)
    assert rec["step"] == 8 and rec["data"] == str(row_file)


def test_tiny_kernel_vae_training(tmp_path):
    out = tmp_path / "k.pt"
    rec = train_kernel_vae(out, n_kernels=4, n_test=1, images_per_kernel=4,
                           grid=Grid(32, 50.0), vae_steps=30, observer_steps=30, batch_size=8,
                           latent=4, width=4, seed=0, models=["friedel"])
    h = rec["history"]
    for name in ("vae", "direct"):
        assert h[name][-1]["loss"] < h[name][0]["loss"] or len(h[name]) == 1
    assert rec["evaluation"]["vae"]["kernels"] == 1
    extractor, state = load_kernel_extractor(out)
    imgs = np.random.default_rng(0).standard_normal((3, 32, 32))
    k1 = extractor(imgs)
    again, _ = load_kernel_extractor(out)
    assert np.array_equal(k1, again(imgs))
    assert np.allclose(k1, k1[::-1, ::-1])  # inversion symmetric, K(r) = K(-r)
    assert np.isclose(np.sqrt(np.mean(k1**2)), 1.0)


def test_cli_train_and_bad_input(tmp_path, run, row_file):
    ckpt = tmp_path / "t.pt"
    out = run("train", "detector", "--out", ckpt, "--data", row_file, "--width", 4,
              "--batch-size", 4, "--steps-per-epoch", 3, "--epochs", 1, "--val-images", 2,
              "--val-kernels", 0, "--kernels", 0).output
    assert f"{ckpt}: detector after 3 steps" in out
    preds = tmp_path / "p.json"
    # a checkpoint trained on a 16 px grid still loads for a 16 px file
    run("detect", row_file, "--method", "unet", "--weights", ckpt, "--out", preds)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"garbage")
    err = run("detect", row_file, "--method", "unet", "--weights", junk, "--out",
              tmp_path / "q.json", code=1).output
    assert "junk.pt: not a qpiset checkpoint" in err
    lines = row_file.read_text().splitlines()
    lines[4] = lines[4].replace(",", ",x", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    err = run("train", "detector", "--out", tmp_path / "u.pt", "--data", bad, "--width", 4,
              "--batch-size", 10, "--steps-per-epoch", 1, "--epochs", 1, "--kernels", 0,
              "--val-kernels", 0, "--val-images", 2, code=1).output
    assert f"{bad}:5:" in err and "Traceback" not in err
    run("train", "detector", "--out", ckpt, "--data", row_file, "--simulate", code=2)


@pytest.mark.slow  # about 10 s
def test_training_through_torch_compile_is_the_same_and_falls_back(tmp_path):
    """The compiled network (here the ``aot_eager`` backend: dynamo's graph capture without
    a C compiler) trains to the same weights as the eager one, and saves the network's own
    weights; a compiler failing on the first step leaves training eager and unchanged."""
    import warnings

    from torch._dynamo import register_backend

    eager = train_detector(tmp_path / "a.pt", epochs=1, seed=3, compile=False, **TINY)
    compiled = train_detector(tmp_path / "b.pt", epochs=1, seed=3, compile="aot_eager", **TINY)
    assert compiled["compiled"] is True and eager["compiled"] is False
    sa, sb = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert list(sa["state"]) == list(sb["state"])  # no "_orig_mod." prefixes
    for key, value in sa["train"]["last"].items():
        assert torch.allclose(value.float(), sb["train"]["last"][key].float(), atol=1e-5), key

    @register_backend
    def qpiset_test_failing(gm, inputs):
        raise RuntimeError("no compiler in this test")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        failed = train_detector(tmp_path / "c.pt", epochs=1, seed=3,
                                compile="qpiset_test_failing", **TINY)
    assert failed["compiled"] is False
    assert any("training eagerly" in str(w.message) for w in caught)
    assert failed["history"][0]["loss"] == pytest.approx(eager["history"][0]["loss"], rel=1e-6)


@pytest.mark.slow  # about 5 s
def test_resuming_without_a_batch_size_takes_the_runs_own(tmp_path):
    """The default batch size depends on the device (32 on the CPU, 256 on a GPU); a run
    resumed without one goes on with its own, whatever the device."""
    out = tmp_path / "a.pt"
    train_detector(out, epochs=2, seed=3, max_minutes=1e-9, **TINY)
    rest = {k: v for k, v in TINY.items() if k != "batch_size"}
    rec = train_detector(out, epochs=2, seed=3, resume=True, **rest)
    assert rec["batch_size"] == TINY["batch_size"] and rec["step"] == 16
    with pytest.raises(ValueError, match="batch_size 4, now 8"):
        train_detector(out, epochs=2, seed=3, resume=True, **{**rest, "batch_size": 8})
