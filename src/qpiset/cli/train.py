"""``qpiset train detector`` and ``qpiset train kernel-vae``: the learned methods
(extra ``ml``)."""

from __future__ import annotations

import math

import click

from .common import (OVERWRITE, device_option, echo_err, fail, guarded, outputs, steps_bar,
                     use_device)

__all__ = ["train"]


@click.group()
def train() -> None:
    """Train learned models (extra 'ml': pip install 'qpiset[ml]')."""


def _need_torch() -> None:
    from ..inverse import learned_available

    if not learned_available():
        fail("training needs torch: pip install 'qpiset[ml]'")


def _range(ctx, param, value: str):
    try:
        lo, hi = (float(v) for v in value.split(":", 1))
        if not (0 <= lo <= hi and math.isfinite(hi)):
            raise ValueError
        return (lo, hi)
    except ValueError:
        raise click.BadParameter("give LO:HI with 0 <= LO <= HI, e.g. 0:1.2") from None


@train.command("detector")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint (.pt): best weights and the state to resume from.")
@click.option("--data", type=click.Path(), default=None,
              help="Train on this row-format file or .zarr store instead of simulated data.")
@click.option("--simulate", "simulate_", is_flag=True, default=False,
              help="Train on the simulated stream (the default when --data is not given).")
@click.option("--kernels", "n_kernels", type=click.IntRange(min=0), default=48,
              show_default=True, help="Family kernels in the simulated bank (plus Cu(111)).")
@click.option("--kernel-seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--noise", default="0:1.2", show_default=True, callback=_range,
              help="White-noise levels LO:HI (fraction of image std) of the stream.")
@click.option("--default-weight", type=click.FloatRange(min=0, max=1), default=0.25,
              show_default=True,
              help="Fraction of simulated batches made with the default kernel (Cu(111), E_F).")
@click.option("--width", type=click.IntRange(min=4), default=16, show_default=True,
              help="Channels of the network's first level.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Images per step (default 32 on the CPU, 256 on a GPU).")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3,
              show_default=True)
@click.option("--patience", type=click.IntRange(min=1), default=10, show_default=True,
              help="Early stopping: epochs without a better validation F1.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after the epoch that passes this wall-clock budget.")
@click.option("--val-images", type=click.IntRange(min=1), default=32, show_default=True,
              help="Validation images per kernel and noise level.")
@click.option("--val-kernels", type=click.IntRange(min=0), default=4, show_default=True,
              help="Held-out family kernels in the validation set.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run saved in --out (same settings).")
@click.option("--order", type=click.Choice(["F", "C"]), default="F", show_default=True,
              help="Pixel order of a row-format --data file.")
@device_option(what="to train on; the simulated stream renders there too (bf16 autocast "
                    "on CUDA)")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="Train through torch.compile (default: on CUDA only; eager where "
                   "compiling fails).")
@OVERWRITE
@guarded
def train_detector_cmd(out, data, simulate_, n_kernels, kernel_seed, noise, default_weight,
                       order, width, batch_size,
                       steps_per_epoch, epochs, lr, patience, max_minutes, val_images,
                       val_kernels, seed, resume, device, compile_, overwrite):
    """Train the kernel-conditioned detector (qpiset detect --method unet --weights OUT)."""
    _need_torch()
    if data is not None and simulate_:
        raise click.UsageError("give --data or --simulate, not both")
    device = use_device(device)
    outputs(out, overwrite=overwrite or resume)  # --resume continues the checkpoint at --out
    from ..workflows.train_detector import train_detector

    try:
        record = train_detector(
            out, data=data, n_kernels=n_kernels, kernel_seed=kernel_seed, width=width,
            batch_size=batch_size, steps_per_epoch=steps_per_epoch, epochs=epochs, lr=lr,
            noise=noise, default_weight=default_weight, patience=patience, seed=seed,
            resume=resume, max_minutes=max_minutes, val_images=val_images,
            val_kernels=val_kernels, order=order, device=device, compile=compile_,
            progress=steps_bar, log=echo_err)
    except ValueError as exc:
        fail(str(exc))
    best = record["val_best"]
    click.echo(f"{out}: detector after {record['step']} steps ({record['seconds'] / 60:.1f} min); "
               f"validation F1 {best['all']['f1']:.3f}, 51-100 scatterers "
               f"{best['51-100'].get('f1', float('nan')):.3f}; thresholds "
               f"{record['threshold']:g}/{record['high']:g}")


@train.command("kernel-vae")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint (.pt): VAE, observation encoder and one-step baseline.")
@click.option("--kernels", "n_kernels", type=click.IntRange(min=3), default=240,
              show_default=True, help="Kernels in the family (from the physics engine).")
@click.option("--test-kernels", "n_test", type=click.IntRange(min=1), default=40,
              show_default=True, help="Kernels held out for testing.")
@click.option("--images-per-kernel", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--vae-steps", type=click.IntRange(min=1), default=3000, show_default=True,
              help="Step 1: the VAE of kernels.")
@click.option("--observer-steps", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Step 2: the observation encoder; the one-step baseline gets the same.")
@click.option("--align-weight", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="Weight of the latent distance in step 2's loss (besides the decoded "
                   "kernel's error).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--latent", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--width", type=click.IntRange(min=4), default=16, show_default=True)
@click.option("--noise", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Training white noise up to this fraction of image std.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes building the kernel bank (the result does not depend on it).")
@device_option(what="to train on (bf16 autocast on CUDA)")
@OVERWRITE
@guarded
def train_kernel_vae_cmd(out, n_kernels, n_test, images_per_kernel, vae_steps, observer_steps,
                         align_weight, batch_size, latent, width, noise, seed, workers,
                         device, overwrite):
    """Train the kernel extractor (two-step latent alignment, and the one-step baseline)."""
    _need_torch()
    device = use_device(device)
    outputs(out, overwrite=overwrite)
    from ..workflows.train_kernel import train_kernel_vae

    try:
        record = train_kernel_vae(
            out, n_kernels=n_kernels, n_test=n_test, images_per_kernel=images_per_kernel,
            vae_steps=vae_steps, observer_steps=observer_steps, align_weight=align_weight,
            batch_size=batch_size, latent=latent, width=width, noise=noise, seed=seed,
            workers=workers, device=device, progress=steps_bar, log=echo_err)
    except ValueError as exc:
        fail(str(exc))
    ev = record["evaluation"]
    click.echo(f"{out}: held-out kernel NMSE (single image) two-step "
               f"{ev['vae']['nmse_image_mean']:.3f}, one-step {ev['direct']['nmse_image_mean']:.3f}"
               f" ({100 * ev['improvement']:.0f} % lower); {record['seconds'] / 60:.1f} min")
