"""Simulate, train and detect on an accelerator: images/s on the device found, with the
CPU's figures measured in the same run as the baseline, and the CPU-vs-device accuracy.

Workload (the issue's): 64 x 64 px over 100 Å, 100 scatterers per image, Cu(111) at E_F.

1. **render**: the numba renderer on all CPU cores (baseline), the torch renderer on the
   device eager and under ``torch.compile`` (positions already on the device);
2. **stream**: :class:`SimulatedStream` batches (scatterers and noise seeds drawn on the
   CPU by a prefetching thread, images and white-noise variates made on the device), batch
   256; the CPU's numba stream as baseline;
3. **train**: detector training steps at batch 256 (bf16 autocast, ``channels_last``, a
   fused AdamW on CUDA), model only (one batch reused) and fed by the stream, and the
   ratio of the two: eager, and on CUDA through ``torch.compile`` as ``train detector``
   runs them there;
4. **inference**: the shipped detector's probabilities (float32 maps) and ``detect``, batch
   256: float32, and on CUDA its fast path (float16 autocast, ``channels_last``, a CUDA
   graph, decoding on the device); the half-vs-float32 position differences;
5. **accuracy**: ``max |device - CPU| / peak`` for a radial table (friedel), 2D tables
   (lattice, image kernel), Born images with every noise model.

    PYTHONPATH=src python benchmarks/bench_gpu.py [--quick] [--device auto] [--out PATH]

Needs torch, numpy, scipy, numba (not polars). Writes ``benchmarks/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from _common import machine, table  # noqa: E402


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _rate(fn, images: int, device, repeats: int = 3) -> float:
    """Images/s of ``fn()`` (which makes ``images`` images): best of ``repeats`` after one
    warm-up call."""
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return images / best


def _positions(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-50.0, 50.0, (n, 100, 2))


def bench_render(dev, args) -> dict:
    import torch

    from qpiset.core import Grid
    from qpiset.forward import Forward
    from qpiset.forward.torch_backend import TorchRenderer
    from qpiset.physics import FriedelKernel

    op = Forward(FriedelKernel("Cu(111)", energy=0.0), Grid(64, 100.0))
    cpu_pos = _positions(args.cpu_images)
    out = {"cpu_numba": _rate(lambda: op.render_batch(list(cpu_pos)), args.cpu_images,
                              torch.device("cpu"))}
    pos = torch.as_tensor(_positions(args.render_images, 1), dtype=torch.float32, device=dev)
    amp = torch.ones(pos.shape[:2], dtype=torch.float32, device=dev)
    far = float(pos.abs().max())
    for name, compile_ in (("eager", False), ("compiled", True)):
        if compile_ and args.no_compile:
            continue
        renderer = TorchRenderer(op, dev, compile=compile_)
        if compile_:  # the accuracy phase compiled already: time a compilation from scratch
            torch._dynamo.reset()
        t0 = time.perf_counter()
        renderer.render(pos, amp, far)
        _sync(dev)
        out[f"{name}_first_call_s"] = time.perf_counter() - t0
        out[name] = _rate(lambda: renderer.render(pos, amp, far), args.render_images, dev)
        out[f"{name}_compiled"] = renderer._radial.active is not None
    return out


def bench_accuracy(dev) -> dict:
    from qpiset.core import Grid, Recipe
    from qpiset.forward import Forward, as_noise, simulate_blocks
    from qpiset.forward.torch_backend import TorchRenderer
    from qpiset.physics import FriedelKernel, ImageKernel, make_kernel

    grid = Grid(64, 100.0)
    pos = list(_positions(32, 2))
    row = Forward(FriedelKernel(), Grid(65, 120.0)).kernel_row
    out = {}
    kernels = {"friedel (radial)": FriedelKernel(), "lattice (2D)": make_kernel("lattice"),
               "image (2D)": ImageKernel(image=row, fov=120.0)}
    for name, kernel in kernels.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            op = Forward(kernel, grid)
            ref = op.render_batch(pos)
            got = TorchRenderer(op, dev).render_batch(pos).cpu().numpy()
        out[name] = float(np.abs(ref - got).max() / np.abs(ref).max())
    spec = "setpoint:0.3,blur:1.0,lines:0.05:0.2,pink:0.1,white:0.2"
    recipe = Recipe(n=64, seed=1, max_scatterers=10, noise=as_noise(spec))  # LDOS > 0
    cpu = next(simulate_blocks(FriedelKernel(), grid, recipe))[1]
    gpu = next(simulate_blocks(FriedelKernel(), grid, recipe, device=dev))[1].cpu().numpy()
    out[f"born + noise ({spec})"] = float(np.abs(cpu - gpu).max() / np.abs(cpu).max())
    return out


def _stream(dev, batch: int, seed: int = 0, **options):
    from qpiset.core import Grid
    from qpiset.inverse.learned.data import SimulatedStream
    from qpiset.physics import FriedelKernel

    return SimulatedStream([FriedelKernel()], Grid(64, 100.0), batch, seed=seed,
                           noise=(0.0, 1.2), device=None if dev.type == "cpu" else dev,
                           **options)


def bench_stream(dev, args) -> dict:
    import torch

    out = {}
    for name, device, batches in (("cpu_numba", torch.device("cpu"), args.cpu_batches),
                                  ("device", dev, args.batches)):
        it = iter(_stream(device, args.batch))
        next(it)  # tables, compilation
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(batches):
            last = next(it)
        _sync(device)
        out[name] = batches * args.batch / (time.perf_counter() - t0)
        del last
    return out


def _trainer(dev):
    import torch

    from qpiset.forward.device import autocast_dtype
    from qpiset.inverse.learned.detector import DetectorNet

    torch.manual_seed(0)
    net = DetectorNet(width=16).to(dev).train()
    cuda = dev.type == "cuda"
    if cuda:  # as train_detector: NHWC, cuDNN autotuning, a fused optimiser
        net = net.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4,
                            **({"fused": True} if cuda else {}))
    return net, opt, autocast_dtype(dev)


def _train_rates(dev, steps: int, batch: int, compile_: bool = False, fed: bool = True
                 ) -> dict:
    """Training steps per second on one network and optimiser: first with one batch
    reused ("model only"), then fed by the stream, as ``train detector`` runs them
    (``compile_``: through ``torch.compile``, as it does on CUDA)."""
    from qpiset.core import Grid
    from qpiset.workflows.train_detector import _compiled, _first_compiled_step, detector_step

    grid = Grid(64, 100.0)
    net, opt, amp = _trainer(dev)
    model = _compiled(net, compile_)
    it = iter(_stream(dev, batch, seed=7))
    fixed = {k: v.to(dev) for k, v in next(it).items()}
    t0 = time.perf_counter()
    if model is not net:  # compiles (or falls back to eager, with a warning)
        model, _ = _first_compiled_step(model, net, opt, fixed, grid, amp, print)
    for _ in range(2):  # warm-up (cuDNN autotuning, allocations)
        detector_step(model, opt, fixed, grid, amp)
    _sync(dev)
    out = {"compiled": model is not net, "first_steps_s": time.perf_counter() - t0}
    for name in ("model_only", "with_stream") if fed else ("model_only",):
        t0 = time.perf_counter()
        for _ in range(steps):
            b = fixed if name == "model_only" else {
                k: v.to(dev, non_blocking=True) for k, v in next(it).items()}
            detector_step(model, opt, b, grid, amp)
        _sync(dev)
        out[name] = steps * batch / (time.perf_counter() - t0)
    if fed:
        out["stream_keeps"] = out["with_stream"] / out["model_only"]
    return out


def bench_train(dev, args) -> dict:
    """The CPU's eager step (the baseline); on the device the eager step and, on CUDA
    unless ``--no-compile``, the compiled one (what ``train detector`` runs there), each
    model-only and fed by the stream."""
    import torch

    cpu = torch.device("cpu")
    out = {"batch": args.batch,
           "cpu_model_only": _train_rates(cpu, args.cpu_steps, args.batch,
                                          fed=False)["model_only"]}
    eager = _train_rates(dev, args.steps, args.batch)
    out.update(device_model_only=eager["model_only"], device_with_stream=eager["with_stream"],
               stream_keeps=eager["stream_keeps"])
    if dev.type == "cuda" and not args.no_compile:
        out["compiled"] = _train_rates(dev, args.steps, args.batch, compile_=True)
    return out


def _position_gap(ref, got, tol: float = 0.05) -> dict:
    """Two detections of the same images: positions paired with a partner within ``tol``
    Å (the largest such distance), and how many of either have none (detections gained
    or lost where a cell's probability crosses a threshold)."""
    worst, unmatched, total = 0.0, 0, 0
    for a, b in zip(ref, got):
        total += len(a)
        if len(a) == 0 or len(b) == 0:
            unmatched += len(a) + len(b)
            continue
        d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
        for near in (d.min(axis=1), d.min(axis=0)):
            unmatched += int((near > tol).sum())
            if (near <= tol).any():
                worst = max(worst, float(near[near <= tol].max()))
    return {"max_position_diff_A": worst, "tolerance_A": tol, "unmatched": unmatched,
            "positions": total}


def bench_inference(dev, args) -> dict:
    import torch

    from qpiset.core import Grid
    from qpiset.forward import Forward
    from qpiset.inverse.learned.detector import UNetDetector
    from qpiset.physics import FriedelKernel

    grid = Grid(64, 100.0)
    op = Forward(FriedelKernel(), grid)
    row = op.kernel_row
    images = np.random.default_rng(0).standard_normal((args.infer_images, 64, 64))
    out = {}
    cpu = UNetDetector(device="cpu", batch=256)
    n = args.cpu_infer_images
    out["cpu"] = _rate(lambda: cpu.probabilities(images[:n], row), n, torch.device("cpu"),
                       repeats=2)
    out["cpu_detect"] = _rate(lambda: cpu.detect(images[:n], op), n, torch.device("cpu"),
                              repeats=1)
    if dev.type == "cpu":
        return out
    n = args.infer_images
    fp32 = UNetDetector(device=dev, batch=256, fast=False)  # the float32 pipeline
    fast = UNetDetector(device=dev, batch=256)  # half precision, CUDA graph (on CUDA)
    out["device"] = _rate(lambda: fp32.probabilities(images[:n], row), n, dev, repeats=2)
    m = min(n, 2048)  # decoding on the host: about a millisecond per image
    out["device_detect_fp32"] = _rate(lambda: fp32.detect(images[:m], op), m, dev, repeats=1)
    out["device_detect"] = _rate(lambda: fast.detect(images[:n], op), n, dev, repeats=2)
    out["fast"] = fast.fast
    out["amp_dtype"] = str(fast.amp_dtype).split(".")[-1]
    out["graph"] = any(e["graph"] is not None for e in fast._graphs.values())
    # half-precision vs float32 positions on simulated images (1-100 scatterers, noise 0-1.2)
    from qpiset.inverse.learned.data import SimulatedStream

    test = SimulatedStream([FriedelKernel()], grid, 512, seed=11, noise=(0.0, 1.2)).batch(0)
    test = test["image"].numpy()
    out["half_vs_fp32"] = _position_gap(fp32.detect(test, op).positions,
                                        fast.detect(test, op).positions)
    out["half_vs_fp32"]["images"] = len(test)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cuda | mps | cpu")
    parser.add_argument("--quick", action="store_true",
                        help="smaller counts (about a minute on a GPU, a few on 2 CPU cores)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gpu.json")
    args = parser.parse_args(argv)
    import torch

    from qpiset.forward.device import resolve_device

    dev = resolve_device(args.device)
    gpu = dev.type != "cpu"
    sizes = dict(render_images=8192 if gpu else 64, cpu_images=2000, batch=256,
                 batches=40 if gpu else 2, cpu_batches=4, steps=50 if gpu else 1,
                 cpu_steps=3, infer_images=8192 if gpu else 256, cpu_infer_images=512)
    if args.quick:
        sizes.update(render_images=4096 if gpu else 32, cpu_images=500, cpu_batches=2,
                     batches=20 if gpu else 1, steps=25 if gpu else 1, cpu_steps=1,
                     infer_images=4096 if gpu else 64, cpu_infer_images=64)
    for k, v in sizes.items():
        setattr(args, k, v)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)
    print(f"device: {name}; torch {torch.__version__}; {os.cpu_count()} CPU cores")
    record = {"machine": machine(), "device": str(dev), "device_name": name,
              "torch": torch.__version__, "sizes": sizes, "quick": args.quick}
    t0 = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record["complete"] = False
    for key, fn in (("inference", bench_inference), ("accuracy", bench_accuracy),
                    ("render", bench_render), ("stream", bench_stream),
                    ("train", bench_train)):
        t = time.perf_counter()
        record[key] = fn(dev) if key == "accuracy" else fn(dev, args)
        print(f"  {key}: {time.perf_counter() - t:.0f} s {json.dumps(record[key])}", flush=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    record["complete"] = True
    record["seconds"] = time.perf_counter() - t0
    _report(record)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", flush=True)
    return record


def _report(r: dict) -> None:
    def f(x):
        return f"{x:,.0f}"

    rows = [["render (numba, all CPU cores)", f(r["render"]["cpu_numba"]), "baseline"],
            ["render (torch, eager)", f(r["render"]["eager"]),
             f"{r['render']['eager'] / r['render']['cpu_numba']:.1f}x"]]
    if "compiled" in r["render"]:
        rows.append(["render (torch.compile)" + ("" if r["render"]["compiled_compiled"]
                                                 else " [fell back to eager]"),
                     f(r["render"]["compiled"]),
                     f"{r['render']['compiled'] / r['render']['cpu_numba']:.1f}x"])
    s, t, i = r["stream"], r["train"], r["inference"]
    rows += [["stream (CPU, numba)", f(s["cpu_numba"]), "baseline"],
             ["stream (device)", f(s["device"]), f"{s['device'] / s['cpu_numba']:.1f}x"],
             [f"train step, batch {t['batch']} (CPU)", f(t["cpu_model_only"]), "baseline"],
             ["train step, model only (device)", f(t["device_model_only"]),
              f"{t['device_model_only'] / t['cpu_model_only']:.1f}x"],
             ["train step, fed by the stream (device)", f(t["device_with_stream"]),
              f"keeps {100 * t['stream_keeps']:.0f} % of model only"],
             *([["train step, compiled, model only (device)", f(c["model_only"]),
                 f"{c['model_only'] / t['cpu_model_only']:.1f}x"],
                ["train step, compiled, fed by the stream (device)", f(c["with_stream"]),
                 f"keeps {100 * c['stream_keeps']:.0f} % of model only"]]
               if (c := t.get("compiled")) else []),
             ["inference (CPU)", f(i["cpu"]), "baseline"]]
    if "device" in i:
        mode = i.get("amp_dtype", "") + (", CUDA graph" if i.get("graph") else "")
        rows += [["inference, float32 maps (device)", f(i["device"]),
                  f"{i['device'] / i['cpu']:.1f}x"],
                 ["detect (CPU)", f(i["cpu_detect"]), "baseline"],
                 ["detect, float32 (device)", f(i["device_detect_fp32"]),
                  f"{i['device_detect_fp32'] / i['cpu_detect']:.1f}x"],
                 [f"detect ({mode}, decoded on the device)", f(i["device_detect"]),
                  f"{i['device_detect'] / i['cpu_detect']:.1f}x"]]
    print()
    print(f"{r['device_name']} ({r['device']}), {r['seconds']:.0f} s")
    print(table(rows, ["what", "images/s", "vs CPU"]))
    print()
    print(table([[k, f"{v:.1e}"] for k, v in r["accuracy"].items()],
                ["accuracy: kernel", "max |device - CPU| / peak"]))
    if "half_vs_fp32" in i:
        g = i["half_vs_fp32"]
        print(f"\ndetect, {i['amp_dtype']} vs float32 on {g['images']} simulated images: "
              f"largest paired position difference {g['max_position_diff_A']:.4f} A; "
              f"{g['unmatched']} of {g['positions']} positions gained or lost (no partner "
              f"within {g['tolerance_A']} A)")


if __name__ == "__main__":
    main()
