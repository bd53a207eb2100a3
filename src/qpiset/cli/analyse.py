"""``qpiset analyse``: a measured STM map in one go (``qpiset.workflows.analyse``)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import OVERWRITE, WORKERS, guarded

__all__ = ["analyse"]


@click.command()
@click.argument("path", type=click.Path())
@click.option("--out", "out", type=click.Path(), required=True,
              help="Folder for analysis.json, kernel.npy and report.html (made if missing).")
@click.option("--channel", default=None,
              help="Channel to analyse (default: the lock-in/dI/dV channel, else the first).")
@click.option("--crop", default=None, metavar="X0:X1,Y0:Y1[nm|A|px]",
              help="Analyse only this part of the map (nm unless a unit is given).")
@click.option("--method", default="features", show_default=True,
              type=click.Choice(["features", "matched", "sparse"]),
              help="Scatterers from the map's point features, or a detector with the "
                   "map's kernel on tiles.")
@click.option("--significance", type=click.FloatRange(min=0), default=6.0, show_default=True,
              help="Drop scatterers weaker than this many robust standard deviations.")
@click.option("--energy", type=float, default=0.0, show_default=True,
              help="For a grid (.3ds): the slice (eV) analysed for scatterers.")
@click.option("--resolution", type=click.IntRange(min=8), default=64, show_default=True,
              help="Analysis grid: pixels of a tile (the dataset's 64).")
@click.option("--fov", type=click.FloatRange(min=0, min_open=True), default=100.0,
              show_default=True, help="Analysis grid: a tile's field of view (Å).")
@WORKERS
@OVERWRITE
@guarded
def analyse(path, out, channel, crop, method, significance, energy, resolution, fov,
            workers, overwrite):
    """Analyse a measured map (.sxm, .3ds, Createc .dat, .gwy): standing-wave period and
    q, Bragg peaks, steps, the kernel and the scatterers; writes OUT/analysis.json,
    OUT/kernel.npy and OUT/report.html."""
    from ..core.grid import Grid
    from ..io import read
    from ..io.atomic import atomic_output, check_output
    from ..viz.analysis import build_analysis_report
    from ..workflows.analyse import ANALYSIS_FILES, analyse_map, parse_crop, write_analysis

    out = Path(out)
    if crop:
        parse_crop(crop)  # a bad crop costs nothing
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: exists and is not a folder")
    for name in (*ANALYSIS_FILES, "report.html"):
        if (out / name).exists():
            check_output(out / name, overwrite=overwrite)
    m = read(path, channel=channel)
    if not hasattr(m, "is_grid"):
        raise ValueError(f"{path}: a dataset, not a measured map (analyse takes .sxm, .3ds, "
                         "Createc .dat, .gwy)")
    a = analyse_map(m, crop=crop, grid=Grid(resolution, fov), method=method,
                    significance=significance, workers=workers, energy=energy)
    write_analysis(a, out, overwrite=overwrite)
    with atomic_output(out / "report.html") as f:
        f.write(build_analysis_report(a, label=str(path)).encode("utf-8"))
    p = a.period
    period = "no period" if p is None else f"period {p.period:.2f} ± {p.error:.2f} Å"
    lattice = "" if a.lattice is None else f", lattice {a.lattice:.3f} Å"
    click.echo(f"{out}: {period}{lattice}, {len(a.features.lines)} steps, "
               f"{len(a.scatterers)} scatterers")
