"""Metrics and the benchmark protocol (knows nothing of how methods work inside).

Detection is scored by one-to-one matching (Hungarian algorithm on distances, pairs
farther apart than the tolerance are not matched): precision, recall, F1, localisation
RMSE over matched pairs, count error. Reconstruction: re-synthesise the image from the
detections and compare (NMSE, PSNR). Kernels: NMSE after the best scale (and sign).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["match", "DetectionScore", "score_detections", "nmse", "psnr", "kernel_nmse",
           "aggregate", "BANDS", "run_benchmark", "markdown_table", "reconstruct",
           "summarize_records", "oracle_positions", "REFERENCES"]


def match(truth: np.ndarray, pred: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i_truth, i_pred)`` of a minimum-total-distance one-to-one matching whose
    distances are <= ``tol`` (Å).

    Examples
    --------
    >>> t = np.array([[0.0, 0.0], [5.0, 0.0]])
    >>> p = np.array([[5.2, 0.0], [9.0, 9.0]])
    >>> match(t, p, 1.5)
    (array([1]), array([0]))
    """
    truth = np.asarray(truth, float).reshape(-1, 2)
    pred = np.asarray(pred, float).reshape(-1, 2)
    if len(truth) == 0 or len(pred) == 0:
        return np.zeros(0, int), np.zeros(0, int)
    d = np.hypot(truth[:, None, 0] - pred[None, :, 0], truth[:, None, 1] - pred[None, :, 1])
    big = 1e6 + d.max()
    cost = np.where(d <= tol, d, big)  # out-of-tolerance pairs are never preferred
    rows, cols = linear_sum_assignment(cost)
    ok = d[rows, cols] <= tol
    return rows[ok], cols[ok]


@dataclass
class DetectionScore:
    """Counts and errors for one image (sum them with :func:`aggregate`)."""

    n_true: int
    n_pred: int
    tp: int
    sq_err: float  # sum of squared distances of matched pairs (Å²)

    @property
    def precision(self) -> float:
        return self.tp / self.n_pred if self.n_pred else (1.0 if self.n_true == 0 else 0.0)

    @property
    def recall(self) -> float:
        return self.tp / self.n_true if self.n_true else 1.0

    @property
    def f1(self) -> float:
        denom = self.n_true + self.n_pred
        return 2 * self.tp / denom if denom else 1.0

    @property
    def rmse(self) -> float:
        return float(np.sqrt(self.sq_err / self.tp)) if self.tp else float("nan")

    @property
    def count_error(self) -> int:
        return self.n_pred - self.n_true


def score_detections(truth, pred, tol: float = 1.5) -> DetectionScore:
    """Score one image's predicted positions against the truth (tolerance in Å).

    Examples
    --------
    >>> s = score_detections([[0, 0], [10, 0]], [[0.1, 0], [30, 30]])
    >>> s.tp, s.precision, s.recall, round(s.rmse, 3)
    (1, 0.5, 0.5, 0.1)
    """
    truth = np.asarray(truth, float).reshape(-1, 2)
    pred = np.asarray(pred, float).reshape(-1, 2)
    i, j = match(truth, pred, tol)
    sq = float(np.sum((truth[i] - pred[j]) ** 2))
    return DetectionScore(len(truth), len(pred), len(i), sq)


def aggregate(scores) -> DetectionScore:
    """Micro-average: sum the counts of several images."""
    scores = list(scores)
    return DetectionScore(sum(s.n_true for s in scores), sum(s.n_pred for s in scores),
                          sum(s.tp for s in scores), sum(s.sq_err for s in scores))


def nmse(estimate: np.ndarray, truth: np.ndarray) -> float:
    """``||estimate - truth||² / ||truth||²``."""
    truth = np.asarray(truth, float)
    return float(np.sum((np.asarray(estimate, float) - truth) ** 2) / max(np.sum(truth**2), 1e-300))


def psnr(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, the peak being ``max|truth|``."""
    truth = np.asarray(truth, float)
    mse = float(np.mean((np.asarray(estimate, float) - truth) ** 2))
    peak = float(np.max(np.abs(truth)))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def kernel_nmse(estimate: np.ndarray, truth: np.ndarray) -> float:
    """NMSE after the best scale ``c`` (any sign): ``min_c ||c e - t||² / ||t||²``."""
    e = np.asarray(estimate, float).ravel()
    t = np.asarray(truth, float).ravel()
    ee = float(e @ e)
    c = float(e @ t) / ee if ee > 0 else 0.0
    return nmse(c * e, t)


# ----------------------------------------------------------------------------- protocol

#: Scatterer-count bands of the report.
BANDS = ((1, 10), (11, 50), (51, 100))


def _band_name(lo: int, hi: int) -> str:
    return f"{lo}-{hi}"


def reconstruct(model, image: np.ndarray, positions: np.ndarray):
    """Re-synthesise ``image`` from detected positions: strengths and a constant
    background by linear least squares, then ``b + sum s_i K``. Returns the image."""
    pos = np.asarray(positions, float).reshape(-1, 2)
    y = np.asarray(image, float).ravel()
    _, J = model.image_and_jacobian(pos, np.ones(len(pos)))
    A = np.column_stack([np.ones_like(y), J[:, 2::3]])  # d/ds_i = K(r - r_i)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return (A @ coef).reshape(np.shape(image))


REFERENCES = ("oracle",)


def oracle_positions(model, image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The **oracle** reference: a least-squares fit of ``model`` started at the true
    positions, with the true count and least-squares strengths.

    It uses the truth, so it is not a detector: it shows how many scatterers the image's
    information can place within the tolerance even when detection and counting are
    perfect (at high noise in crowded images, fewer than one might hope).
    """
    from .inverse.refine import refine

    truth = np.asarray(truth, float).reshape(-1, 2)
    y = np.asarray(image, float).ravel()
    if len(truth) == 0:
        return truth
    _, J = model.image_and_jacobian(truth, np.ones(len(truth)))
    A = np.column_stack([np.ones_like(y), J[:, 2::3]])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    fit = refine(model, y, truth, np.maximum(coef[1:], 0.0), coef[0], rtol=1e-6, max_iter=30)
    return fit.positions


def summarize_records(records: list[dict]) -> dict:
    """Micro-averaged scores of per-image records (see :func:`run_benchmark`)."""
    if not records:
        return {"images": 0}
    agg = aggregate(DetectionScore(r["n_true"], r["n_pred"], r["tp"], r["sq_err"]) for r in records)
    times = np.array([r["seconds"] for r in records])
    return {
        "images": len(records),
        "precision": agg.precision, "recall": agg.recall, "f1": agg.f1, "rmse": agg.rmse,
        "count_error_mean": float(np.mean([r["n_pred"] - r["n_true"] for r in records])),
        "count_error_abs": float(np.mean([abs(r["n_pred"] - r["n_true"]) for r in records])),
        "nmse": float(np.mean([r["nmse"] for r in records])),
        "psnr": float(np.mean([r["psnr"] for r in records])),
        "seconds_median": float(np.median(times)), "seconds_mean": float(np.mean(times)),
    }


def run_benchmark(ds, methods=("matched", "sparse"), *, tol: float = 1.5, kernel=None,
                  predictions: dict | None = None, limit: int | None = None,
                  on_image=None, weights=None) -> dict:
    """Run detectors on every image of ``ds`` and score them against its positions.

    Parameters
    ----------
    ds : Dataset
        Images with true positions (the file's coordinates).
    methods : sequence of str
        Detector names (:data:`qpiset.methods.DETECTOR_NAMES`: classical, and learned
        when the ``ml`` extra is installed), or ``"oracle"``
        (:func:`oracle_positions`, marked ``"uses_truth": true`` in the output).
    tol : float
        Matching tolerance in Å.
    kernel : Kernel, optional
        Physics model to use instead of the kernel row.
    predictions : dict, optional
        ``{name: list of (k, 2) arrays}``: someone's own detections, scored the same way.
    limit : int, optional
        Only the first ``limit`` images.
    weights : path, optional
        Checkpoint of the learned detectors (default: the shipped weights).

    Returns
    -------
    dict
        ``{"config": ..., "methods": {name: {"overall": ..., "bands": {...}, "images": [...]}}}``
    """
    import time

    from .inverse import file_kernel
    from .inverse.model import PixelModel
    from .methods import LEARNED, make_method
    from .synth import kernel_image

    n = ds.n_images if limit is None else min(limit, ds.n_images)
    model_kernel = kernel or file_kernel(ds.kernel, ds.grid)
    model = PixelModel(model_kernel, ds.grid)
    runs = {}
    for name in methods:
        if name == "oracle":
            runs[name] = lambda i: oracle_positions(model, ds.images[i], ds.positions[i])
            continue
        row = ds.kernel if kernel is None else kernel_image(kernel, ds.grid)
        detector = make_method(name, model_kernel, ds.grid, row, weights=weights)
        runs[name] = lambda i, d=detector: d(ds.images[i])
    for name, preds in (predictions or {}).items():
        if len(preds) < n:
            raise ValueError(f"predictions {name!r} have {len(preds)} images, the file {n}")
        runs[name] = lambda i, p=preds: np.asarray(p[i], float).reshape(-1, 2)
    out = {"config": {"tol": tol, "images": n, "resolution": ds.grid.resolution,
                      "fov": ds.grid.fov, "kernel": model_kernel.params(),
                      "bands": [_band_name(*b) for b in BANDS]},
           "methods": {}}
    for name, run in runs.items():
        records = []
        for i in range(n):
            t0 = time.perf_counter()
            found = run(i)
            seconds = time.perf_counter() - t0
            score = score_detections(ds.positions[i], found, tol)
            recon = reconstruct(model, ds.images[i], found)
            records.append({"image": i, "n_true": score.n_true, "n_pred": score.n_pred,
                            "tp": score.tp, "sq_err": score.sq_err, "seconds": seconds,
                            "nmse": nmse(recon, ds.images[i]), "psnr": psnr(recon, ds.images[i]),
                            "positions": np.asarray(found).tolist()})
            if on_image:
                on_image(1)
        bands = {}
        for lo, hi in BANDS:
            sel = [r for r in records if lo <= r["n_true"] <= hi]
            bands[_band_name(lo, hi)] = summarize_records(sel)
        out["methods"][name] = {"overall": summarize_records(records), "bands": bands,
                                "uses_truth": name in REFERENCES, "learned": name in LEARNED,
                                "images": records}
    return out


def markdown_table(results: dict) -> str:
    """The benchmark as a Markdown table: one row per method and count band."""
    lines = [
        f"Matching tolerance {results['config']['tol']} Å, {results['config']['images']} images.",
        "",
        "| method | scatterers | images | precision | recall | F1 | RMSE (Å) | mean count error "
        "| image NMSE | PSNR (dB) | median s/image |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in results["methods"].items():
        for band, s in list(res["bands"].items()) + [("all", res["overall"])]:
            if not s.get("images"):
                continue
            label = f"{name} (uses the truth)" if res.get("uses_truth") else name
            lines.append(
                f"| {label} | {band} | {s['images']} | {s['precision']:.3f} | {s['recall']:.3f} "
                f"| {s['f1']:.3f} | {s['rmse']:.3f} | {s['count_error_mean']:+.2f} "
                f"| {s['nmse']:.2e} | {s['psnr']:.1f} | {s['seconds_median']:.3f} |")
    return "\n".join(lines) + "\n"
