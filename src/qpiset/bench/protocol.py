"""The benchmark protocol: run detectors on a file's images, score them against its
positions by count band, and report (``qpiset bench``).

Besides the detectors, the ``oracle`` reference (:func:`oracle_positions`) shows what the
images' information allows: a fit started at the true positions. Reconstruction scores
re-synthesise each image from the detections (:func:`reconstruct`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..inverse import (DETECTORS, calibrated_operator, detect_images, file_operator,
                       make_detector, worker_count)
from ..inverse.refine import refine
from ..io import Predictions, atomic_output, head, write_json
from .metrics import DetectionScore, aggregate, nmse, psnr, score_detections

__all__ = ["BANDS", "band_name", "reconstruct", "oracle_positions", "REFERENCES",
           "summarize_records", "run_benchmark", "markdown_table", "save_results",
           "coverage_notes", "calibration_note"]


#: Scatterer-count bands of the report.
BANDS = ((1, 10), (11, 50), (51, 100))


def band_name(lo: int, hi: int) -> str:
    """The label of a count band, ``"lo-hi"``."""
    return f"{lo}-{hi}"


def reconstruct(op, image: np.ndarray, positions: np.ndarray):
    """Re-synthesise ``image`` from detected positions: strengths and a constant
    background by linear least squares, then ``b + sum s_i K`` (the forward operator
    ``op``). Returns the image."""
    return op.least_squares(image, positions).fitted


REFERENCES = ("oracle",)


def oracle_positions(op, image: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The **oracle** reference: a least-squares fit of ``model`` started at the true
    positions, with the true count and least-squares strengths.

    It uses the truth, so it is not a detector: it shows how many scatterers the image's
    information can place within the tolerance even when detection and counting are
    perfect (at high noise in crowded images, fewer than one might hope).
    """
    truth = np.asarray(truth, float).reshape(-1, 2)
    y = np.asarray(image, float).ravel()
    if len(truth) == 0:
        return truth
    start = op.least_squares(y, truth)
    fit = refine(op, y, truth, np.maximum(start.strengths, 0.0), start.background, rtol=1e-6,
                 max_iter=30)
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


def _covered(preds, n: int) -> dict[int, np.ndarray]:
    """``{image: positions}`` of someone's predictions among images ``0 .. n - 1``: a
    :class:`~qpiset.io.Predictions` (any subset), a dict ``{image: positions}``, or a list
    (images ``0 .. len - 1``)."""
    if isinstance(preds, Predictions):
        pairs = zip(preds.images, preds.positions)
    elif isinstance(preds, dict):
        pairs = preds.items()
    else:
        pairs = enumerate(preds)
    return {int(i): np.asarray(p, float).reshape(-1, 2) for i, p in pairs if 0 <= int(i) < n}


def run_benchmark(ds, methods=("matched", "sparse"), *, tol: float = 1.5, kernel=None,
                  predictions: dict | None = None, limit: int | None = None,
                  on_image=None, weights=None, calibrate: str = "auto",
                  on_calibration_step=None, workers: int = 1) -> dict:
    """Run detectors on every image of ``ds`` and score them against its positions.

    Parameters
    ----------
    ds : Dataset
        Images with true positions (the file's coordinates); a file opened lazily
        (:func:`qpiset.io.open_dataset`) is read image by image, no further than
        ``limit``.
    methods : sequence of str
        Detector names (:data:`qpiset.inverse.DETECTORS`: classical, and learned when the
        ``ml`` extra is installed), or ``"oracle"`` (:func:`oracle_positions`, marked
        ``"uses_truth": true`` in the output).
    tol : float
        Matching tolerance in Å.
    kernel : Kernel, optional
        Physics model to use instead of the kernel row.
    predictions : dict, optional
        ``{name: detections}``: someone's own detections, scored the same way; each a
        :class:`~qpiset.io.Predictions` (``qpiset.io.load_predictions``), a dict ``{image:
        (k, 2) array}`` or a list of ``(k, 2)`` arrays for images ``0, 1, ...``. Only the
        images they cover are scored (``"scored"`` in the output says how many).
    limit : int, optional
        Only the first ``limit`` images.
    weights : path, optional
        Checkpoint of the learned detectors (default: the shipped weights).
    calibrate : {"auto", "on", "off"}
        Self-calibration of the row's kernel before any method runs
        (:func:`~qpiset.inverse.calibrated_operator`; not with ``kernel``); every method and
        the oracle then use the calibrated operator. Its time is recorded apart
        (``config["calibration"]["seconds"]``), not in the methods' seconds per image.
    on_calibration_step : callable, optional
        Called with 1 after each calibration step (a progress bar).
    workers : int
        Processes that fit images side by side (:func:`~qpiset.inverse.detect_images`;
        the classical detectors: :func:`~qpiset.inverse.worker_count`); the detections do
        not depend on it. Each image's seconds are its own fit's; a
        method's ``wall_seconds`` is the time for all its images.

    Returns
    -------
    dict
        ``{"config": ..., "methods": {name: {"overall": ..., "bands": {...}, "images": [...],
        "scored": {"images": k, "of": n}}}}``
    """
    ds = head(ds, limit)
    n = ds.n_images
    op = file_operator(ds.kernel, ds.grid, kernel)
    fitted = [m for m in methods if m == "oracle" or (m in DETECTORS and DETECTORS[m].fits_kernel)]
    calibration = None
    if kernel is None and fitted and calibrate != "off":
        calibration = calibrated_operator(ds.images, op, calibrate,
                                          on_step=on_calibration_step)
        op = calibration.op
    runs = {}
    for name in methods:
        if name == "oracle":
            runs[name] = _timed(range(n), lambda i: oracle_positions(op, ds.images[i],
                                                                     ds.positions[i]))
            continue
        detector = make_detector(name, weights=weights)
        detector.detect(np.empty((0,) + ds.grid.shape), op)  # set up for op, untimed
        fits = detect_images(detector, (ds.images[i] for i in range(n)), op,
                             worker_count(name, workers))
        runs[name] = ((i, d.positions[0], t) for i, (d, t) in enumerate(fits))
    for name, preds in (predictions or {}).items():
        found = _covered(preds, n)
        runs[name] = _timed(sorted(found), lambda i, p=found: p[i])
    out = {"config": {"tol": tol, "images": n, "resolution": ds.grid.resolution,
                      "fov": ds.grid.fov, "kernel": op.kernel.describe(),
                      "calibration": None if calibration is None else calibration.record(),
                      "workers": workers, "bands": [band_name(*b) for b in BANDS]},
           "methods": {}}
    for name, run in runs.items():
        records = []
        t_start = time.perf_counter()
        for i, found, seconds in run:
            image, truth = ds.images[i], ds.positions[i]
            score = score_detections(truth, found, tol)
            recon = reconstruct(op, image, found)
            records.append({"image": i, "n_true": score.n_true, "n_pred": score.n_pred,
                            "tp": score.tp, "sq_err": score.sq_err, "seconds": seconds,
                            "nmse": nmse(recon, image), "psnr": psnr(recon, image),
                            "positions": np.asarray(found).tolist()})
            if on_image:
                on_image(1)
        bands = {}
        for lo, hi in BANDS:
            sel = [r for r in records if lo <= r["n_true"] <= hi]
            bands[band_name(lo, hi)] = summarize_records(sel)
        learned = name in DETECTORS and DETECTORS[name].learned
        wall = time.perf_counter() - t_start
        out["methods"][name] = {"overall": summarize_records(records), "bands": bands,
                                "wall_seconds": wall,  # all its images, scoring included
                                "uses_truth": name in REFERENCES, "learned": learned,
                                "images": records, "scored": {"images": len(records), "of": n}}
    return out


def _timed(indices, run):
    """``(i, run(i), seconds)`` for each index, timed here."""
    for i in indices:
        t0 = time.perf_counter()
        found = run(i)
        yield i, found, time.perf_counter() - t0


def coverage_notes(results: dict) -> list[str]:
    """One line for each method scored on fewer images than the benchmark has (someone's
    predictions that cover only some of them)."""
    notes = []
    for name, res in results.get("methods", {}).items():
        scored = res.get("scored") or {}
        if scored.get("images", 0) < scored.get("of", 0):
            notes.append(f"{name}: the predictions cover {scored['images']} of the "
                         f"{scored['of']} images; only those are scored")
    return notes


def calibration_note(record: dict) -> str:
    """One line on what self-calibration did (a ``config["calibration"]`` record)."""
    if record.get("applied"):
        changes = ", ".join(f"{c:.1%}" for c in record["changes"])
        return (f"Kernel: self-calibrated on {record['images']} images ({record['rounds']} "
                f"rounds, changes {changes}; {record['seconds']:.0f} s, not in the times "
                "below).")
    return f"Kernel: the kernel row as it is ({record.get('skipped')})."


def markdown_table(results: dict) -> str:
    """The benchmark as a Markdown table: one row per method and count band."""
    lines = [
        f"Matching tolerance {results['config']['tol']} Å, {results['config']['images']} images.",
        *(f"Note: {line}." for line in coverage_notes(results)),
        *([calibration_note(results["config"]["calibration"])]
          if results["config"].get("calibration") else []),
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


def save_results(path, results: dict) -> Path:
    """Write benchmark ``results`` to ``path`` (JSON) and the Markdown table beside it
    (same name, ``.md``), both atomically; returns the table's path."""
    write_json(path, results)
    md = Path(path).with_suffix(".md")
    with atomic_output(md, compress=False) as f:
        f.write(markdown_table(results).encode())
    return md
