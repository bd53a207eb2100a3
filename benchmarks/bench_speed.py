"""Speed of `sparse` on 100-scatterer images: this tree against a baseline revision, same run.

For each noise level it simulates `--n` images with exactly 100 scatterers (the seed
dataset's conventions: 64 px, 100 Å, Cu(111) at E_F, 1 Å tip; seed 2026), then fits them
with `sparse` from the images and the kernel row alone, once with the baseline revision's
code (checked out into a temporary git worktree, or `--baseline-src`; one process) and
once with this tree's, with 1 and with `--workers` processes. Every run starts with one
untimed image (compilation, set-up). It prints, per noise level and run: F1 at 1.5 Å, the
median seconds of one image's fit, and the wall time for all images divided by their
number (with several workers, what a user waits per image; the processes' start is
included), and the speed-up against the baseline. The record goes to `results/speed.json`.

    .venv/bin/python benchmarks/bench_speed.py [--baseline 3866988] [--n 20] [--workers 2]
    # on a many-core machine, 2 cores: taskset -c 0,1 python3 benchmarks/bench_speed.py ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Run in a fresh interpreter on one tree's sources: fit every image, print one JSON line.
RUNNER = r"""
import json, sys, time
import numpy as np
from qpiset.bench.metrics import aggregate, score_detections
from qpiset.forward import simulate
from qpiset.inverse import SparseDeconvolution, file_operator
from qpiset.physics import FriedelKernel

def main():
    n, noise, workers = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    ds = simulate(FriedelKernel("Cu(111)", energy=0.0), n=n + 1, seed=2026, noise=noise,
                  min_scatterers=100, max_scatterers=100)
    op = file_operator(ds.kernel, ds.grid)  # the detectors get the images and the row
    det = SparseDeconvolution()
    det.detect(ds.images[-1:], op)  # untimed: compilation and set-up
    images = [ds.images[i] for i in range(n)]
    t0 = time.perf_counter()
    if workers > 1:
        from qpiset.inverse import detect_images
        fits = [(d.positions[0], t) for d, t in detect_images(det, images, op, workers)]
    else:
        fits = []
        for image in images:
            t = time.perf_counter()
            found = det.detect(image[None], op).positions[0]
            fits.append((found, time.perf_counter() - t))
    wall = time.perf_counter() - t0
    score = aggregate(score_detections(ds.positions[i], p) for i, (p, _) in enumerate(fits))
    print(json.dumps({"images": n, "f1": score.f1, "rmse": score.rmse,
                      "median_fit_s": float(np.median([t for _, t in fits])),
                      "wall_per_image_s": wall / n}))

if __name__ == "__main__":
    main()
"""


def _run(src: Path, n: int, noise: float, workers: int, script: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(script), str(n), str(noise), str(workers)],
                         env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="3866988", help="git revision to compare against")
    ap.add_argument("--baseline-src", default=None,
                    help="the baseline's src folder, in place of a git worktree of --baseline")
    ap.add_argument("--n", type=int, default=20, help="timed images per noise level")
    ap.add_argument("--noise", default="0,0.3,1.0")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "speed.json"))
    args = ap.parse_args(argv)
    record = {"baseline": args.baseline, "workers": args.workers,
              "cpus": len(os.sched_getaffinity(0)), "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = tmp / "baseline"
        if args.baseline_src is None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q",
                            str(base), args.baseline], check=True)
        try:
            script = tmp / "runner.py"
            script.write_text(RUNNER)
            base_src = Path(args.baseline_src).resolve() if args.baseline_src else base / "src"
            runs = [("baseline", base_src, 1), ("this tree", ROOT / "src", 1),
                    (f"this tree, {args.workers} workers", ROOT / "src", args.workers)]
            print("| noise | run | F1 | median s per image fit | wall s per image | "
                  "speed-up (wall) |")
            print("|---|---|---:|---:|---:|---:|")
            for noise in [float(v) for v in args.noise.split(",")]:
                results = {}
                for name, src, workers in runs:
                    r = results[name] = _run(src, args.n, noise, workers, script)
                    ratio = results["baseline"]["wall_per_image_s"] / r["wall_per_image_s"]
                    print(f"| {noise:g} | {name} | {r['f1']:.4f} | {r['median_fit_s']:.3f} | "
                          f"{r['wall_per_image_s']:.3f} | {ratio:.2f} |", flush=True)
                record["runs"][f"{noise:g}"] = results
        finally:
            if args.baseline_src is None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(base)], check=False)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print(f"record: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
