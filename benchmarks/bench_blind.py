"""Blind kernel estimation: the kernel from images alone, NMSE and wall time.

Each case simulates ``--images`` images (51-100 scatterers, white noise ``--noise`` x each
image's std, the dataset's 64 px over 100 Å) with ``seed`` and runs
:func:`qpiset.inverse.blind_kernel` on them, timed by the wall clock (the start from the
power spectrum, then rounds of ``sparse`` detection and kernel refit). NMSE is
``qpiset.bench.kernel_nmse`` against the true kernel row (best scale and sign, every
pixel of the row, its nearest-to-centre pixels included).

Cases: Cu(111) and Ag(111) at the Fermi level (isotropic, ``--seeds`` seeds each), and the
first lattice kernel of the unseen family of ``bench_ml.py --parts unseen`` (anisotropic;
``--aniso-images`` images, ``--aniso-rounds`` rounds, to bound its time).

Usage::

    .venv/bin/python benchmarks/bench_blind.py [--seeds 0,1,2] [--images 10] [--noise 0.1]
        [--cases "Cu(111),Ag(111),lattice"] [--aniso-images 4] [--aniso-rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine, write_json  # noqa: E402


def run_case(label: str, kernel, images: int, noise: float, seed: int, **options) -> dict:
    from qpiset.bench import kernel_nmse
    from qpiset.core import Grid
    from qpiset.forward import simulate
    from qpiset.inverse import blind_kernel

    grid = Grid(64, 100.0)
    ds = simulate(kernel, grid, n=images, seed=seed, noise=noise, min_scatterers=51,
                  max_scatterers=100)
    t0 = time.perf_counter()
    result = blind_kernel(ds.images, grid, **options)
    seconds = time.perf_counter() - t0
    start = None if result.start is None else kernel_nmse(result.start.kernel.sample(grid),
                                                          ds.kernel)
    row = {"case": label, "seed": seed, "images": images, "noise": noise,
           "scatterers_true": int(sum(len(p) for p in ds.positions)),
           "nmse": round(kernel_nmse(result.kernel.sample(grid), ds.kernel), 6),
           "nmse_start": None if start is None else round(start, 6),
           "seconds": round(seconds, 1), "record": result.record()}
    print(f"{label:28s} seed {seed}: NMSE {row['nmse']:.4f} (start {row['nmse_start']:.4f}), "
          f"{row['scatterers_true']} true scatterers, "
          f"{seconds:.1f} s, {result.rounds} rounds (best {result.best}), "
          f"{'radial' if result.isotropic else '2D'}", flush=True)
    return row


def main(argv=None) -> None:
    from qpiset.forward import sample_family
    from qpiset.physics import FriedelKernel, make_kernel

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--aniso-images", type=int, default=4)
    ap.add_argument("--aniso-rounds", type=int, default=2)
    ap.add_argument("--cases", default="Cu(111),Ag(111),lattice",
                    help="comma-separated: Cu(111), Ag(111), lattice")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    rows = []
    for material in [c for c in cases if c != "lattice"]:
        for seed in seeds:
            rows.append(run_case(material, FriedelKernel(material), args.images, args.noise,
                                 seed))
    if "lattice" in cases:
        params = sample_family(6, seed=424242, fov=100.0)[1]  # the first lattice kernel
        rows.append(run_case(f"lattice {params['structure']} (unseen #1)", make_kernel(**params),
                             args.aniso_images, args.noise, seeds[0],
                             rounds=args.aniso_rounds, isotropic=False))
    summary = {}
    for label in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == label]
        summary[label] = {"nmse_max": max(r["nmse"] for r in mine),
                          "nmse_median": float(np.median([r["nmse"] for r in mine])),
                          "seconds_max": max(r["seconds"] for r in mine)}
    print("\n| kernel | images | seeds | NMSE (median / worst) | start NMSE (median) | "
          "seconds (worst) |\n|---|---:|---:|---:|---:|---:|")
    for label, s in summary.items():
        mine = [r for r in rows if r["case"] == label]
        print(f"| {label} | {mine[0]['images']} | {len(mine)} | {s['nmse_median']:.4f} / "
              f"{s['nmse_max']:.4f} | {np.median([r['nmse_start'] for r in mine]):.4f} | "
              f"{s['seconds_max']:.1f} |")
    record = {"command": "benchmarks/bench_blind.py " + " ".join(argv or sys.argv[1:]),
              "config": vars(args), "machine": machine(), "rows": rows, "summary": summary}
    path = write_json("blind.json", record, Path(args.out))
    print(f"{path}: record")


if __name__ == "__main__":
    main()
