"""The main job on built-in defaults (``qpiset demo``, ``make demo``): generate the seed
dataset, validate it, print its summary, benchmark the detectors on its first images and
write the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..bench import markdown_table, run_benchmark, save_results
from ..core.grid import Grid
from ..core.recipe import Recipe
from ..inverse import DETECTORS, learned_available
from ..io import atomic_output, read, summarize
from ..physics import FriedelKernel
from .generate import generate_file

__all__ = ["run_demo", "DEMO_FILES"]

#: What the demo writes into its folder.
DEMO_FILES = ("qpi.csv", "qpi.csv.json", "bench.json", "bench.md", "report.html")


def run_demo(out: Path, n: int = 1000, seed: int = 0, echo=print, progress=None,
             bench_images: int = 20, report: Callable | None = None) -> Path:
    """Generate the seed dataset (64 px, 100 Å, up to 100 scatterers, Cu(111) at E_F) into
    ``out/qpi.csv``, validate it, print its summary, benchmark the detectors on its
    first ``bench_images`` images (``out/bench.json`` and ``out/bench.md``; the learned one
    when torch is there), and write ``out/report.html`` with ``report(ds, label=...,
    results=..., kernel_model=...) -> html`` (the command line passes
    :func:`qpiset.viz.build_report`). Returns the dataset path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "qpi.csv"
    kernel = FriedelKernel("Cu(111)", energy=0.0)
    grid = Grid(64, 100.0)
    recipe = Recipe(n=n, seed=seed)
    steps = 5 if report is not None else 4
    echo(f"[1/{steps}] generate {n} images -> {path}  ({kernel.material}, E = 0 eV, "
         f"period pi/k_F = {kernel.period:.2f} Å, seed {seed})")
    if progress is not None:
        with progress(n, "generate") as bar:
            generate_file(path, kernel, grid, recipe, on_block=bar.update)
    else:
        generate_file(path, kernel, grid, recipe)
    echo(f"[2/{steps}] validate {path}")
    summary = summarize(path)
    echo("      " + summary.line())
    echo(f"[3/{steps}] info")
    c = summary.counts
    echo(f"      resolution {summary.resolution}, fov {summary.fov:g} Å, pitch "
         f"{summary.pitch:.4f} Å, max_scatterers {summary.max_scatterers}, "
         f"images {summary.n_images}, scatterers/image {c['min']}..{c['max']} "
         f"(mean {c['mean']:.1f})")
    ds = read(path)
    results = None
    if bench_images:
        k = min(bench_images, ds.n_images)
        learned = learned_available()
        methods = [name for name, m in DETECTORS.items() if m.demo and (learned or not m.learned)]
        echo(f"[4/{steps}] bench: {', '.join(methods)} on the first {k} images (from the file "
             f"alone{'' if learned else '; the learned detector needs the extra ml'})")
        if progress is not None:
            with progress(len(methods) * k, "bench") as bar:
                results = run_benchmark(ds, methods, limit=k, on_image=bar.update)
        else:
            results = run_benchmark(ds, methods, limit=k)
        save_results(out / "bench.json", results)
        echo(markdown_table(results))
    if report is not None:
        echo(f"[5/{steps}] report -> {out / 'report.html'}")
        page = report(ds, label=path.name, results=results, kernel_model=kernel)
        with atomic_output(out / "report.html", compress=False) as f:
            f.write(page.encode("utf-8"))
    return path
