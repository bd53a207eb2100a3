"""Learned models (extra 'ml'): data pipelines, targets, training mechanics, shipped weights.

Training tests train tiny models for a few steps only; the shipped models' accuracy is
measured on generated data with known truth (the full comparison is benchmarks/bench_ml.py).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get("QPISET_REQUIRE_TORCH"):  # CI: the extra is installed, never skip
    import torch
else:
    torch = pytest.importorskip("torch")

import qpiset  # noqa: E402
from qpiset.bench import aggregate, kernel_nmse, score_detections  # noqa: E402
from qpiset.grid import Grid  # noqa: E402
from qpiset.io import FormatError  # noqa: E402
from qpiset.ml.data import (RowFileImages, SimulatedStream, StoreImages, collate,  # noqa: E402
                            positions_of)
from qpiset.ml.detector import (DetectorNet, load_detector,  # noqa: E402
                                make_unet_detector, physics_channels)
from qpiset.ml.kernel_vae import canonical_kernel, load_kernel_extractor  # noqa: E402
from qpiset.ml.targets import decode, encode  # noqa: E402
from qpiset.physics import FriedelKernel, make_kernel  # noqa: E402
from qpiset.synth import kernel_image, render_batch, simulate  # noqa: E402

G64 = Grid(64, 100.0)


# ---------------------------------------------------------------- targets and inputs


def test_targets_round_trip_exactly():
    g = Grid(32, 50.0)
    rng = np.random.default_rng(1)
    pos = rng.uniform(-25, 25, (40, 2))
    occ, off = encode([pos], g, upsample=2)
    cells = {tuple(c) for c in np.floor((pos - (g.x[0] - g.pitch / 2)) / (g.pitch / 2)).astype(int)}
    assert occ.sum() == len(cells)  # one occupied cell per scatterer (none shared here)
    assert len(cells) == 40
    found, conf = decode(occ, off, g, upsample=2, threshold=0.5, high=0.5)
    a = pos[np.lexsort(pos.T)]
    b = found[0][np.lexsort(found[0].T)]
    assert np.allclose(a, b, atol=1e-5) and np.all(conf[0] == 1.0)
    # outside the cells: left out
    occ, _ = encode([np.array([[60.0, 0.0], [0.0, 0.0]])], g)
    assert occ.sum() == 1


def test_decode_keeps_close_pairs_and_drops_weak_shoulders():
    g = Grid(8, 7.0)
    prob = np.zeros((1, 16, 16), np.float32)
    off = np.zeros((1, 2, 16, 16), np.float32)
    prob[0, 5, 5], prob[0, 5, 6] = 0.95, 0.8   # a close pair: both confident
    prob[0, 10, 10], prob[0, 10, 11] = 0.9, 0.35  # a peak and its weak shoulder
    found, _ = decode(prob, off, g, 2, threshold=0.3, high=0.7)
    assert len(found[0]) == 3


def test_matched_and_wiener_channels_peak_at_the_scatterer():
    k = FriedelKernel()
    x = G64.x
    truth = np.array([[x[20], x[40]]])  # a pixel centre: (ix, iy) = (20, 40)
    img = render_batch(k, G64, [truth])[0]
    maps, amplitude = physics_channels(torch.tensor(img[None], dtype=torch.float32),
                                       torch.tensor(kernel_image(k, G64)[None],
                                                    dtype=torch.float32))
    for c in (1, 2, 3):
        iy, ix = np.unravel_index(int(maps[0, c].argmax()), (64, 64))
        # the kernel row is centred between pixels: the peak sits half a pixel off
        assert abs(ix - 20.5) <= 0.5 and abs(iy - 40.5) <= 0.5, (c, ix, iy)
    # one scatterer: log(std(y) R / ||k||) is log of (nearly) 1 (the pattern is not cut much)
    assert abs(float(amplitude[0, 0])) < 0.5


# ---------------------------------------------------------------- data pipelines


@pytest.fixture(scope="module")
def row_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ml") / "d.csv"
    qpiset.write(path, simulate(FriedelKernel(), Grid(16, 30.0), n=10, seed=2,
                                max_scatterers=5, noise=0.2))
    return path


def test_row_file_dataset_reads_lazily_what_read_reads(row_file, tmp_path):
    ds = qpiset.read(row_file)
    data = RowFileImages(row_file)
    assert len(data) == ds.n_images and data.grid == ds.grid
    for i in (0, 4, 9, -1):
        item = data[i]
        assert np.array_equal(item["image"].numpy(), ds.images[i].astype(np.float32))
        k = int(item["count"])
        assert np.array_equal(item["positions"][:k].numpy(), ds.positions[i].astype(np.float32))
        assert torch.isnan(item["positions"][k:]).all()
    assert np.array_equal(data[0]["kernel"].numpy(), ds.kernel.astype(np.float32))
    with pytest.raises(IndexError):
        data[10]
    # gzip: read whole, same items
    gz = tmp_path / "d.csv.gz"
    qpiset.write(gz, ds)
    assert torch.equal(RowFileImages(gz)[3]["image"], data[3]["image"])


def test_row_file_dataset_names_the_bad_line_and_column(row_file, tmp_path):
    lines = row_file.read_text().splitlines()
    fields = lines[5].split(",")
    fields[7] = "oops"
    lines[5] = ",".join(fields)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    data = RowFileImages(bad)
    assert torch.equal(data[0]["image"], RowFileImages(row_file)[0]["image"])
    with pytest.raises(FormatError) as err:
        data[2]  # line 6
    assert str(err.value).startswith(f"{bad}:6:8:")


def test_dataloader_workers_see_the_same_items(row_file):
    from torch.utils.data import DataLoader

    data = RowFileImages(row_file)
    one = list(DataLoader(data, batch_size=4, collate_fn=collate))
    two = list(DataLoader(data, batch_size=4, collate_fn=collate, num_workers=2))
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(one, two))


def test_store_dataset(row_file, tmp_path, run):
    store = tmp_path / "d.zarr"
    run("convert", row_file, store)
    data, rows = StoreImages(store), RowFileImages(row_file)
    assert len(data) == len(rows)
    for i in (0, 9):
        assert torch.equal(data[i]["image"], rows[i]["image"])
        assert torch.equal(data[i]["count"], rows[i]["count"])


def test_simulated_stream_is_reproducible_for_any_number_of_workers():
    from torch.utils.data import DataLoader

    g = Grid(16, 30.0)
    stream = SimulatedStream([FriedelKernel(), FriedelKernel("Ag(111)", energy=0.1)], g,
                             batch_size=3, seed=5, max_scatterers=6, noise=(0.0, 0.5))

    def first(loader, n=4):
        out = []
        for b in loader:
            out.append(b)
            if len(out) == n:
                return out

    a = first(DataLoader(stream, batch_size=None))
    b = first(stream.loader(num_workers=2))
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["image"], y["image"])
        assert np.array_equal(x["positions"].numpy(), y["positions"].numpy(), equal_nan=True)
    assert not torch.equal(a[0]["image"], a[1]["image"])
    resumed = SimulatedStream(stream.kernels, g, 3, seed=5, max_scatterers=6, noise=(0.0, 0.5),
                              start=2)
    assert torch.equal(next(iter(resumed))["image"], a[2]["image"])


def test_simulated_stream_images_are_the_forward_model():
    g = Grid(16, 30.0)
    k = FriedelKernel()
    batch = SimulatedStream([k], g, batch_size=4, seed=1, max_scatterers=8,
                            noise=(0.0, 0.0)).batch(0)
    clean = render_batch(k, g, positions_of(batch))
    assert np.allclose(batch["image"].numpy(), clean, atol=1e-6)
    assert np.array_equal(batch["kernel"][0].numpy(), kernel_image(k, g).astype(np.float32))
    assert all(1 <= len(p) <= 8 and np.all(np.abs(p) <= 15) for p in positions_of(batch))


# ---------------------------------------------------------------- training mechanics


TINY = dict(n_kernels=0, width=4, batch_size=4, steps_per_epoch=8, lr=3e-3, val_images=4,
            val_kernels=0, patience=10, grid=Grid(16, 30.0))


def test_tiny_detector_training_learns_saves_and_resumes(tmp_path):
    from qpiset.ml.train import train_detector

    from qpiset.ml.train import detector_loss

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
    k = torch.tensor(kernel_image(FriedelKernel(), Grid(16, 30.0))[None].repeat(2, 0),
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
    from qpiset.ml.train import train_detector

    rec = train_detector(tmp_path / "c.pt", epochs=50, seed=1, **{**TINY, "patience": 1,
                                                                    "lr": 1e-9})
    assert len(rec["history"]) == 2  # nothing learnt at lr ~ 0: stops after one bad epoch
    rec = train_detector(tmp_path / "d.pt", epochs=50, seed=1, max_minutes=1e-6, **TINY)
    assert len(rec["history"]) == 1


def test_training_on_a_file(tmp_path, row_file):
    from qpiset.ml.train import train_detector

    rec = train_detector(tmp_path / "f.pt", data=row_file, epochs=1, seed=0, **TINY)
    assert rec["step"] == 8 and rec["data"] == str(row_file)


def test_tiny_kernel_vae_training(tmp_path):
    from qpiset.ml.train_kernel import train_kernel_vae

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


def test_canonical_kernel_and_bad_checkpoints(tmp_path):
    k = kernel_image(FriedelKernel(), Grid(16, 30.0))
    assert np.allclose(canonical_kernel(-2 * k), canonical_kernel(k))
    with pytest.raises(ValueError):
        canonical_kernel(np.zeros((4, 4)))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt: not a qpiset checkpoint"):
        load_detector(junk)
    torch.save({"kind": "detector"}, tmp_path / "det.pt")
    with pytest.raises(ValueError, match="holds a 'detector' model, expected 'kernel-vae'"):
        load_kernel_extractor(tmp_path / "det.pt")


# ---------------------------------------------------------------- shipped models


def _score(detector, ds):
    found, conf = detector.detect(ds.images)
    assert all(len(c) == len(f) and np.all((c >= 0) & (c <= 1)) for f, c in zip(found, conf))
    return aggregate(score_detections(t, p) for t, p in zip(ds.positions, found))


def test_shipped_detector_on_the_default_kernel():
    ds = simulate(FriedelKernel(), G64, n=12, seed=2024, min_scatterers=51, max_scatterers=100,
                  noise=0.3)
    det = make_unet_detector(ds.kernel, ds.grid)
    s = _score(det, ds)
    assert s.f1 >= 0.9 and s.rmse <= 0.6, (s.f1, s.rmse)


def test_shipped_detector_on_kernels_it_never_saw():
    """Kernels drawn from the family with a seed the training bank never used, a lattice
    one among them: the file's kernel row is all the detector gets."""
    from qpiset.families import sample_family

    family = sample_family(3, seed=424242, fov=100.0)
    for params in family:
        kernel = make_kernel(**params)
        ds = simulate(kernel, G64, n=6, seed=5, min_scatterers=11, max_scatterers=40, noise=0.1)
        s = _score(make_unet_detector(ds.kernel, ds.grid), ds)
        assert s.f1 >= 0.8, (params, s.f1)


def test_shipped_kernel_extractor_on_held_out_kernels():
    """Both learned extractors recover kernels they never saw (a zero or random kernel
    scores NMSE 1); which of the two is better is measured in benchmarks/bench_ml.py."""
    from qpiset.families import sample_family

    extractor, state = load_kernel_extractor()
    record = state["info"]["record"]
    held_out = record["test_kernels"][:6]
    family = sample_family(record["n_kernels"], record["seed"], fov=record["grid"][1])
    assert len(family) == record["n_kernels"]
    rng = np.random.default_rng(7)
    vae, direct = [], []
    for i in held_out:
        kernel = make_kernel(**family[i])
        ds = simulate(kernel, G64, n=8, seed=int(rng.integers(1 << 30)), noise=0.1)
        truth = ds.kernel
        vae.append(np.mean([kernel_nmse(extractor(img[None], "vae"), truth) for img in ds.images]))
        direct.append(np.mean([kernel_nmse(extractor(img[None], "direct"), truth)
                               for img in ds.images]))
    assert np.median(vae) < 0.4 and np.median(direct) < 0.4, (vae, direct)
    assert np.mean(vae) < 0.6 and np.mean(direct) < 0.6, (vae, direct)


# ---------------------------------------------------------------- command line


def test_cli_detect_bench_kernel_with_learned_methods(tmp_path, run):
    path = tmp_path / "d.csv"
    run("generate", path, "--n", 4, "--seed", 1, "--min-scatterers", 20, "--max-scatterers", 40,
        "--noise", 0.3)
    pred = tmp_path / "p.json"
    run("detect", path, "--method", "unet", "--out", pred)
    rec = json.loads(pred.read_text())
    assert rec["method"] == "unet" and len(rec["positions"]) == 4
    assert [len(c) for c in rec["confidence"]] == [len(p) for p in rec["positions"]]
    res = tmp_path / "r.json"
    out = run("bench", path, "--methods", "unet,matched", "--out", res).output
    results = json.loads(res.read_text())
    assert results["methods"]["unet"]["learned"] and not results["methods"]["matched"]["learned"]
    assert results["methods"]["unet"]["overall"]["f1"] > results["methods"]["matched"]["overall"]["f1"]
    assert "| unet |" in out
    k = tmp_path / "k.npy"
    assert "NMSE" in run("kernel", path, "--method", "vae", "--out", k).output
    assert np.load(k).shape == (64, 64)
    run("kernel", path, "--method", "direct", "--out", k)


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
    err = run("detect", row_file, "--method", "unet", "--weights", junk, "--out", preds,
              code=1).output
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


def test_core_does_not_import_torch():
    code = ("import sys, qpiset, qpiset.bench, qpiset.methods, qpiset.cli, qpiset.inverse; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
