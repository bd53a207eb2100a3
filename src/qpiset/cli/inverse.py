"""``qpiset detect``, ``qpiset kernel`` and ``qpiset bench``: the inverse problems."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..core.errors import FormatError
from .common import (ORDER, OVERWRITE, PHYSICS, WEIGHTS, RegistryChoice, fail, guarded,
                     outputs, progress, recorded_model)

__all__ = ["detect", "kernel_cmd", "bench"]


def _operator(ds, physics: bool):
    """The forward operator of a file: its kernel row, or its recorded physics model."""
    from ..inverse import file_operator

    return file_operator(ds.kernel, ds.grid, recorded_model(ds, required=True) if physics
                         else None)


@click.command()
@click.argument("path", type=click.Path())
@click.option("--method", type=RegistryChoice("qpiset.inverse:DETECTORS"), default="sparse",
              show_default=True,
              help="unet: the learned detector (extra 'ml'); hybrid: its scatterers refined "
                   "and model-selected by the physics fit of sparse.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Predictions JSON: {\"method\": M, \"positions\": [[[x, y], ...], ...]} "
                   "(unet adds \"confidence\", one list per image).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N images only.")
@WEIGHTS
@PHYSICS
@ORDER
@OVERWRITE
@guarded
def detect(path, method, out, limit, weights, physics, order, overwrite):
    """Find the scatterers in every image of PATH (positions in Å, one list per image row)."""
    from ..inverse import Detections, make_detector
    from ..io import predictions_record, read, write_json

    outputs(out, overwrite=overwrite)
    ds = read(path, order=order)
    op = _operator(ds, physics)
    try:
        detector = make_detector(method, weights=weights)
    except ValueError as exc:  # a learned method without torch, or a bad checkpoint
        fail(str(exc))
    n = ds.n_images if limit is None else min(limit, ds.n_images)
    parts = []
    with progress(n, f"detect ({method})") as bar:
        for s in range(0, n, 64):
            images = np.asarray(ds.images[s:min(n, s + 64)])
            parts.append(detector.detect(images, op))
            bar.update(len(images))
    found = Detections.concat(parts) if parts else Detections([])
    write_json(out, predictions_record(method, found.positions, found.confidence))
    click.echo(f"{out}: {int(found.counts.sum())} scatterers in {n} images ({method})")


@click.command("kernel")
@click.argument("path", type=click.Path())
@click.option("--method", type=RegistryChoice("qpiset.inverse:KERNEL_ESTIMATORS"), default="lsq",
              show_default=True,
              help="lsq: least squares with the file's positions; blind: from the images alone; "
                   "vae: learned, two-step latent alignment (extra 'ml'); direct: its one-step "
                   "baseline.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Kernel image (.npy), indexed [iy, ix] on the file's grid.")
@click.option("--images", "n_images", type=click.IntRange(min=1), default=8, show_default=True,
              help="How many images to use.")
@WEIGHTS
@ORDER
@OVERWRITE
@guarded
def kernel_cmd(path, method, out, n_images, weights, order, overwrite):
    """Estimate the single-scatterer kernel from the images; compare with the kernel row."""
    from ..bench import kernel_nmse
    from ..inverse import make_kernel_estimator
    from ..io import atomic_output, read

    outputs(out, overwrite=overwrite)
    ds = read(path, order=order)
    n = min(n_images, ds.n_images)
    if n == 0:
        raise FormatError(path, None, None, "no images to estimate a kernel from")
    try:
        estimator = make_kernel_estimator(method, weights=weights)
        kernel = estimator.estimate(np.asarray(ds.images[:n]), ds.grid, ds.positions[:n])
    except ValueError as exc:  # a learned method without torch, a bad checkpoint or grid
        fail(str(exc))
    img = kernel.sample(ds.grid)
    with atomic_output(out, compress=False) as f:
        np.save(f, img)
    click.echo(f"{out}: kernel from {n} images ({method}); NMSE against the file's kernel row "
               f"(best scale and sign): {kernel_nmse(img, ds.kernel):.3e}")


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
@ORDER
@OVERWRITE
@guarded
def bench(path, methods, prediction_files, out, tol, limit, weights, physics, order,
          overwrite):
    """Run detectors on every image of PATH and score them against the file's positions."""
    from ..bench import REFERENCES, markdown_table, run_benchmark, save_results
    from ..inverse import DETECTORS, make_detector
    from ..io import read, read_predictions

    if Path(out).suffix.lower() == ".md":
        raise click.BadParameter(f"{out}: the results are JSON and the table is written "
                                 "beside them as .md; name the JSON file", param_hint="--out")
    outputs(out, Path(out).with_suffix(".md"), overwrite=overwrite)
    ds = read(path, order=order)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    for m in names:
        if m not in tuple(DETECTORS) + REFERENCES:
            raise click.BadParameter(f"unknown method {m!r}; methods: "
                                     f"{', '.join(tuple(DETECTORS) + REFERENCES)}",
                                     param_hint="--methods")
        if m in DETECTORS:  # no torch, or a bad checkpoint, is bad input named before any work
            try:
                make_detector(m, weights=weights)
            except ValueError as exc:
                fail(str(exc))
    predictions = {}
    for p in prediction_files:
        predictions[_prediction_name(p, predictions)] = read_predictions(p, ds.n_images)
    if not names and not predictions:
        raise click.UsageError("nothing to score: give --methods or --predictions")
    n = ds.n_images if limit is None else min(limit, ds.n_images)
    kernel = recorded_model(ds, required=True) if physics else None
    with progress(n * (len(names) + len(predictions)), "bench") as bar:
        results = run_benchmark(ds, names, tol=tol, kernel=kernel, predictions=predictions,
                                limit=limit, on_image=bar.update, weights=weights)
    results["config"]["path"] = str(path)
    md = save_results(out, results)
    click.echo(markdown_table(results), nl=False)
    click.echo(f"{out}: results; {md}: table")
