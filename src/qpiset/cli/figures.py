"""``qpiset show`` and ``qpiset report``: figures and the HTML report."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.errors import FormatError
from .common import ORDER, OVERWRITE, guarded, outputs, recorded_model

__all__ = ["show", "report"]


@click.command()
@click.argument("path", type=click.Path())
@click.option("--index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Image to show (0 = the first image row, after the kernel row).")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Figure file: .png, .pdf or .svg.")
@click.option("--predictions", type=click.Path(), default=None,
              help="Detections JSON (qpiset detect): mark found, missed and extra scatterers.")
@click.option("--contributions", is_flag=True,
              help="Draw each scatterer's term, their sum and what is left instead.")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=1.5,
              show_default=True, help="Matching tolerance (Å) for --predictions.")
@ORDER
@OVERWRITE
@guarded
def show(path, index, out, predictions, contributions, tol, order, overwrite):
    """Draw image INDEX of PATH: overlays, kernel, radial profile and q-space (Å, 1/Å).

    When the file records its physics model (sidecar or .npz), the profile shows it and
    the q-space ring is its 2k_F; otherwise the ring is estimated from the kernel row.
    Only image INDEX and the lines before it are looked at (any size of file). With
    --predictions, the file must cover image INDEX (qpiset detect --limit N covers the
    first N)."""
    from ..io import atomic_output, head, load_predictions, open_dataset
    from ..viz import FORMATS, figure_bytes, figure_contributions, figure_show

    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise click.BadParameter(f"{out}: the suffix must be one of "
                                 f"{', '.join('.' + f for f in FORMATS)}", param_hint="--out")
    outputs(out, overwrite=overwrite)
    pred = None
    if predictions is not None and not contributions:
        found = load_predictions(predictions)
        pred = found.get(index)
        if pred is None:
            raise FormatError(predictions, None, None,
                              f"no detections for image {index}: the file covers "
                              f"{found.describe()}; show one of those, or detect in image "
                              f"{index} too (qpiset detect --limit {index + 1})")
    # the images up to INDEX only: counting them reads no further
    ds = head(open_dataset(path, order=order), index + 1)
    if index >= ds.n_images:
        raise click.BadParameter(f"{path} has {ds.n_images} images (0..{ds.n_images - 1})",
                                 param_hint="--index")
    model = recorded_model(ds)
    if contributions:
        fig = figure_contributions(ds, index, kernel_model=model)
    else:
        name = None if predictions is None else Path(predictions).stem
        fig = figure_show(ds, index, predictions=pred, tol=tol, kernel_model=model, method=name)
    with atomic_output(out, compress=False) as f:
        f.write(figure_bytes(fig, fmt))
    click.echo(f"{out}: image {index} of {path}")


@click.command()
@click.argument("path", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="HTML file.")
@click.option("--results", type=click.Path(), default=None,
              help="Benchmark results JSON (qpiset bench --out): tables and example overlays.")
@click.option("--gallery", type=click.IntRange(min=0), default=8, show_default=True,
              help="Images in the gallery.")
@ORDER
@OVERWRITE
@guarded
def report(path, out, results, gallery, order, overwrite):
    """One self-contained HTML page: summary, kernel, gallery, q-space, benchmark.

    A large file is looked at through its first images only (the page says so)."""
    from ..io import atomic_output, open_dataset, read_results
    from ..viz import build_report

    outputs(out, overwrite=overwrite)
    ds = open_dataset(path, order=order)
    res = None if results is None else read_results(results)
    page = build_report(ds, label=str(path), results=res, gallery=gallery,
                        kernel_model=recorded_model(ds))
    with atomic_output(out, compress=False) as f:
        f.write(page.encode("utf-8"))
    click.echo(f"{out}: report on {path} ({len(page) / 1e6:.1f} MB)")
