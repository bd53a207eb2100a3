"""Self-calibration and any kernel shape: the accuracy they buy, against a fit handed the
exact continuous kernel.

1. **Structure inside a pixel** (``--parts subpixel``): a Cu(111) surface state with a
   sharp tip (``tip_sigma`` 0.3 Å: its kernel peaks inside the nearest pixel, where the
   kernel row is blind), 51-100 scatterers per image, noise 0, 0.3 and 1.0 × image std.
   ``sparse`` with the row's model, with the self-calibrated model (calibrated on the
   first ``--calibration`` images, scored on the next ``--test``), and handed the exact
   physics model. Position RMSE over matched pairs (1.5 Å) and F1. With ``--tip-sigma 1
   --key default``: the same on the dataset's default kernel (is calibration, on by
   default, harmless there?).
2. **Unseen anisotropic kernels** (``--parts unseen``): the lattice and superconducting
   kernels of ``bench_ml.py --parts unseen`` (the same family seed), ``--unseen-images``
   images at noise 0.3: ``sparse`` and ``hybrid`` with the row's 2D model, ``sparse``
   with the exact model, and the 2D calibration handed the true positions (what the
   images hold) against the alternation from detections.

Usage::

    .venv/bin/python benchmarks/bench_calibrate.py [--parts subpixel,unseen] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


def _score(detector, op, images, truths) -> dict:
    from qpiset.bench import aggregate, score_detections

    scores, seconds = [], []
    for img, truth in zip(images, truths):
        t0 = time.perf_counter()
        found = detector.detect(np.asarray(img)[None], op).positions[0]
        seconds.append(time.perf_counter() - t0)
        scores.append(score_detections(truth, found, 1.5))
    s = aggregate(scores)
    return {"f1": round(s.f1, 4), "rmse": round(s.rmse, 4),
            "seconds_median": round(float(np.median(seconds)), 3)}


def subpixel(args) -> list[dict]:
    from qpiset.core import Grid
    from qpiset.forward import Forward, simulate
    from qpiset.inverse import SparseDeconvolution, calibrate, file_operator
    from qpiset.physics import FriedelKernel

    grid = Grid(64, 100.0)
    kernel = FriedelKernel("Cu(111)", 0.0, tip_sigma=args.tip_sigma)
    rows = []
    for noise in args.noise:
        n_cal = args.calibration
        ds = simulate(kernel, grid, n=n_cal + args.test, seed=args.seed, noise=noise,
                      min_scatterers=51, max_scatterers=100)
        images, truths = np.asarray(ds.images), ds.positions
        det = SparseDeconvolution()
        op = file_operator(ds.kernel, grid)
        cal = calibrate(images[:n_cal], op, det)
        test = (images[n_cal:], truths[n_cal:])
        row = {"noise": noise, "tip_sigma": args.tip_sigma, "calibration": cal.record(),
               "row": _score(det, op, *test), "calibrated": _score(det, cal.op, *test),
               "exact": _score(det, Forward(kernel, grid, row=ds.kernel), *test)}
        rows.append(row)
        print(f"noise {noise}: " + ", ".join(f"{k} F1 {row[k]['f1']:.4f} RMSE {row[k]['rmse']:.3f}"
                                             for k in ("row", "calibrated", "exact"))
              + f" (calibration: {cal.record()['changes']}, {cal.skipped or 'kept'})",
              flush=True)
    return rows


def unseen(args) -> list[dict]:
    from qpiset.core import Grid
    from qpiset.forward import Forward, sample_family, simulate
    from qpiset.inverse import (Detections, calibrate_kernel, file_operator, learned_available,
                                make_detector)
    from qpiset.physics import make_kernel

    grid = Grid(64, 100.0)
    rows = []
    for i, params in enumerate(sample_family(6, seed=424242, fov=grid.fov)):
        if params["model"] == "friedel":
            continue  # the isotropic kernels of that family
        kernel = make_kernel(**params)
        ds = simulate(kernel, grid, n=args.unseen_images, seed=2026 + i, noise=0.3)
        cal_set = simulate(kernel, grid, n=args.unseen_images, seed=9000 + i, noise=0.3)
        images, truths = np.asarray(ds.images), ds.positions
        op = file_operator(ds.kernel, grid)
        sparse = make_detector("sparse")
        row = {"kernel": f"{params['model']} {params.get('structure', '')}"
                         f"{params.get('pairing', '')}".strip(), "params": params,
               "sparse": _score(sparse, op, images, truths),
               "sparse_exact": _score(sparse, Forward(kernel, grid, row=ds.kernel), images,
                                      truths)}
        if learned_available():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row["hybrid"] = _score(make_detector("hybrid"), op, images, truths)
                row["unet"] = _score(make_detector("unet"), op, images, truths)
        # what the images hold: the 2D calibration handed the true scatterers of other images
        found = Detections(cal_set.positions, [np.ones(len(p)) for p in cal_set.positions])
        known = Forward(calibrate_kernel(cal_set.images, found, op), grid, row=ds.kernel)
        row["sparse_calibrated_on_truth"] = _score(sparse, known, images, truths)
        rows.append(row)
        print(f"{row['kernel']}: " + ", ".join(f"{k} {v['f1']:.3f}" for k, v in row.items()
                                               if isinstance(v, dict) and "f1" in v),
              flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="subpixel,unseen")
    ap.add_argument("--calibration", type=int, default=20, help="images to calibrate on")
    ap.add_argument("--test", type=int, default=15, help="images to score")
    ap.add_argument("--unseen-images", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--tip-sigma", type=float, default=0.3,
                    help="subpixel: the tip's width (Å; 1.0 is the dataset's default kernel)")
    ap.add_argument("--noise", type=lambda v: [float(x) for x in v.split(",")],
                    default=[0.0, 0.3, 1.0], help="subpixel: noise levels (× image std)")
    ap.add_argument("--key", default=None, help="store the part under this name")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "calibrate.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    for part in args.parts.split(","):
        t0 = time.perf_counter()
        summary[args.key or part] = {"subpixel": subpixel, "unseen": unseen}[part](args)
        print(f"{part}: {time.perf_counter() - t0:.0f} s", flush=True)
    path.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
