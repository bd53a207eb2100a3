"""``qpiset detect``, ``qpiset kernel`` and ``qpiset bench``: the inverse problems."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..core.errors import FormatError
from .common import (BLIND, CALIBRATE, KERNEL_MODEL, ORDER, OVERWRITE, PHYSICS, WEIGHTS,
                     WORKERS,
                     RegistryChoice, calibration_mode, device_option, fail, guarded, outputs,
                     progress, recorded_model, use_device)

__all__ = ["detect", "kernel_cmd", "bench"]


def _model(ds, physics: bool, kernel_model):
    """The kernel model the user names: the file's recorded physics model (--physics), a
    saved model (--kernel-model), or None (the kernel row's)."""
    from ..io import load_kernel_model

    if physics and kernel_model:
        raise click.UsageError("give --physics or --kernel-model, not both")
    if kernel_model:
        return load_kernel_model(kernel_model)
    return recorded_model(ds, required=True) if physics else None


def _blind_model(ds):
    """The kernel estimated blind from the file's first :data:`BLIND_IMAGES` images, with a
    progress bar and a line saying what was found."""
    from ..inverse import BLIND_IMAGES, blind_kernel, blind_steps

    n = min(ds.n_images, BLIND_IMAGES)
    if n == 0:
        raise FormatError(ds.meta.get("path", "input"), None, None,
                          "--blind: no images to estimate the kernel from")
    with progress(blind_steps(n), "blind kernel", unit="step") as bar:
        result = blind_kernel(np.asarray(ds.images[:n]), ds.grid, on_step=bar.update)
    shape = "radial" if result.isotropic else "2D"
    click.echo(f"estimated the kernel blind ({shape}) from {n} images ({result.rounds} rounds, "
               f"{result.scatterers[result.best] if result.scatterers else 0} scatterers)",
               err=True)
    return result.kernel


def _operator(ds, physics: bool, kernel_model=None, calibrate=None, method=None,
              blind: bool = False):
    """The forward operator of a file: its kernel row's model (self-calibrated when
    ``calibrate`` allows and ``method`` fits the kernel), a saved model, its recorded
    physics model or (``blind``) the kernel estimated from its images alone; and the
    calibration record (or None)."""
    from ..inverse import DETECTORS, calibrated_operator, calibration_steps, file_operator

    if blind and (physics or kernel_model):
        raise click.UsageError("give one of --blind, --physics and --kernel-model")
    model = _blind_model(ds) if blind else _model(ds, physics, kernel_model)
    op = file_operator(ds.kernel, ds.grid, model)
    if model is not None or method is None or not DETECTORS[method].fits_kernel:
        return op, None
    mode = calibration_mode(calibrate)
    if mode == "off":
        return op, None
    with progress(calibration_steps(ds.n_images), "calibrate", unit="step") as bar:
        cal = calibrated_operator(ds.images, op, mode, on_step=bar.update)
    if cal.skipped is None:
        click.echo(f"calibrated the kernel on {cal.images} images ({cal.scatterers[-1]} "
                   f"scatterers, {cal.rounds} rounds, last change {cal.changes[-1]:.2%})",
                   err=True)
    elif mode == "on" or cal.rounds:
        click.echo(f"kept the kernel row: {cal.skipped}", err=True)
    return cal.op, cal


@click.command()
@click.argument("path", type=click.Path())
@click.option("--method", type=RegistryChoice("qpiset.inverse:DETECTORS"), default="sparse",
              show_default=True,
              help="unet: the learned detector (extra 'ml'); hybrid: its scatterers refined "
                   "and model-selected by the physics fit of sparse.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Predictions JSON: {\"method\": M, \"images\": [0, 1, ...], \"positions\": "
                   "[[[x, y], ...], ...]} (one list per image; unet adds \"confidence\").")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N images only.")
@WEIGHTS
@PHYSICS
@KERNEL_MODEL
@BLIND
@CALIBRATE
@WORKERS
@ORDER
@device_option(what="of the learned methods' networks (unet, hybrid); another device changes "
                    "their output at float32 rounding")
@OVERWRITE
@guarded
def detect(path, method, out, limit, weights, physics, kernel_model, blind, calibrate, workers,
           order, device, overwrite):
    """Find the scatterers in every image of PATH (positions in Å, one list per image row).

    The file is read as the detector goes (bounded memory); with --limit, nothing beyond
    image N is read. With --blind the kernel comes from the first 10 images alone (the
    kernel row is not used), and is not self-calibrated further."""
    from ..inverse import Detections, detect_images, make_detector, worker_count
    from ..io import head, open_dataset, predictions_record, write_json

    from ..inverse import DETECTORS

    outputs(out, overwrite=overwrite)
    options = {"device": use_device(device)} if DETECTORS[method].learned else {}
    ds = head(open_dataset(path, order=order), limit)
    try:
        detector = make_detector(method, weights=weights, **options)
    except ValueError as exc:  # a learned method without torch, or a bad checkpoint
        fail(str(exc))
    op, _ = _operator(ds, physics, kernel_model, calibrate, method, blind)
    n = ds.n_images
    parts = []
    workers = worker_count(method, workers)
    with progress(n, f"detect ({method})") as bar:
        if workers > 1:  # image by image in worker processes
            images = (ds.images[i] for i in range(n))
            parts = [d for d, _ in detect_images(detector, images, op, workers, bar.update)]
        else:  # batches of 64: a learned detector runs its network on each whole
            for s in range(0, n, 64):
                images = np.asarray(ds.images[s:min(n, s + 64)])
                parts.append(detector.detect(images, op))
                bar.update(len(images))
    found = Detections.concat(parts) if parts else Detections([])
    write_json(out, predictions_record(method, found.positions, found.confidence,
                                       images=range(n)))
    click.echo(f"{out}: {int(found.counts.sum())} scatterers in {n} images ({method})")


@click.command("kernel")
@click.argument("path", type=click.Path())
@click.option("--method", type=RegistryChoice("qpiset.inverse:KERNEL_ESTIMATORS"), default="lsq",
              show_default=True,
              help="lsq: least squares with the file's positions; blind: from the images alone; "
                   "calibrate: the kernel row refined finer than the pixels with the "
                   "scatterers found in the images; vae: learned, two-step latent alignment "
                   "(extra 'ml'); direct: its one-step baseline.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Kernel image (.npy), indexed [iy, ix] on the file's grid.")
@click.option("--model", "model_out", type=click.Path(dir_okay=False), default=None,
              help="Also save the kernel model itself (.npz; finer than the grid for "
                   "calibrate), for detect/bench --kernel-model.")
@click.option("--images", "n_images", type=click.IntRange(min=1), default=8, show_default=True,
              help="How many images to use.")
@WEIGHTS
@ORDER
@device_option(what="of the learned methods' networks (vae, direct)")
@OVERWRITE
@guarded
def kernel_cmd(path, method, out, model_out, n_images, weights, order, device, overwrite):
    """Estimate the single-scatterer kernel from the images; compare with the kernel row.

    Only the first --images images are read."""
    from ..bench import kernel_nmse
    from ..inverse import KERNEL_ESTIMATORS, make_kernel_estimator
    from ..io import atomic_output, head, open_dataset, save_kernel_model

    if model_out is not None and Path(model_out).suffix != ".npz":
        raise click.BadParameter(f"{model_out}: a kernel model is saved as .npz",
                                 param_hint="--model")
    outputs(out, *([model_out] if model_out else []), overwrite=overwrite)
    ds = head(open_dataset(path, order=order), n_images)
    n = ds.n_images
    if n == 0:
        raise FormatError(path, None, None, "no images to estimate a kernel from")
    options = {"row": np.asarray(ds.kernel)} if method == "calibrate" else {}
    if KERNEL_ESTIMATORS[method].learned:
        options["device"] = use_device(device)
    try:
        estimator = make_kernel_estimator(method, weights=weights, **options)
        images, positions = np.asarray(ds.images[:n]), ds.positions[:n]
        kernel = _estimate(estimator, method, images, ds.grid, positions)
    except ValueError as exc:  # a learned method without torch, a bad checkpoint or grid
        fail(str(exc))
    img = kernel.sample(ds.grid)
    with atomic_output(out, compress=False) as f:
        np.save(f, img)
    if model_out is not None:
        save_kernel_model(model_out, kernel)
    cal = getattr(estimator, "calibration", None)
    if cal is not None:
        click.echo(f"calibrated on {cal.images} images ({cal.scatterers[-1]} scatterers, "
                   f"{cal.rounds} rounds, changes "
                   f"{', '.join(f'{c:.2%}' for c in cal.changes)})", err=True)
    click.echo(f"{out}: kernel from {n} images ({method}); NMSE against the file's kernel row "
               f"(best scale and sign): {kernel_nmse(img, ds.kernel):.3e}")


def _estimate(estimator, method: str, images, grid, positions):
    """``estimator.estimate(...)`` with a progress bar of its steps when it reports them
    (``steps(n)`` and ``on_step``: ``blind`` does, one step per trial kernel and per
    image detected)."""
    import inspect

    steps = getattr(estimator, "steps", None)
    try:
        takes = "on_step" in inspect.signature(estimator.estimate).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin or C method
        takes = False
    if steps is None or not takes:
        return estimator.estimate(images, grid, positions)
    total = int(steps(len(images)))
    if total <= 1:  # one step: nothing to show
        return estimator.estimate(images, grid, positions, on_step=None)
    with progress(total, f"kernel ({method})", unit="step") as bar:
        return estimator.estimate(images, grid, positions, on_step=bar.update)


def _prediction_name(path, taken) -> str:
    name = Path(path).stem
    while name in taken:
        name += "'"
    return name


@click.command()
@click.argument("path", type=click.Path())
@click.option("--methods", default="matched,sparse", show_default=True,
              help="Comma-separated detectors to run (qpiset detect --help lists them; the "
                   "learned ones need the extra 'ml'), and optionally 'oracle', a fit started "
                   "at the true positions (a reference that uses the truth); empty for none.")
@click.option("--predictions", "prediction_files", multiple=True, type=click.Path(),
              help="Someone's predictions JSON to score the same way (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Results JSON; the Markdown table is written beside it, the same name "
                   "ending in .md.")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=1.5,
              show_default=True, help="Matching tolerance (Å).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N images only.")
@WEIGHTS
@PHYSICS
@KERNEL_MODEL
@CALIBRATE
@WORKERS
@ORDER
@device_option(what="of the learned detectors' networks (unet, hybrid)")
@OVERWRITE
@guarded
def bench(path, methods, prediction_files, out, tol, limit, weights, physics, kernel_model,
          calibrate, workers, order, device, overwrite):
    """Run detectors on every image of PATH and score them against the file's positions.

    Predictions files may cover any of the images (qpiset detect --limit N covers the first
    N): only the images they cover are scored, and the output says so. With --limit,
    nothing beyond image N is read. With --workers W, W processes fit images side by side:
    each image's seconds stay its own fit's, and the record's wall_seconds is the time for
    all of a method's images."""
    import contextlib

    from ..bench import REFERENCES
    from ..inverse import DETECTORS

    if Path(out).suffix.lower() == ".md":
        raise click.BadParameter(f"{out}: the results are JSON and the table is written "
                                 "beside them as .md; name the JSON file", param_hint="--out")
    outputs(out, Path(out).with_suffix(".md"), overwrite=overwrite)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    for m in names:
        if m not in tuple(DETECTORS) + REFERENCES:
            raise click.BadParameter(f"unknown method {m!r}; methods: "
                                     f"{', '.join(tuple(DETECTORS) + REFERENCES)}",
                                     param_hint="--methods")
    on_device = contextlib.nullcontext()
    if any(m in DETECTORS and DETECTORS[m].learned for m in names):
        from ..forward.device import using_device

        on_device = using_device(use_device(device))  # the learned detectors made inside
    with on_device:
        _bench(path, names, prediction_files, out, tol, limit, weights, physics, kernel_model,
               calibrate, workers, order)


def _bench(path, names, prediction_files, out, tol, limit, weights, physics, kernel_model,
           calibrate, workers, order) -> None:
    """The work of ``qpiset bench`` (learned detectors on the device in use)."""
    from ..bench import markdown_table, run_benchmark, save_results
    from ..bench.protocol import coverage_notes
    from ..inverse import DETECTORS, calibration_steps, make_detector
    from ..io import head, load_predictions, open_dataset

    for m in names:
        if m in DETECTORS:  # no torch, or a bad checkpoint, is bad input named before any work
            try:
                make_detector(m, weights=weights)
            except ValueError as exc:
                fail(str(exc))
    if not names and not prediction_files:
        raise click.UsageError("nothing to score: give --methods or --predictions")
    ds = head(open_dataset(path, order=order), limit)
    n = ds.n_images
    predictions = {}
    for p in prediction_files:
        pred = load_predictions(p)
        if limit is None and pred.images and max(pred.images) >= n:
            raise FormatError(p, None, None, f"image {max(pred.images)} is not in {path} "
                                             f"({n} images, 0..{n - 1})")
        predictions[_prediction_name(p, predictions)] = pred
    kernel = _model(ds, physics, kernel_model)
    covered = sum(sum(1 for i in p.images if i < n) for p in predictions.values())
    mode = calibration_mode(calibrate)
    with progress(calibration_steps(n), "calibrate", unit="step") as cal_bar, \
            progress(n * len(names) + covered, "bench") as bar:
        results = run_benchmark(ds, names, tol=tol, kernel=kernel, predictions=predictions,
                                limit=None, on_image=bar.update, weights=weights,
                                calibrate=mode, on_calibration_step=cal_bar.update,
                                workers=workers)
    results["config"]["path"] = str(path)
    md = save_results(out, results)
    click.echo(markdown_table(results), nl=False)
    for line in coverage_notes(results):
        click.echo(f"note: {line}", err=True)
    click.echo(f"{out}: results; {md}: table")
