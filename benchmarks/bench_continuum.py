"""The continuum LDOS of the lattice models against the site projection, in the same run.

1. **Map**: one impurity's 128 x 128 map over 32 x 32 cells (pitch a/4), k-grid 256²,
   one thread: building the kernel (Green's function by FFT, T-matrix, normalisation)
   and evaluating the map, best of 3 with a fresh kernel each time. Square lattice
   (t = 1, mu = -1, a = 2.5 Å) and graphene (t = 2.7, a = 2.46 Å, E = 0.6 eV).
2. **Family kernels**: the first ``--kernels`` kernels of the 400 Å family
   (``sample_family(100, seed=0, fov=400)``, what ``qpiset generate-family`` draws), each
   made into its file of 500 images (64 px, up to 20 scatterers) as ``generate-family``
   does; lattice and bdg kernels once with each projection.
3. With ``--full``: the whole published-size family by the command itself,
   ``qpiset generate-family DIR --kernels 100 --n 500 --fov 400 --max-scatterers 20``
   (continuum, all cores), wall time.

    .venv/bin/python benchmarks/bench_continuum.py [--kernels 10] [--full]
"""

from __future__ import annotations

import argparse
import os
import sys

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # the map is timed on one thread (set before imports)

import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, machine, publish, table  # noqa: E402

EXE = os.path.join(os.path.dirname(sys.executable), "qpiset")

MAPS = {
    "square": dict(structure="square", energy=0.0, t=1.0, mu=-1.0, a=2.5),
    "honeycomb": dict(structure="honeycomb", energy=0.6, t=2.7, a=2.46),
}


def map_time(name: str, projection: str) -> float:
    from qpiset.physics import LatticeKernel

    p = MAPS[name]
    a = p["a"]
    x = (np.arange(128) - 64) * (a / 4)  # 32 cells, 4 samples a cell
    reach = float(np.ceil(np.sqrt(2) * 16 * a)) + 1

    def build():
        K = LatticeKernel(**p, eta=0.02, reach=reach, kgrid=256, projection=projection)
        return K.evaluate_grid(x, x)

    seconds, _ = best_of(build, repeats=3, warmup=1)
    return seconds


def family_times(n_kernels: int) -> list[dict]:
    from qpiset.core import Grid, Recipe
    from qpiset.forward import sample_family
    from qpiset.physics import make_kernel
    from qpiset.workflows import generate_file

    grid, rows = Grid(64, 400.0), []
    params = sample_family(100, 0, None, fov=400.0)[:n_kernels]
    folder = Path(tempfile.mkdtemp(prefix="qpiset-family-"))
    try:
        generate_file(folder / "warm.csv", make_kernel(**params[0]), grid,
                      Recipe(n=2, max_scatterers=20))  # compiled code loaded once
        for i, p in enumerate(params):
            projections = ["continuum", "site"] if p["model"] in ("lattice", "bdg") else [None]
            for proj in projections:
                q = dict(p) if proj is None else {**p, "projection": proj}
                t0 = time.perf_counter()
                generate_file(folder / f"k{i}.csv", make_kernel(**q), grid,
                              Recipe(n=500, max_scatterers=20, seed=i))
                rows.append({"kernel": i, "model": p["model"], "projection": proj,
                             "seconds": time.perf_counter() - t0})
                (folder / f"k{i}.csv").unlink()
                (folder / f"k{i}.csv.json").unlink(missing_ok=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def full_family() -> float:
    folder = Path(tempfile.mkdtemp(prefix="qpiset-family100-"))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    try:
        t0 = time.perf_counter()
        subprocess.run([EXE, "generate-family", str(folder / "fam"), "--kernels", "100",
                        "--n", "500", "--fov", "400", "--max-scatterers", "20"],
                       check=True, stdout=subprocess.DEVNULL, env={**env, "CI": "true"})
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", type=int, default=10)
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args()
    record: dict = {"machine": machine(), "maps": {}, "family": []}
    lines = []
    rows = []
    for name in MAPS:
        site, cont = map_time(name, "site"), map_time(name, "continuum")
        record["maps"][name] = {"site_s": site, "continuum_s": cont}
        rows.append([name, f"{site:.3f}", f"{cont:.3f}", f"{cont / site:.2f}"])
    lines.append(table(rows, ["map (128², 32² cells, k 256², 1 thread)", "site s",
                              "continuum s", "continuum / site"]))
    fam = family_times(args.kernels)
    record["family"] = fam
    rows = []
    for proj in ("continuum", "site"):
        for model in ("friedel", "lattice", "bdg"):
            t = [r["seconds"] for r in fam if r["model"] == model
                 and r["projection"] in ((None,) if model == "friedel" else (proj,))]
            if t:
                rows.append([model, proj if model != "friedel" else "-", len(t),
                             f"{np.mean(t):.2f}"])
    lines.append("")
    lines.append(table(rows, ["family kernel (400 Å, 500 images)", "projection", "kernels",
                              "mean s / kernel"]))
    if args.full:
        wall = full_family()
        record["full_family_s"] = wall
        lines.append("")
        lines.append(f"generate-family --kernels 100 --n 500 --fov 400 --max-scatterers 20: "
                     f"{wall:.0f} s")
    publish("continuum.json", record, "\n".join(lines))


if __name__ == "__main__":
    main()
