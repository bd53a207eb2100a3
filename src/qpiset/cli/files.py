"""``qpiset validate``, ``qpiset info`` and ``qpiset convert``: dataset files."""

from __future__ import annotations

import contextlib
import json
import os

import click

from .common import ORDER, OVERWRITE, guarded, outputs, progress

__all__ = ["validate", "info", "convert", "progress_of"]


@contextlib.contextmanager
def progress_of(desc: str):
    """A callback ``(done, total, unit)`` for the library's long passes
    (:func:`qpiset.io.stream`'s ``on_progress``) that drives a progress bar: bytes of the
    file (``unit="B"``, shown in kB, MB, ...), images or blocks; a pass in other units
    (a store's blocks checked, then its images) starts a new bar. Silent in pipes and CI."""
    bar = None
    kind = None

    def update(done: int, total: int, unit: str) -> None:
        nonlocal bar, kind
        if bar is not None and kind != (total, unit):
            bar.close()
            bar = None
        if bar is None:
            kind = (total, unit)
            bar = progress(total, desc, unit=unit)
            if unit == "B":
                bar.unit_scale, bar.unit_divisor = True, 1024
        if done > bar.n:
            bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


@click.command()
@click.argument("path", type=click.Path())
@ORDER
@guarded
def validate(path, order):
    """Check every line of a dataset file: exit 0 and a summary, or exit 1 and PATH:LINE:COL.

    A row-format file made elsewhere (no qpiset metadata beside it) whose images fit the
    other pixel order clearly better fails too, naming the --order that reads it."""
    from ..io import validate as check

    with progress_of("validate") as update:
        summary = check(path, order=order, on_progress=update)
    click.echo(summary.line())


@click.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@ORDER
@guarded
def info(path, as_json, order):
    """Resolution, field of view, slots, image count and scatterer-count statistics."""
    from ..io import summarize

    with progress_of("info") as update:
        s = summarize(path, order=order, on_progress=update)
    if as_json:
        click.echo(json.dumps(s.as_dict(), indent=2, sort_keys=True))
        return
    c, i = s.counts, s.intensity
    rows = [
        ("file", f"{s.path} ({s.format}{', ' + s.layout if s.layout else ''})"),
        ("resolution", f"{s.resolution} x {s.resolution} px"),
        ("field of view", f"{s.fov:g} Å (pitch {s.pitch:.4f} Å)"),
        ("max_scatterers", str(s.max_scatterers)),
        ("images", str(s.n_images)),
        ("scatterers/image", f"min {c['min']}, median {c['median']:g}, mean {c['mean']:.2f}, "
                             f"max {c['max']} (total {c['total']})"),
        ("intensity", f"min {i['min']:.4g}, max {i['max']:.4g}, mean {i['mean']:.4g}, "
                      f"std {i['std']:.4g}"),
    ]
    kernel = s.meta.get("kernel")
    if kernel:
        params = ", ".join(f"{k}={v}" for k, v in kernel.items() if v is not None and k != "model")
        rows.append(("kernel", f"{kernel.get('model')}: {params}"))
    if s.meta.get("kind") == "measurement":
        rows.append(("measured", f"{s.meta.get('source')} ({s.meta.get('channel')}): "
                                 f"positions {s.meta.get('positions')}"))
    if "seed" in s.meta:
        rows.append(("generated", f"{s.meta.get('generator')}, seed {s.meta['seed']}, "
                                  f"noise {s.meta.get('noise')}"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"{k:<{width}}  {v}")


@click.command()
@click.argument("src", type=click.Path())
@click.argument("dst", type=click.Path())
@click.option("--layout", type=click.Choice(["padded", "ragged"]), default="padded",
              show_default=True)
@click.option("--resolution", type=click.IntRange(min=8), default=64, show_default=True,
              help="A measured map (SRC .sxm/.3ds/.dat/.gwy): pixels of each tile.")
@click.option("--fov", type=click.FloatRange(min=0, min_open=True), default=100.0,
              show_default=True, help="A measured map: each tile's field of view (Å).")
@click.option("--channel", default=None, help="A measured map: the channel to convert.")
@click.option("--crop", default=None, metavar="X0:X1,Y0:Y1[nm|A|px]",
              help="A measured map: convert only this part.")
@ORDER
@OVERWRITE
@guarded
def convert(src, dst, layout, resolution, fov, channel, crop, order, overwrite):
    """Convert between the row format (.csv, .csv.gz), .npz and a .zarr store; row-format
    and store output are streamed.

    A measured map (SRC .sxm, .3ds, Createc .dat, .gwy) becomes a dataset: the levelled
    map cut into tiles of --resolution px over --fov Å, with the kernel and scatterers
    `qpiset analyse` estimates (marked as estimated in the metadata)."""
    import shutil

    from ..io import convert as run
    from ..io.measured import is_measurement

    outputs(dst, overwrite=overwrite)
    if is_measurement(src):
        _convert_map(src, dst, layout, resolution, fov, channel, crop)
        return
    if overwrite and dst.rstrip("/").endswith(".zarr") and os.path.isdir(dst):
        shutil.rmtree(dst)
    with progress_of("convert") as update:
        n = run(src, dst, layout=layout, order=order, on_progress=update)
    click.echo(f"{dst}: wrote {n} images from {src}")


def _convert_map(src, dst, layout, resolution, fov, channel, crop) -> None:
    from ..core.grid import Grid
    from ..io import read, write
    from ..workflows.analyse import analyse_map, measurement_dataset

    grid = Grid(resolution, fov)
    analysis = analyse_map(read(src, channel=channel), crop=crop, grid=grid)
    ds = measurement_dataset(analysis, grid)
    write(dst, ds, layout=layout)
    click.echo(f"{dst}: wrote {ds.n_images} tiles of {src} ({ds.counts.sum()} estimated "
               f"scatterers, kernel: {analysis.kernel_source})")
