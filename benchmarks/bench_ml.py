"""Learned models against the classical ones: detection and kernel extraction.

1. **Detection, the dataset's kernel** (Cu(111) at E_F, 64 px, 100 Å, counts 1..100):
   `bench_inverse.py` with `--methods sparse,unet,hybrid,oracle` at white noise 0.3 and
   1.0 x image std — the same files (same seed) as the classical benchmark, every method
   scored in the same `qpiset bench` run.
2. **Detection, kernels no model saw**: family kernels drawn with a seed that neither the
   detector's training bank nor its validation used (surface states, lattices,
   superconductors); `--unseen-images` images each at noise 0.3; unet, hybrid and sparse
   (which models the kernel row as isotropic).
3. **Kernel extraction on held-out kernels**: the shipped kernel extractor's test split
   (kernels never seen in training), `--kernel-images` images each at noise 0.1: the
   two-step method (latent alignment) against the one-step baseline, from one image and
   from all of them; NMSE after the best scale and sign.

    .venv/bin/python benchmarks/bench_ml.py [--n 60] [--n100 20] [--unseen 6]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402


def detection_default(args, out: Path) -> dict:
    cmd = [sys.executable, str(HERE / "bench_inverse.py"), "--n", str(args.n), "--n100",
           str(args.n100), "--noise", "0.3,1.0", "--methods", "sparse,unet,hybrid,oracle",
           "--seed", str(args.seed), "--out", str(out / "default")]
    subprocess.run(cmd, check=True)
    return json.loads((out / "default" / "summary.json").read_text())


def detection_unseen(args) -> list[dict]:
    from qpiset.bench import run_benchmark
    from qpiset.core import Grid
    from qpiset.forward import sample_family, simulate
    from qpiset.physics import make_kernel

    grid = Grid(64, 100.0)
    rows = []
    import warnings

    for i, params in enumerate(sample_family(args.unseen, seed=args.unseen_seed, fov=grid.fov)):
        kernel = make_kernel(**params)
        ds = simulate(kernel, grid, n=args.unseen_images, seed=args.seed + i, noise=0.3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sparse warns that the row is anisotropic
            res = run_benchmark(ds, ["sparse", "unet", "hybrid"])
        label = params["model"] + (f" {params['structure']}" if "structure" in params else "") + (
            f" {params['material']}" if "material" in params else "") + (
            f" {params['pairing']}-wave" if "pairing" in params else "")
        row = {"kernel": label, "params": params}
        for name, m in res["methods"].items():
            row[name] = {"f1": m["overall"]["f1"], "rmse": m["overall"]["rmse"],
                         "seconds_median": m["overall"]["seconds_median"]}
        rows.append(row)
        print(f"unseen kernel {i}: {label}: " + ", ".join(
            f"{n} F1 {row[n]['f1']:.3f}" for n in ("sparse", "unet", "hybrid")), flush=True)
    return rows


def kernel_extraction(args) -> dict:
    from qpiset.bench import kernel_nmse
    from qpiset.core import Grid
    from qpiset.forward import sample_family, simulate
    from qpiset.inverse.learned.kernel_vae import load_kernel_extractor
    from qpiset.physics import make_kernel

    extractor, state = load_kernel_extractor()
    record = state["info"]["record"]
    grid = Grid(*record["grid"])
    family = sample_family(record["n_kernels"], record["seed"], fov=grid.fov)
    test = record["test_kernels"][: args.kernels]
    per = {"vae": [], "direct": []}
    files = {"vae": [], "direct": []}
    for j, i in enumerate(test):
        params = family[i]
        if params["model"] in ("lattice", "bdg"):  # as the bank had them (older records: site)
            params = {**params, "projection": record.get("projection", "site")}
        ds = simulate(make_kernel(**params), grid, n=args.kernel_images, seed=args.seed + j,
                      noise=0.1)
        for method in per:
            per[method] += [kernel_nmse(extractor(img[None], method), ds.kernel)
                            for img in ds.images]
            files[method].append(kernel_nmse(extractor(ds.images, method), ds.kernel))
    out = {"kernels": len(test), "images_per_kernel": args.kernel_images, "noise": 0.1}
    for method in per:
        out[method] = {"nmse_image_mean": float(np.mean(per[method])),
                       "nmse_image_median": float(np.median(per[method])),
                       "nmse_file_mean": float(np.mean(files[method]))}
    out["improvement_image"] = 1 - out["vae"]["nmse_image_mean"] / out["direct"]["nmse_image_mean"]
    out["improvement_file"] = 1 - out["vae"]["nmse_file_mean"] / out["direct"]["nmse_file_mean"]
    out["training"] = {"seconds": record["seconds"], "seed": record["seed"],
                       "record_evaluation": record["evaluation"]}
    return out


def markdown(summary: dict) -> str:
    lines = ["## Detection, the dataset's kernel (F1 at 1.5 Å; same files, same run)", "",
             "| noise | scatterers | sparse | unet | hybrid | oracle (uses the truth) |",
             "|---|---|---:|---:|---:|---:|"]
    for key, methods in summary["default"].items():
        for band in ("1-10", "11-50", "51-100", "all"):
            cells = [methods.get(m, {}).get(band, {}).get("f1") for m in
                     ("sparse", "unet", "hybrid", "oracle")]
            if any(c is None for c in cells):
                continue
            lines.append(f"| {key} | {band} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    lines += ["", "## Detection, kernels no model saw (noise 0.3, F1 at 1.5 Å)", "",
              "| kernel | sparse | unet | hybrid |", "|---|---:|---:|---:|"]
    for row in summary["unseen"]:
        lines.append(f"| {row['kernel']} | {row['sparse']['f1']:.3f} | {row['unet']['f1']:.3f} "
                     f"| {row['hybrid']['f1']:.3f} |")
    k = summary["kernel"]
    lines += ["", f"## Kernel extraction, {k['kernels']} held-out kernels "
                  f"({k['images_per_kernel']} images each, noise {k['noise']})", "",
              "| method | NMSE, one image (mean) | median | NMSE, all images of a kernel |",
              "|---|---:|---:|---:|"]
    for method, label in (("vae", "two-step (latent alignment)"), ("direct", "one-step baseline")):
        m = k[method]
        lines.append(f"| {label} | {m['nmse_image_mean']:.3f} | {m['nmse_image_median']:.3f} "
                     f"| {m['nmse_file_mean']:.3f} |")
    def change(x):
        return f"{100 * x:.0f} % lower" if x >= 0 else f"{-100 * x:.0f} % higher"

    lines += ["", f"Two-step NMSE is {change(k['improvement_image'])} than the one-step "
                  f"baseline's from one image, {change(k['improvement_file'])} from all images "
                  "of a kernel.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="images per noise level (default kernel)")
    ap.add_argument("--n100", type=int, default=20, help="100-scatterer images per noise level")
    ap.add_argument("--unseen", type=int, default=6, help="unseen kernels")
    ap.add_argument("--unseen-images", type=int, default=20)
    ap.add_argument("--unseen-seed", type=int, default=424242)
    ap.add_argument("--kernels", type=int, default=40, help="held-out kernels to extract")
    ap.add_argument("--kernel-images", type=int, default=8)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default=str(HERE / "results" / "ml"))
    ap.add_argument("--parts", default="default,unseen,kernel",
                    help="which parts to run (the others are kept from the last summary)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "summary.json"
    summary = json.loads(previous.read_text()) if previous.exists() else {}
    parts = {"default": lambda: detection_default(args, out),
             "unseen": lambda: detection_unseen(args), "kernel": lambda: kernel_extraction(args)}
    for part in args.parts.split(","):
        t0 = time.perf_counter()
        summary[part] = parts[part]()
        summary.setdefault("seconds", {})[part] = time.perf_counter() - t0
        summary.setdefault("machine", {})[part] = machine()
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if not all(p in summary for p in parts):
        return 0
    table = markdown(summary)
    (out / "summary.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("CI", "true")  # no progress bars from the subprocesses
    raise SystemExit(main())
