"""Stages wired together: simulate straight into a file, and the demo job.

(physics -> synth -> io; nothing here that the stages themselves should own.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .grid import Grid
from .io import file_format, summarize, write, write_stream
from .physics import FriedelKernel, Kernel
from .noise import NoiseModel
from .synth import generation_meta, kernel_image, simulate, simulate_blocks

__all__ = ["generate_file", "run_demo"]


def generate_file(
    path, kernel: Kernel, grid: Grid, n: int, *, seed: int = 0, min_scatterers: int = 1,
    max_scatterers: int = 100, strength=1.0, noise: NoiseModel | None = None,
    threads: int | None = None, layout: str = "padded",
    on_block: Callable[[int], object] | None = None, scattering: str = "born",
    workers: int | None = None, scheduler: str | None = None,
) -> None:
    """Simulate ``n`` images and write them to ``path`` (format by suffix).

    The row format is written while blocks are simulated (bounded memory, atomic). A
    ``.zarr`` store is made block by block, on a dask cluster when ``workers`` > 1 or a
    ``scheduler`` is given, and resumed if it holds the same, unfinished run
    (:mod:`qpiset.distributed`). With a ``scheduler`` the row format's blocks are made on
    the cluster too and written in order by this process.
    """
    kind = file_format(path)
    options = dict(seed=seed, min_scatterers=min_scatterers, max_scatterers=max_scatterers,
                   strength=strength, noise=noise, scattering=scattering)
    if kind == "zarr":
        from .distributed import generate_store

        generate_store(path, kernel, grid, n, workers=workers, scheduler=scheduler,
                       on_block=on_block, **options)
        return
    meta = generation_meta(kernel, n, seed, min_scatterers, max_scatterers, strength, noise,
                           scattering)
    if kind == "npz":
        ds = simulate(kernel, grid, n, seed=seed, min_scatterers=min_scatterers,
                      max_scatterers=max_scatterers, strength=strength, noise=noise,
                      threads=threads, scattering=scattering)
        if on_block:
            on_block(n)
        write(path, ds)
        return

    def chunks():
        if scheduler:
            from .distributed import cluster_blocks

            for images, positions in cluster_blocks(kernel, grid, n, scheduler=scheduler,
                                                    **options):
                yield images, positions
                if on_block:
                    on_block(len(images))
            return
        for _, images, positions, _ in simulate_blocks(
            kernel, grid, n, seed=seed, min_scatterers=min_scatterers,
            max_scatterers=max_scatterers, strength=strength, noise=noise, threads=threads,
            scattering=scattering,
        ):
            yield images, positions
            if on_block:
                on_block(len(images))

    write_stream(path, grid, kernel_image(kernel, grid), max_scatterers, chunks(), meta,
                 layout=layout)


def run_demo(out: Path, n: int = 1000, seed: int = 0, echo=print, progress=None,
             bench_images: int = 20) -> Path:
    """Generate the seed dataset (64 px, 100 Å, up to 100 scatterers, Cu(111) at E_F) into
    ``out/qpi.csv``, validate it, print its summary, benchmark the detectors on its
    first ``bench_images`` images (``out/bench.json`` and ``out/bench.md``), and write the
    HTML report with the benchmark (``out/report.html``). Returns the dataset path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "qpi.csv"
    kernel = FriedelKernel("Cu(111)", energy=0.0)
    grid = Grid(64, 100.0)
    echo(f"[1/5] generate {n} images -> {path}  ({kernel.material}, E = 0 eV, "
         f"period pi/k_F = {kernel.period:.2f} Å, seed {seed})")
    if progress is not None:
        with progress(n, "generate") as bar:
            generate_file(path, kernel, grid, n, seed=seed, on_block=bar.update)
    else:
        generate_file(path, kernel, grid, n, seed=seed)
    echo(f"[2/5] validate {path}")
    summary = summarize(path)
    echo("      " + summary.line())
    echo("[3/5] info")
    c = summary.counts
    echo(f"      resolution {summary.resolution}, fov {summary.fov:g} Å, pitch "
         f"{summary.pitch:.4f} Å, max_scatterers {summary.max_scatterers}, "
         f"images {summary.n_images}, scatterers/image {c['min']}..{c['max']} "
         f"(mean {c['mean']:.1f})")
    import json

    from .io import atomic_output, read

    ds = read(path)
    results = None
    if bench_images:
        from .bench import markdown_table, run_benchmark

        from .methods import learned_available

        k = min(bench_images, ds.n_images)
        methods = ("matched", "sparse") + (("unet",) if learned_available() else ())
        echo(f"[4/5] bench: {', '.join(methods)} on the first {k} images (from the file alone"
             f"{'' if learned_available() else '; the learned detector needs the extra ml'})")
        if progress is not None:
            with progress(len(methods) * k, "bench") as bar:
                results = run_benchmark(ds, methods, limit=k, on_image=bar.update)
        else:
            results = run_benchmark(ds, methods, limit=k)
        table = markdown_table(results)
        for name, text in (("bench.json", json.dumps(results, indent=1)), ("bench.md", table)):
            with atomic_output(out / name, compress=False) as f:
                f.write(text.encode())
        echo(table)
    from .viz import build_report

    echo(f"[5/5] report -> {out / 'report.html'}")
    page = build_report(ds, label=path.name, results=results, kernel_model=kernel)
    with atomic_output(out / "report.html", compress=False) as f:
        f.write(page.encode("utf-8"))
    return path
