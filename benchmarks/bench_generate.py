"""Generation speed: qpiset's compiled renderer against the straightforward scipy way.

Workload: 64 x 64 images of a 100 Å field of view (``Grid(64, 100.0)``), 100 scatterers
per image at uniform random positions in [-50, 50]² Å, strength 1, kernel
``FriedelKernel("Cu(111)", energy=0.0)`` (tip_sigma = 1 Å).

Measured (all in one run, so only ratios are meaningful across machines):

* ours     ``qpiset.forward.Forward.render_batch`` with ``threads=1`` and with all numba threads,
           after one warm-up call (JIT load and the kernel's radial table).
* j0/y0    per scatterer, the whole pixel array at once with ``scipy.special.j0/y0``:
           ``Y0(kr)² - J0(kr)²`` with real ``k`` — the unitary scatterer WITHOUT tip
           broadening, i.e. a cheaper model than ours.
* hankel1  per scatterer, ``0.5 Re[(e^{2i delta} - 1) H0(kr)²]`` with complex ``k`` via
           ``scipy.special.hankel1`` (what a complex-k / finite-lifetime model needs).
* cap      only adding 100 precomputed 64 x 64 float32 patterns per image (``np.add``
           into an accumulator): a bound for any numpy method that must touch every
           pixel once per scatterer, even if the patterns cost nothing.

Accuracy: a few images are also computed exactly, ``sum_i kernel.evaluate(X - x_i, Y - y_i)``
(the kernel's own quadrature, no table), in worker processes; the reported error is
``max |render - exact| / max |exact|`` per image.

Run: ``python benchmarks/bench_generate.py [--images 2000] [--baseline-images 20] ...``
Writes ``benchmarks/results/generate.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of, machine, publish, table  # noqa: E402

RESOLUTION, FOV, SCATTERERS = 64, 100.0, 100
ACCURACY_LIMIT = 1e-3  # aim: max pixel error <= 1e-3 of the image peak
SPEED_AIM = 100.0  # aim: >= 100x the straightforward way


def make_positions(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    half = FOV / 2
    return [rng.uniform(-half, half, (SCATTERERS, 2)) for _ in range(n)]


# ----------------------------------------------------------------------------- baselines


def baseline_j0y0(positions, strengths, X, Y, k: float) -> np.ndarray:
    """Unbroadened unitary scatterer (delta = pi/2, real k): Y0(kr)² - J0(kr)²."""
    from scipy.special import j0, y0

    out = np.empty((len(positions),) + X.shape)
    for n, (p, s) in enumerate(zip(positions, strengths)):
        img = np.zeros(X.shape)
        for (x, y), a in zip(p, s):
            kr = k * np.hypot(X - x, Y - y)
            img += a * (y0(kr) ** 2 - j0(kr) ** 2)
        out[n] = img
    return out


def baseline_hankel1(positions, strengths, X, Y, k: complex, factor: complex) -> np.ndarray:
    """0.5 Re[(e^{2i delta} - 1) H0^(1)(k r)²] with complex k (no tip broadening)."""
    from scipy.special import hankel1

    out = np.empty((len(positions),) + X.shape)
    for n, (p, s) in enumerate(zip(positions, strengths)):
        img = np.zeros(X.shape)
        for (x, y), a in zip(p, s):
            h = hankel1(0, k * np.hypot(X - x, Y - y))
            img += a * 0.5 * np.real(factor * h * h)
        out[n] = img
    return out


def baseline_cap(n_images: int, patterns: np.ndarray) -> np.ndarray:
    """Add the (precomputed) patterns: the floor cost of touching every pixel per scatterer."""
    acc = np.empty(patterns.shape[1:], dtype=np.float32)
    for _ in range(n_images):
        acc.fill(0.0)
        for j in range(patterns.shape[0]):
            np.add(acc, patterns[j], out=acc)
    return acc


# ----------------------------------------------------------------------------- exact


def exact_image(kernel_params: dict, resolution: int, fov: float, positions: np.ndarray,
                chunk: int = 10) -> np.ndarray:
    """``sum_i K(X - x_i, Y - y_i)`` with the kernel's exact quadrature (slow)."""
    from qpiset.core import Grid
    from qpiset.physics import make_kernel

    kernel = make_kernel(**kernel_params)
    X, Y = Grid(resolution, fov).meshgrid()
    img = np.zeros(X.shape)
    for s in range(0, len(positions), chunk):
        q = positions[s:s + chunk]
        dx = X[None] - q[:, 0, None, None]
        dy = Y[None] - q[:, 1, None, None]
        img += kernel.evaluate(dx, dy).sum(axis=0)
    return img


def _exact_job(args):
    return exact_image(*args)


def exact_images(kernel, grid, positions, workers: int) -> list[np.ndarray]:
    jobs = [(kernel.params(), grid.resolution, grid.fov, p) for p in positions]
    if workers <= 1:
        return [_exact_job(j) for j in jobs]
    ctx = multiprocessing.get_context("spawn")  # no fork after numba's threads started
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(pool.map(_exact_job, jobs))


# ----------------------------------------------------------------------------- main


def run(n_images: int = 2000, baseline_images: int = 20, cap_images: int = 500,
        accuracy_images: int = 5, repeats: int = 3, seed: int = 12345,
        workers: int | None = None, threads: list[int] | None = None,
        log=print) -> dict:
    import numba

    from qpiset.core import Grid
    from qpiset.forward import Forward
    from qpiset.physics import FriedelKernel

    kernel = FriedelKernel("Cu(111)", energy=0.0)
    grid = Grid(RESOLUTION, FOV)
    op = Forward(kernel, grid)

    def render_batch(kernel, grid, positions, strengths, threads=None):
        return op.render_batch(positions, strengths, threads=threads)

    X, Y = grid.meshgrid()
    positions = make_positions(max(n_images, baseline_images, accuracy_images), seed)
    strengths = [np.ones(SCATTERERS) for _ in positions]
    max_threads = numba.config.NUMBA_NUM_THREADS
    threads = sorted(set(threads or [1, max_threads]))

    # one-off cost for a new kernel: JIT (loaded from numba's cache after the first ever
    # run) + tabulating the kernel; the corner scatterer makes the table reach the
    # farthest any timed image can need, so timing never builds a new table
    corner = [np.array([[FOV / 2, -FOV / 2]])]
    t0 = time.perf_counter()
    render_batch(kernel, grid, corner + positions[:3], [np.ones(1)] + strengths[:3])
    setup = time.perf_counter() - t0
    for t in threads:  # warm every thread count once
        render_batch(kernel, grid, positions[:4], strengths[:4], threads=t)
    log(f"generate: setup (JIT load + kernel table) {setup:.2f} s")

    ours = {}
    batch, bstr = positions[:n_images], strengths[:n_images]
    for t in threads:
        c0, w0 = time.process_time(), time.perf_counter()
        sec, _ = best_of(lambda: render_batch(kernel, grid, batch, bstr, threads=t), repeats)
        cpus = (time.process_time() - c0) / (time.perf_counter() - w0)
        ours[t] = {"threads": t, "images": n_images, "seconds": sec,
                   "images_per_s": n_images / sec, "cpu_per_wall": cpus}
        log(f"generate: ours, {t} thread(s): {n_images / sec:,.0f} images/s "
            f"(busy CPUs {cpus:.2f})")
        if t > 1 and cpus < 0.75 * t:
            log(f"generate: WARNING: {t} threads kept only {cpus:.2f} CPUs busy "
                "(machine shared or throttled?); the multi-thread figure is pessimistic")

    bpos, bstr = positions[:baseline_images], strengths[:baseline_images]
    k = kernel.k
    sec_j, img_j = best_of(lambda: baseline_j0y0(bpos, bstr, X, Y, k.real), repeats)
    log(f"generate: j0/y0 baseline {baseline_images / sec_j:,.1f} images/s")
    sec_h, img_h = best_of(
        lambda: baseline_hankel1(bpos, bstr, X, Y, k, kernel.scattering_factor), repeats)
    log(f"generate: hankel1 baseline {baseline_images / sec_h:,.1f} images/s")
    # the two baselines are the same (unbroadened) model at gamma = 0: a formula check
    baselines_agree = float(np.max(np.abs(img_j - img_h)) / np.max(np.abs(img_h)))
    patterns = np.random.default_rng(seed + 1).standard_normal(
        (SCATTERERS, RESOLUTION, RESOLUTION)).astype(np.float32)
    sec_c, _ = best_of(lambda: baseline_cap(cap_images, patterns), repeats)
    log(f"generate: cap (adding 100 precomputed patterns) {cap_images / sec_c:,.0f} images/s")

    baselines = {
        "j0y0": {"images": baseline_images, "seconds": sec_j,
                 "images_per_s": baseline_images / sec_j,
                 "what": "per scatterer, Y0(kr)^2 - J0(kr)^2 over the pixel array, real k, "
                         "no tip broadening (cheaper model than ours)"},
        "hankel1": {"images": baseline_images, "seconds": sec_h,
                    "images_per_s": baseline_images / sec_h,
                    "what": "per scatterer, 0.5 Re[(exp(2i delta)-1) H0(kr)^2] over the pixel "
                            "array, complex k, no tip broadening"},
        "cap": {"images": cap_images, "seconds": sec_c, "images_per_s": cap_images / sec_c,
                "what": "np.add of 100 precomputed 64x64 float32 patterns per image"},
    }
    ratios = {f"{name}_threads{t}": ours[t]["images_per_s"] / b["images_per_s"]
              for name, b in baselines.items() for t in threads}

    # accuracy against exact evaluation
    apos = positions[:accuracy_images]
    workers = workers or min(accuracy_images, max(1, os.cpu_count() or 1))
    fast = render_batch(kernel, grid, apos, strengths[:accuracy_images])
    t0 = time.perf_counter()
    exact = exact_images(kernel, grid, apos, workers)
    sec_exact = time.perf_counter() - t0
    errors = [float(np.max(np.abs(f - e)) / np.max(np.abs(e))) for f, e in zip(fast, exact)]
    accuracy = {
        "images": accuracy_images, "scatterers": SCATTERERS,
        "max_rel_error": max(errors), "per_image": errors, "limit": ACCURACY_LIMIT,
        "pass": max(errors) <= ACCURACY_LIMIT,
        "exact_seconds": sec_exact, "exact_workers": workers,
        "exact_images_per_s": accuracy_images / sec_exact,
    }
    log(f"generate: accuracy max |render - exact| / max|exact| = {max(errors):.2e} "
        f"({accuracy_images} images, exact evaluation took {sec_exact:.1f} s on {workers} procs)")

    best = max(threads)
    aims = {
        f"speed_vs_{name}_threads{t}": {"ratio": ratios[f"{name}_threads{t}"],
                                          "aim": SPEED_AIM,
                                          "met": ratios[f"{name}_threads{t}"] >= SPEED_AIM}
        for name in ("j0y0", "hankel1") for t in threads
    }
    aims["accuracy"] = {"value": max(errors), "aim": ACCURACY_LIMIT, "met": accuracy["pass"]}

    record = {
        "benchmark": "generate",
        "machine": machine(),
        "config": {"resolution": RESOLUTION, "fov": FOV, "scatterers_per_image": SCATTERERS,
                   "kernel": kernel.params(), "images": n_images,
                   "baseline_images": baseline_images, "cap_images": cap_images,
                   "repeats": repeats, "seed": seed, "threads": threads},
        "setup_seconds": setup,
        "ours": {str(t): v for t, v in ours.items()},
        "baselines": baselines,
        "baselines_agree_rel": baselines_agree,
        "ratios": ratios,
        "accuracy": accuracy,
        "aims": aims,
        "best_threads": best,
    }
    return record


def _x(ratio: float) -> str:
    return f"{ratio:,.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def report(record: dict) -> str:
    rows = []
    for t, v in record["ours"].items():
        rows.append([f"qpiset render_batch, threads={t}", f"{v['images']}",
                     f"{v['seconds']:.3f}", f"{v['images_per_s']:,.1f}", "-"])
    ref = {t: v["images_per_s"] for t, v in record["ours"].items()}
    for name, b in record["baselines"].items():
        speed = ", ".join(f"{_x(ref[t] / b['images_per_s'])} (threads={t})" for t in ref)
        rows.append([f"baseline {name}", f"{b['images']}", f"{b['seconds']:.3f}",
                     f"{b['images_per_s']:,.1f}", speed])
    out = [table(rows, ["method", "images", "best s", "images/s", "ours is faster by"])]
    acc = record["accuracy"]
    out.append(f"accuracy: max |render - exact| / max|exact| = {acc['max_rel_error']:.2e} over "
               f"{acc['images']} images x {acc['scatterers']} scatterers "
               f"(limit {acc['limit']:g}: {'ok' if acc['pass'] else 'FAILED'})")
    out.append(f"one-off setup per kernel (JIT load + radial table): {record['setup_seconds']:.2f} s;"
               f" j0/y0 vs hankel1 baselines agree to {record['baselines_agree_rel']:.1e}")
    for name, a in record["aims"].items():
        v = a.get("ratio", a.get("value"))
        out.append(f"aim {name}: {v:.3g} vs {a['aim']:g} -> {'met' if a['met'] else 'MISSED'}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000, help="images for our renderer")
    ap.add_argument("--baseline-images", type=int, default=20)
    ap.add_argument("--cap-images", type=int, default=500)
    ap.add_argument("--accuracy-images", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    ap.add_argument("--workers", type=int, default=None, help="processes for exact evaluation")
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--out", type=Path, default=None, help="directory for generate.json")
    args = ap.parse_args(argv)
    record = run(args.images, args.baseline_images, args.cap_images, args.accuracy_images,
                 args.repeats, args.seed, args.workers)
    return publish("generate.json", record, report(record), args.out)


if __name__ == "__main__":
    main()
