"""Continuous refinement: non-linear least squares for positions, strengths and background.

Levenberg-Marquardt on the normal equations (``J^T J`` by BLAS, a few hundred parameters,
a few thousand pixels). For this shape that is several times faster than MINPACK's
QR-based ``scipy.optimize.least_squares(method="lm")``, which is why it is written here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg.blas import ssyrk

from .model import PixelModel

__all__ = ["Fit", "refine"]


@dataclass
class Fit:
    positions: np.ndarray  # (k, 2) Å
    strengths: np.ndarray  # (k,)
    background: float
    rss: float  # residual sum of squares
    iterations: int
    stderr: np.ndarray | None = None  # (k, 3) standard errors of x, y, s (given a noise level)


def refine(model: PixelModel, image: np.ndarray, positions: np.ndarray, strengths: np.ndarray,
           background: float = 0.0, *, max_iter: int = 40,
           rtol: float = 1e-10, fit_background: bool = True, nonneg: bool = True) -> Fit:
    """Least-squares fit of ``b + sum_i s_i K(r - r_i)`` to ``image`` (flattened ``[iy, ix]``).

    ``nonneg`` keeps strengths >= 0 (projected Levenberg-Marquardt steps).
    """
    y = np.asarray(image, dtype=float).ravel()
    pos = np.array(positions, dtype=float).reshape(-1, 2)
    s = np.array(strengths, dtype=float).reshape(-1)
    k = len(pos)
    b = float(background)
    if k == 0:
        b = float(y.mean()) if fit_background else b
        return Fit(pos, s, b, float(np.sum((y - b) ** 2)), 0)
    npar = 3 * k + (1 if fit_background else 0)
    J = np.empty((len(y), npar))

    def evaluate(pos, s, b, jac=True):
        if jac:
            f, Jm = model.image_and_jacobian(pos, s)
            J[:, : 3 * k] = Jm
            if fit_background:
                J[:, -1] = 1.0
        else:
            f = model.image(pos, s)
        return y - f - b

    r = evaluate(pos, s, b)
    cost = float(r @ r)
    mu = 1e-3
    it = 0
    for it in range(1, max_iter + 1):
        A = _gram(J)
        g = J.T @ r
        diag = np.diag(A).copy()
        diag[diag <= 0] = 1.0
        improved = False
        for _ in range(12):
            M = A.copy()
            M[np.diag_indices_from(M)] += mu * diag
            try:
                delta = _solve(M, g)
            except (np.linalg.LinAlgError, scipy.linalg.LinAlgError,
                    scipy.linalg.LinAlgWarning):
                mu *= 10  # singular or ill-conditioned: damp harder instead
                continue
            d = delta[: 3 * k].reshape(k, 3)
            npos, ns = pos + d[:, :2], s + d[:, 2]
            if nonneg:
                ns = np.maximum(ns, 0.0)  # projected step: strengths stay >= 0
            nb = b + (delta[-1] if fit_background else 0.0)
            nr = evaluate(npos, ns, nb, jac=False)
            ncost = float(nr @ nr)
            if ncost < cost:
                improved = True
                break
            mu *= 8
        if not improved:
            break
        rel = (cost - ncost) / max(cost, 1e-300)
        pos, s, b, cost = npos, ns, nb, ncost
        mu = max(mu / 5, 1e-9)
        if rel < rtol:
            break
        r = evaluate(pos, s, b)
    return Fit(pos, s, b, cost, it)


def _solve(M: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve the damped normal equations (symmetric positive definite)."""
    if len(M) < 64:  # local updates: numpy's call overhead is several times smaller
        delta = np.linalg.solve(M, g)
        if not np.all(np.isfinite(delta)):
            raise np.linalg.LinAlgError("non-finite step")
        return delta
    with warnings.catch_warnings():
        warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
        return scipy.linalg.solve(M, g, assume_a="pos", check_finite=False)


def _gram(J: np.ndarray) -> np.ndarray:
    """``J^T J`` by a symmetric rank-k update (half the work of a general product)."""
    if J.shape[1] < 64:
        return J.T @ J
    # single precision for the big products: twice as fast, and the step it gives is only
    # a proposal (accepted on the float64 residual), so convergence is unaffected
    upper = ssyrk(1.0, J.T.astype(np.float32, order="F"), trans=0).astype(np.float64)
    return np.triu(upper) + np.triu(upper, 1).T


def standard_errors(model: PixelModel, fit: Fit, noise: float) -> np.ndarray:
    """``(k, 3)`` standard errors of ``x, y, s`` for white noise of std ``noise``."""
    k = len(fit.positions)
    if k == 0:
        return np.zeros((0, 3))
    _, J = model.image_and_jacobian(fit.positions, fit.strengths)
    J = np.hstack([J, np.ones((J.shape[0], 1))])
    A = J.T @ J
    try:
        cov = np.linalg.inv(A + 1e-12 * np.trace(A) / len(A) * np.eye(len(A)))
    except np.linalg.LinAlgError:
        return np.full((k, 3), np.inf)
    var = np.clip(np.diag(cov)[: 3 * k], 0, None)
    return noise * np.sqrt(var).reshape(k, 3)
