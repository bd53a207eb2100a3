"""``qpiset demo``: the main job on built-in defaults."""

from __future__ import annotations

from pathlib import Path

import click

from .common import OVERWRITE, guarded, outputs, progress

__all__ = ["demo"]


@click.command()
@click.option("--out", type=click.Path(file_okay=False), default="demo", show_default=True,
              help="Output folder.")
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--bench-images", type=click.IntRange(min=0), default=20, show_default=True,
              help="Images to benchmark the detectors on (0: skip).")
@OVERWRITE
@guarded
def demo(out, n, seed, bench_images, overwrite):
    """The main job on built-in defaults: generate the seed dataset, validate it, print
    info, benchmark the detectors, write the HTML report."""
    from ..viz import build_report
    from ..workflows import DEMO_FILES, run_demo

    if Path(out).is_dir():  # a folder that holds an earlier demo: its files are outputs
        outputs(*(Path(out) / name for name in DEMO_FILES), overwrite=overwrite)
    else:
        outputs(out, overwrite=overwrite)
    run_demo(Path(out), n=n, seed=seed, echo=click.echo, progress=progress,
             bench_images=bench_images, report=build_report)
