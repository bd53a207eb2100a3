"""Metrics (they know nothing of how methods work inside, and import only numpy/scipy).

Detection is scored by one-to-one matching (Hungarian algorithm on distances, pairs
farther apart than the tolerance are not matched): precision, recall, F1, localisation
RMSE over matched pairs, count error. Images: NMSE and PSNR. Kernels: NMSE after the best
scale (and sign).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["match", "DetectionScore", "score_detections", "nmse", "psnr", "kernel_nmse",
           "aggregate"]


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
