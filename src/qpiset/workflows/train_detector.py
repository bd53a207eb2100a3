"""Training the detector network (``qpiset train detector``); the kernel extractor's loop
is :mod:`.train_kernel`.

Training is a pure function of its arguments and seed (the simulated stream is indexed by
batch number, the networks are initialised from ``torch.manual_seed(seed)``, no dropout),
so a run resumed from its checkpoint ends with the same weights as one never stopped.
An *epoch* is ``steps_per_epoch`` optimiser steps; after each one the model is scored on
a fixed validation set with the benchmark's metrics (:mod:`qpiset.bench.metrics`) and the
checkpoint is written atomically. Training stops after ``epochs`` epochs, after
``patience`` epochs without a better validation score, or when ``max_minutes`` have passed.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..bench import BANDS, aggregate, score_detections
from ..core.grid import Grid
from ..forward import sample_family
from ..inverse.learned.data import SimulatedStream, collate, open_images, positions_of
from ..inverse.learned.detector import DetectorNet, UNetDetector, save_detector
from ..inverse.learned.nets import load_checkpoint
from ..inverse.learned.targets import encode_tensor
from ..physics import FriedelKernel, make_kernel

__all__ = ["detector_kernels", "detector_loss", "detector_step", "train_detector",
           "validation_set", "score_batches", "tune_thresholds"]

Progress = Callable[[int, str], Any]


def detector_kernels(n: int, seed: int = 0, grid: Grid | None = None,
                     include_default: bool = True) -> list:
    """The kernel bank of the simulated stream: the dataset's default kernel (Cu(111) at
    E_F) and ``n`` kernels of the physics family (:func:`qpiset.forward.sample_family`:
    surface states, square and honeycomb lattices, d- and s-wave superconductors)."""
    grid = grid or Grid()
    family = [make_kernel(**p) for p in sample_family(n, seed, fov=grid.fov)] if n else []
    return ([FriedelKernel()] if include_default else []) + family


def detector_loss(out: torch.Tensor, occ: torch.Tensor, off: torch.Tensor,
                  offset_weight: float = 5.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-image sum of the cells' binary cross-entropy plus ``offset_weight`` times the
    squared offset error at occupied cells (cell units)."""
    loss, bce, offset = _loss_terms(out, occ, off, offset_weight)
    return loss, {"bce": float(bce.detach()), "offset": float(offset.detach())}


def _loss_terms(out, occ, off, offset_weight: float = 5.0):
    """``(loss, bce, offset)`` of :func:`detector_loss`, tensors (nothing waits for the
    device), computed in float32."""
    out = out.float()
    B = out.shape[0]
    bce = F.binary_cross_entropy_with_logits(out[:, 0], occ, reduction="sum") / B
    offset = ((out[:, 1:] - off).square() * occ[:, None]).sum() / B
    return bce + offset_weight * offset, bce, offset


def detector_step(net, opt, batch: dict, grid: Grid, amp_dtype=None) -> torch.Tensor:
    """One optimiser step of ``net`` on a batch (tensors on the network's device): the
    targets encoded there (:func:`~qpiset.inverse.learned.targets.encode_tensor`), the
    forward pass under autocast to ``amp_dtype`` (e.g. ``torch.bfloat16``; None: float32),
    gradients clipped to norm 10. Returns the loss, a tensor on the device (reading it
    waits for the device)."""
    images, kernels = batch["image"], batch["kernel"]
    occ, off = encode_tensor(batch["positions"], grid, net.upsample)
    with torch.autocast(images.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        pred = net(images, kernels)
    loss = _loss_terms(pred, occ, off)[0]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
    opt.step()
    return loss.detach()


def validation_set(kernels: Sequence, grid: Grid, levels: Sequence[float], images: int,
                   seed: int) -> list[dict[str, torch.Tensor]]:
    """Fixed validation batches: ``images`` per kernel and noise level, scatterer counts
    uniform in 1..100 (one batch each)."""
    batches = []
    for j, kernel in enumerate(kernels):
        for i, level in enumerate(levels):
            stream = SimulatedStream([kernel], grid, batch_size=images,
                                     seed=seed + 1000 * j + i, noise=(level, level))
            batches.append(stream.batch(0))
    return batches


def score_batches(detector: UNetDetector, batches, grid: Grid,
                  prob_cache=None) -> dict[str, Any]:
    """Precision, recall, F1, RMSE over all images and per count band (as ``qpiset bench``)."""
    scores = []
    for b, batch in enumerate(batches):
        if prob_cache is not None and b in prob_cache:
            prob, off = prob_cache[b]
        else:
            prob, off = detector.probabilities(batch["image"].numpy(), batch["kernel"][0])
            if prob_cache is not None:
                prob_cache[b] = (prob, off)
        found, _ = detector.decode(prob, off, grid)
        scores += [score_detections(t, p) for t, p in zip(positions_of(batch), found)]
    out = {"all": _summary(scores)}
    for lo, hi in BANDS:
        out[f"{lo}-{hi}"] = _summary([s for s in scores if lo <= s.n_true <= hi])
    return out


def _validate(detector: UNetDetector, batches, grid: Grid) -> dict[str, Any]:
    """Validation scores at the best of a few decoding thresholds (the network's
    calibration drifts during training; a fixed threshold would misjudge epochs)."""
    cache: dict = {}
    best: dict[str, Any] = {}
    for t in (0.3, 0.5, 0.7):
        detector.threshold, detector.high = t, 0.9
        m = score_batches(detector, batches, grid, cache)
        if not best or m["all"].get("f1", 0) > best["all"].get("f1", 0):
            best = {**m, "threshold": t}
    return best


def _summary(scores) -> dict[str, float]:
    if not scores:
        return {"images": 0}
    a = aggregate(scores)
    return {"images": len(scores), "precision": a.precision, "recall": a.recall, "f1": a.f1,
            "rmse": a.rmse}


def tune_thresholds(detector: UNetDetector, batches, grid: Grid) -> tuple[float, float]:
    """The decoding thresholds ``(threshold, high)`` with the best validation F1."""
    cache: dict = {}
    best = (-1.0, detector.threshold, detector.high)
    for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        for h in (0.5, 0.6, 0.7, 0.8, 0.9, 1.01):
            if h <= t:
                continue
            detector.threshold, detector.high = t, h
            f1 = score_batches(detector, batches, grid, cache)["all"]["f1"]
            if f1 > best[0]:
                best = (f1, t, h)
    detector.threshold, detector.high = best[1], best[2]
    return best[1], best[2]


def _loader(data, batch_size: int, seed: int, start: int, order: str = "F"):
    """Endless batches from a file or store, reshuffled each pass by the seed."""
    ds = open_images(data, order=order)
    n = len(ds)
    if n == 0:
        raise ValueError(f"{data}: no images to train on")
    b = start
    per_pass = max(1, n // batch_size)
    while True:
        order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b // per_pass,))
                                      ).permutation(n)
        k = b % per_pass
        idx = order[k * batch_size:(k + 1) * batch_size]
        yield collate([ds[int(i)] for i in idx]), ds.grid
        b += 1


#: The settings a resumed run must share with the run it continues.
_RUN_KEYS = ("seed", "n_kernels", "kernel_seed", "width", "batch_size", "steps_per_epoch",
             "epochs", "lr", "noise", "varied_strength", "default_weight", "data", "grid", "order")


def train_detector(out, *, data=None, n_kernels: int = 48, kernel_seed: int = 0,
                   grid: Grid | None = None, width: int = 16, batch_size: int | None = None,
                   steps_per_epoch: int = 100, epochs: int = 50, lr: float = 2e-3,
                   noise: tuple[float, float] = (0.0, 1.2), varied_strength: float = 0.25,
                   default_weight: float = 0.25, patience: int = 10, seed: int = 0,
                   resume: bool = False,
                   max_minutes: float | None = None, val_images: int = 32, order: str = "F",
                   val_kernels: int = 4, device=None, mixed_precision: bool | None = None,
                   compile: bool | str | None = None, progress: Progress | None = None,
                   log: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Train the kernel-conditioned detector and write it to ``out``.

    Parameters
    ----------
    out : path
        Checkpoint: the best weights (what
        :func:`qpiset.inverse.learned.detector.load_detector` reads)
        and the state to resume from.
    data : path, optional
        Train on a row-format file or store instead of the simulated stream (at its grid;
        ``order`` is the row format's pixel order). The validation set is still simulated.
    n_kernels, kernel_seed : int
        Size and seed of the family in the kernel bank (plus the default kernel).
    width : int
        Channels of the network's first level.
    batch_size : int, optional
        Images per step (default 32 on the CPU, 256 on a GPU).
    noise : (lo, hi)
        White-noise levels of the stream.
    varied_strength : float
        Fraction of stream batches with strengths drawn from (0.5, 1.5).
    default_weight : float
        Fraction of stream batches made with the dataset's default kernel (Cu(111) at E_F);
        the family's kernels share the rest equally.
    patience : int
        Early stopping: epochs without a better validation F1.
    max_minutes : float, optional
        Wall-clock budget; training stops after the epoch that exceeds it.
    val_kernels : int
        Held-out family kernels (never in the bank) in the validation set, besides the
        default kernel at noise 0.3 and 1.0.
    device : str, optional
        Torch device (``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``; default the CPU). The
        simulated stream renders there (:class:`SimulatedStream` ``device``) and a file's
        batches are moved there; an absent device is a ``ValueError``. The weights start
        the same on every device; the steps differ at float rounding.
    mixed_precision : bool, optional
        The forward pass under bf16 autocast (default: on CUDA only).
    compile : bool or str, optional
        Train through ``torch.compile(net)`` (default: on CUDA only, where the eager step
        is bound by the host launching kernels); a string names the compiler backend
        (e.g. ``"aot_eager"``). Where compiling fails on the first step, training goes on
        eagerly, with a warning. The checkpoint holds the network's own weights either way.

    Returns
    -------
    dict
        The training record (history of per-epoch losses and validation metrics).
    """
    if data is not None:  # train at the file's grid
        grid = open_images(data, order=order).grid
    grid = grid or Grid()
    if grid.resolution % 8:
        raise ValueError(f"the detector needs a resolution divisible by 8, got {grid.resolution}")
    from ..forward.device import autocast_dtype, resolve_device

    log = log or (lambda s: None)
    device = resolve_device(device)
    asked_batch = batch_size
    if batch_size is None:  # larger batches where the device has room
        batch_size = 32 if device.type == "cpu" else 256
    amp_dtype = autocast_dtype(device) if mixed_precision is None else (
        torch.bfloat16 if mixed_precision else None)
    torch.manual_seed(seed)
    out = Path(out)
    record: dict[str, Any] = {"seed": seed, "n_kernels": n_kernels, "kernel_seed": kernel_seed,
                              "width": width, "batch_size": batch_size,
                              "steps_per_epoch": steps_per_epoch, "epochs": epochs, "lr": lr,
                              "order": order,
                              "noise": list(noise), "varied_strength": varied_strength,
                              "default_weight": default_weight,
                              "data": None if data is None else str(data),
                              "grid": [grid.resolution, grid.fov], "history": [],
                              "seconds": 0.0, "step": 0, "best_f1": -1.0, "bad_epochs": 0}
    net = DetectorNet(width=width).to(device)
    cuda = device.type == "cuda"
    if cuda:  # NHWC convolutions, autotuned; one fused optimiser kernel (fewer launches)
        net = net.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4,
                            **({"fused": True} if cuda else {}))
    model = _compiled(net, cuda if compile is None else compile)
    checked = model is net  # a compiled network is checked on its first step
    total = epochs * steps_per_epoch
    warm = min(200, total // 10 + 1)

    def lr_at(step: int) -> float:  # linear warm-up, cosine decay
        if step < warm:
            return lr * (step + 1) / warm
        return 0.5 * lr * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    best_state = None
    if resume and out.exists():
        state = load_checkpoint(out, "detector")
        train = state.get("train")
        if not train:
            raise ValueError(f"{out}: has no training state to resume from")
        saved = train["record"]
        if asked_batch is None:  # the default: the run's own batch size
            batch_size = record["batch_size"] = saved.get("batch_size", batch_size)
        changed = [k for k in _RUN_KEYS if saved.get(k) != record.get(k)]
        if changed:
            raise ValueError(f"{out}: was trained with other settings ("
                             + ", ".join(f"{k} {saved.get(k)!r}, now {record.get(k)!r}"
                                         for k in changed) + "); resume with the same ones")
        net.load_state_dict(train["last"])
        opt.load_state_dict(train["optimizer"])
        record = saved
        best_state = state["state"]
        log(f"resuming at step {record['step']} (epoch {len(record['history'])})")
    # validation: the default kernel at the benchmark's noise levels + unseen family kernels
    log("building the kernel bank and validation set")
    bank = detector_kernels(n_kernels, kernel_seed, grid)
    held_out = detector_kernels(val_kernels, kernel_seed + 7919, grid, include_default=False)
    val = (validation_set([FriedelKernel()], grid, (0.3, 1.0), val_images, seed + 1)
           + validation_set(held_out, grid, (0.5,), val_images, seed + 2))
    if data is None:
        weights = [1.0] if len(bank) == 1 else (
            [default_weight] + [(1 - default_weight) / (len(bank) - 1)] * (len(bank) - 1))
        stream = iter(SimulatedStream(bank, grid, batch_size, seed=seed, noise=noise,
                                      varied_strength=varied_strength, start=record["step"],
                                      weights=weights,
                                      device=None if device.type == "cpu" else device))
        batches = ((b, grid) for b in stream)
    else:
        batches = _loader(data, batch_size, seed, record["step"], order)
    record["device"] = str(device)
    record["compiled"] = False  # until a compiled step has run
    record["precision"] = "fp32" if amp_dtype is None else str(amp_dtype).split(".")[-1]
    detector = UNetDetector.from_net(net)
    t_start = time.perf_counter() - record["seconds"]
    bar = progress(total, "training") if progress else None
    if bar is not None:
        bar.update(record["step"])
    while record["step"] < total and record["bad_epochs"] < patience:
        net.train()
        losses = []
        for _ in range(steps_per_epoch):
            batch, g = next(batches)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            for group in opt.param_groups:
                group["lr"] = lr_at(record["step"])
            if checked:
                losses.append(detector_step(model, opt, batch, g, amp_dtype))
            else:  # the first step through the compiled network
                model, loss = _first_compiled_step(model, net, opt, batch, g, amp_dtype, log)
                losses.append(loss)
                checked, record["compiled"] = True, model is not net
            record["step"] += 1
            if bar is not None:
                bar.update(1)
        losses = torch.stack(losses).cpu().double().numpy()  # the epoch's one wait
        net.eval()
        metrics = _validate(detector, val, grid)
        record["seconds"] = time.perf_counter() - t_start
        f1 = metrics["all"]["f1"]
        record["history"].append({"epoch": len(record["history"]) + 1, "step": record["step"],
                                  "loss": float(np.mean(losses)), "val": metrics,
                                  "seconds": record["seconds"]})
        improved = f1 > record["best_f1"]
        if improved:
            record["best_f1"], record["bad_epochs"] = f1, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()}
        else:
            record["bad_epochs"] += 1
        log(f"epoch {len(record['history'])}: loss {np.mean(losses):.2f}, validation F1 "
            f"{f1:.3f} (51-100: {metrics['51-100'].get('f1', float('nan')):.3f}; threshold "
            f"{metrics['threshold']:g})"
            f"{' *' if improved else ''}, {record['seconds'] / 60:.1f} min")
        _save(out, net, best_state, opt, record, grid)
        if record["bad_epochs"] >= patience:
            log(f"early stop: no better validation F1 for {patience} epochs")
            break
        if max_minutes is not None and record["seconds"] > 60 * max_minutes:
            log(f"stopping: time budget of {max_minutes:g} min used")
            break
    if bar is not None:
        bar.close()
    # decoding thresholds for the best weights, on the validation set
    best = DetectorNet(width=width)
    best.load_state_dict(best_state)
    best.to(device)
    detector = UNetDetector.from_net(best)
    record["threshold"], record["high"] = tune_thresholds(detector, val, grid)
    record["val_best"] = score_batches(detector, val, grid)
    _save(out, net, best_state, opt, record, grid)
    return record


def _compiled(net, compile: bool | str):
    """``torch.compile(net)`` (``compile`` True, or a backend's name), else ``net``."""
    if compile is False or compile is None:
        return net
    options = {} if compile is True else {"backend": str(compile)}
    try:
        return torch.compile(net, **options)
    except Exception as exc:  # noqa: BLE001 - no compiler here: train eagerly
        warnings.warn(f"torch.compile is not usable here ({type(exc).__name__}); training "
                      "eagerly", RuntimeWarning, stacklevel=3)
        return net


def _first_compiled_step(model, net, opt, batch, grid, amp_dtype, log):
    """One step through the compiled ``model``: ``(model, loss)``. Compiling happens on
    the first step; if it fails there, the step is taken eagerly and ``net`` returned as
    the model from then on (the failed attempt changed no weight: it fails before the
    optimiser step)."""
    try:
        loss = detector_step(model, opt, batch, grid, amp_dtype)
    except Exception as exc:  # noqa: BLE001 - the compiler failed on this machine
        message = str(exc).splitlines()[0] if str(exc) else ""
        warnings.warn(f"torch.compile failed on the first step ({type(exc).__name__}: "
                      f"{message[:200]}); training eagerly", RuntimeWarning, stacklevel=3)
        log("torch.compile failed: training eagerly")
        opt.zero_grad(set_to_none=True)
        return net, detector_step(net, opt, batch, grid, amp_dtype)
    return model, loss


def _save(out, net, best_state, opt, record, grid) -> None:
    """One atomic write: the best weights (what inference loads) and the training state."""
    save_detector(out, net, grid, state=best_state, threshold=record.get("threshold", 0.5),
                  high=record.get("high", 0.9), record=_jsonable(record),
                  train={"last": net.state_dict(), "optimizer": opt.state_dict(),
                         "record": record})


def _jsonable(record: dict) -> dict:
    import json

    return json.loads(json.dumps(record, default=float))
