"""Training of the kernel extractor (``qpiset train kernel-vae``): the two-step model by
latent alignment and the one-step baseline, on a kernel family from the physics engine
with held-out kernels for testing (:mod:`qpiset.inverse.learned.kernel_vae`).

The kernel bank is :func:`qpiset.forward.sample_family` (surface states, square and
honeycomb lattices, d/s-wave superconductors). A seeded permutation puts ``n_test`` of its
kernels aside; they are never seen in training. Each kernel gets a pool of clean images
(scatterer counts uniform in 1..100, the generator of ``qpiset generate``); training draws
an image, one of the 8 symmetries of the square (applied to image and kernel alike) and a
white-noise level per sample. The baseline is trained on exactly the image batches of the
observation encoder (same steps, same samples).
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..bench import kernel_nmse
from ..core.grid import Grid
from ..core.recipe import Recipe
from ..forward import Forward, sample_family, simulate_blocks
from ..physics.continuum import DEFAULT_PROJECTION
from ..inverse.learned.kernel_vae import (DirectKernelNet, KernelExtractor, KernelVAE,
                                          ObservationEncoder, canonical_kernel,
                                          save_kernel_models)

__all__ = ["build_kernel_bank", "train_kernel_vae", "evaluate_extractor"]


def _bank_entry(args) -> tuple[np.ndarray, np.ndarray]:
    params, grid, m, seed = args
    from ..physics import make_kernel

    kernel = make_kernel(**params)
    op = Forward(kernel, grid)
    _, images, _, _ = next(simulate_blocks(kernel, grid, Recipe(n=m, seed=seed), threads=1, op=op))
    return (canonical_kernel(op.kernel_row).astype(np.float32),
            images.astype(np.float32))


def build_kernel_bank(n_kernels: int, images_per_kernel: int, *, seed: int = 0,
                      grid: Grid | None = None, workers: int = 1, models=None,
                      on_kernel: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """Kernels ``(n, R, R)`` (canonical), clean image pools ``(n, m, R, R)`` and the
    kernels' parameters (``sample_family(n_kernels, seed, models, fov)``), built in
    ``workers`` processes (the result does not depend on it)."""
    grid = grid or Grid()
    family = sample_family(n_kernels, seed, models, fov=grid.fov)
    jobs = [(p, grid, images_per_kernel,
             int(np.random.SeedSequence(seed, spawn_key=(3, i)).generate_state(1)[0]))
            for i, p in enumerate(family)]
    results = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for r in pool.map(_bank_entry, jobs):
                results.append(r)
                if on_kernel:
                    on_kernel(1)
    else:
        for job in jobs:
            results.append(_bank_entry(job))
            if on_kernel:
                on_kernel(1)
    return {"kernels": np.stack([r[0] for r in results]),
            "images": np.stack([r[1] for r in results]), "params": family}


def _d4(x: torch.Tensor, op: int) -> torch.Tensor:
    """One of the 8 symmetries of the square on the last two axes (centre-preserving)."""
    if op & 4:
        x = x.transpose(-1, -2)
    if op & 1:
        x = torch.flip(x, dims=(-1,))
    if op & 2:
        x = torch.flip(x, dims=(-2,))
    return x


class _Sampler:
    """Training samples: (noisy image, canonical kernel), pure function of the step."""

    def __init__(self, kernels, images, seed: int, noise: float, batch: int) -> None:
        self.kernels = torch.from_numpy(kernels)
        self.images = torch.from_numpy(images)
        self.seed, self.noise, self.batch = seed, noise, batch

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(step,)))
        n, m = self.images.shape[:2]
        ki = rng.integers(n, size=self.batch)
        ii = rng.integers(m, size=self.batch)
        ops = rng.integers(8, size=self.batch)
        levels = rng.uniform(0, self.noise, self.batch)
        eps = torch.from_numpy(rng.standard_normal(
            (self.batch,) + tuple(self.images.shape[2:])).astype(np.float32))
        imgs, ks = [], []
        for b in range(self.batch):
            img = self.images[ki[b], ii[b]]
            img = img + float(levels[b]) * img.std() * eps[b]
            imgs.append(_d4(img, int(ops[b])))
            ks.append(_d4(self.kernels[ki[b]], int(ops[b])))
        return torch.stack(imgs), torch.stack(ks)


def evaluate_extractor(extractor: KernelExtractor, kernels: np.ndarray, images: np.ndarray,
                       per_file: int = 16) -> dict[str, Any]:
    """Kernel NMSE (after best scale and sign, :func:`qpiset.bench.kernel_nmse`) on
    held-out kernels, for both methods: from single images (mean and median over
    images) and from ``per_file`` images of one kernel together."""
    out: dict[str, Any] = {}
    for method in ("vae", "direct"):
        if method == "direct" and extractor.direct is None:
            continue
        single, files = [], []
        for k, pool in zip(kernels, images):
            for img in pool[:per_file]:
                single.append(kernel_nmse(extractor(img[None], method), k))
            files.append(kernel_nmse(extractor(pool[:per_file], method), k))
        out[method] = {"nmse_image_mean": float(np.mean(single)),
                       "nmse_image_median": float(np.median(single)),
                       "nmse_file_mean": float(np.mean(files)), "kernels": len(kernels),
                       "images_per_file": per_file}
    if "direct" in out:
        out["improvement"] = 1 - out["vae"]["nmse_image_mean"] / out["direct"]["nmse_image_mean"]
    return out


def train_kernel_vae(out, *, n_kernels: int = 240, n_test: int = 40, images_per_kernel: int = 32,
                     grid: Grid | None = None, vae_steps: int = 3000,
                     observer_steps: int = 5000, batch_size: int = 32, latent: int = 32,
                     width: int = 16, lr: float = 1e-3, beta: float = 1e-3,
                     noise: float = 0.5, seed: int = 0, workers: int = 1,
                     test_noise: float = 0.1, align_weight: float = 0.1,
                     bank: dict[str, Any] | None = None, models=None, device=None,
                     mixed_precision: bool | None = None, progress=None,
                     log: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Train the two-step kernel extractor and the one-step baseline; write both to
    ``out`` (:func:`qpiset.inverse.learned.kernel_vae.load_kernel_extractor` reads it) and return the
    training record with the held-out evaluation.

    Parameters
    ----------
    n_kernels, n_test : int
        Family size and how many of its kernels are held out.
    images_per_kernel : int
        Clean images in each kernel's pool.
    vae_steps, observer_steps : int
        Optimiser steps of step 1 (kernels only) and step 2; the baseline gets as many
        steps as step 2 (the same image batches).
    beta : float
        Weight of the KL term (per latent dimension, against the per-pixel error).
    noise : float
        Training white-noise levels are uniform in ``[0, noise]`` (fraction of image std).
    test_noise : float
        White-noise level of the held-out test images.
    align_weight : float
        Step 2's loss is the error of the kernel decoded (frozen decoder) from the
        observation's latent plus ``align_weight`` times the squared distance to the
        VAE's latent mean of the true kernel (the alignment).
    models : list of str, optional
        Kernel models of the family (default: all with a sampler).
    bank : dict, optional
        A bank from :func:`build_kernel_bank` with these ``n_kernels``, ``images_per_kernel``
        and ``seed`` (to reuse one across runs); built when not given.
    device : str, optional
        Torch device of the networks (``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``; default
        the CPU); the samples are drawn on the CPU as on any device and moved there. The
        kernel bank is rendered on the CPU.
    mixed_precision : bool, optional
        Forward passes under bf16 autocast (default: on CUDA only).
    """
    from ..forward.device import autocast_dtype, resolve_device

    device = resolve_device(device)
    amp_dtype = autocast_dtype(device) if mixed_precision is None else (
        torch.bfloat16 if mixed_precision else None)
    grid = grid or Grid()
    log = log or (lambda s: None)
    t0 = time.perf_counter()
    if not 0 < n_test < n_kernels:
        raise ValueError(f"need 0 < n_test < n_kernels, got {n_test} and {n_kernels}")
    if bank is None:
        bar = progress(n_kernels, "kernel bank") if progress else None
        bank = build_kernel_bank(n_kernels, images_per_kernel, seed=seed, grid=grid,
                                 workers=workers, models=models,
                                 on_kernel=bar.update if bar is not None else None)
        if bar is not None:
            bar.close()
    if bank["images"].shape[:2] != (n_kernels, images_per_kernel):
        raise ValueError(f"the bank holds {bank['images'].shape[:2]} kernels x images, "
                         f"expected ({n_kernels}, {images_per_kernel})")
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,))).permutation(
        n_kernels)
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    log(f"kernel bank: {n_kernels} kernels ({n_test} held out), "
        f"{time.perf_counter() - t0:.0f} s")
    sampler = _Sampler(bank["kernels"][train], bank["images"][train], seed, noise, batch_size)
    torch.manual_seed(seed)
    cfg = {"latent": latent, "width": width, "resolution": grid.resolution}
    vae, observer, direct = (KernelVAE(**cfg).to(device), ObservationEncoder(**cfg).to(device),
                             DirectKernelNet(**cfg).to(device))
    total = vae_steps + 2 * observer_steps
    bar = progress(total, "training") if progress else None
    history: dict[str, list] = {"vae": [], "observer": [], "direct": []}

    def run(name, params, steps, loss_fn, offset):
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-5)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
        acc = []
        for step in range(steps):
            imgs, ks = (t.to(device, non_blocking=True) for t in sampler(offset + step))
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = loss_fn(imgs, ks).float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            acc.append(loss.detach())
            if (step + 1) % 100 == 0 or step + 1 == steps:
                mean = float(torch.stack(acc).cpu().double().numpy().mean())  # waits here only
                history[name].append({"step": step + 1, "loss": mean})
                acc = []
            if bar is not None:
                bar.update(1)
        log(f"{name}: final loss {history[name][-1]['loss']:.4f}")

    def vae_loss(imgs, ks):
        rec, mu, logvar = vae(ks)
        kl = -0.5 * torch.mean(1 + logvar - mu.square() - logvar.exp())
        return F.mse_loss(rec, ks) + beta * kl

    vae.train()
    run("vae", vae.parameters(), vae_steps, vae_loss, 0)
    vae.eval()
    for p in vae.parameters():
        p.requires_grad_(False)

    def align_loss(imgs, ks):  # the kernel decoded from the latent, plus the alignment
        with torch.no_grad():
            target, _ = vae.encode(ks)
        z = observer(imgs)
        return F.mse_loss(vae.decoder(z), ks) + align_weight * F.mse_loss(z, target)

    observer.train()
    run("observer", observer.parameters(), observer_steps, align_loss, 10**6)
    direct.train()
    run("direct", direct.parameters(), observer_steps,
        lambda imgs, ks: F.mse_loss(direct(imgs), ks), 10**6)  # the same batches as step 2
    if bar is not None:
        bar.close()
    extractor = KernelExtractor(vae, observer, direct)
    # held-out kernels (never trained on), images with the test noise
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(4,)))
    clean = bank["images"][test]
    noisy = clean + test_noise * clean.std(axis=(2, 3), keepdims=True) * rng.standard_normal(
        clean.shape).astype(np.float32)
    evaluation = evaluate_extractor(extractor, bank["kernels"][test], noisy)
    record = {"seed": seed, "n_kernels": n_kernels, "n_test": n_test,
              "images_per_kernel": images_per_kernel, "vae_steps": vae_steps,
              "observer_steps": observer_steps, "batch_size": batch_size, "latent": latent,
              "width": width, "lr": lr, "beta": beta, "noise": noise, "test_noise": test_noise,
              "align_weight": align_weight, "models": models, "device": str(device),
              "precision": "fp32" if amp_dtype is None else str(amp_dtype).split(".")[-1],
              "grid": [grid.resolution, grid.fov], "test_kernels": test.tolist(),
              "projection": DEFAULT_PROJECTION,  # of the bank's lattice and bdg kernels
              "history": history, "evaluation": evaluation,
              "seconds": time.perf_counter() - t0}
    save_kernel_models(out, vae, observer, direct, grid, record=record)
    log(f"held-out kernel NMSE: two-step {evaluation['vae']['nmse_image_mean']:.3f}, "
        f"one-step {evaluation['direct']['nmse_image_mean']:.3f} "
        f"({100 * evaluation['improvement']:.0f} % lower)")
    return record
