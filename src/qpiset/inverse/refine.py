"""Continuous refinement: non-linear least squares for positions, strengths and background.

Levenberg-Marquardt on the normal equations (``J^T J`` by BLAS, a few hundred parameters,
a few thousand pixels). For this shape that is several times faster than MINPACK's
QR-based ``scipy.optimize.least_squares(method="lm")``, which is why it is written here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import dsyrk, ssyrk
from scipy.linalg.lapack import dposv, dpotrf, dpotri


__all__ = ["Fit", "refine"]


@dataclass
class Fit:
    positions: np.ndarray  # (k, 2) Å
    strengths: np.ndarray  # (k,)
    background: float
    rss: float  # residual sum of squares
    iterations: int
    stderr: np.ndarray | None = None  # (k, 3) standard errors of x, y, s at unit noise (cache)


def refine(model, image: np.ndarray, positions: np.ndarray, strengths: np.ndarray,
           background: float = 0.0, *, max_iter: int = 40,
           rtol: float = 1e-10, xtol: float = 0.0, fit_background: bool = True,
           nonneg: bool = True, prior: tuple | None = None) -> Fit:
    """Least-squares fit of ``b + sum_i s_i K(r - r_i)`` to ``image`` (flattened ``[iy, ix]``)
    with the fitting model of a forward operator ``model`` (or its window).

    Stops when an accepted step lowers the cost by less than ``rtol`` (relative) or moves
    no position by more than ``xtol`` (Å). ``nonneg`` keeps strengths >= 0 (projected
    Levenberg-Marquardt steps). ``prior = (indices, mean, weight)`` adds the Gaussian
    penalty ``weight * sum((s[indices] - mean)²)`` to the cost (a MAP fit; ``weight`` =
    noise variance / prior variance); the returned ``rss`` is the data term alone.
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
    # single precision Jacobian: each step is only a proposal, accepted or refused on the
    # float64 residual, so convergence and the final fit keep double precision
    J = np.empty((len(y), npar), np.float32)
    if fit_background:
        J[:, -1] = 1.0

    def evaluate(pos, s, b, jac=True):
        f = model.image_and_jacobian(pos, s, out=J)[0] if jac else model.image(pos, s)
        return y - f - b

    if prior is None:
        idx, mean, weight = np.zeros(0, int), 0.0, 0.0
    else:
        idx, mean, weight = np.asarray(prior[0], int).reshape(-1), float(prior[1]), float(prior[2])

    def penalty(s):
        return weight * float(np.sum((s[idx] - mean) ** 2))

    r = evaluate(pos, s, b)
    cost = float(r @ r) + penalty(s)
    mu, nu = 1e-3, 2.0
    it = 0
    for it in range(1, max_iter + 1):
        A = _gram(J)
        g = (J.T @ r.astype(np.float32)).astype(np.float64)
        A[3 * idx + 2, 3 * idx + 2] += weight
        g[3 * idx + 2] += weight * (mean - s[idx])
        diag = np.diag(A).copy()
        diag[diag <= 0] = 1.0
        improved = False
        for _ in range(12):
            M = A.copy()
            M[np.diag_indices_from(M)] += mu * diag
            try:
                delta = _solve(M, g)
            except np.linalg.LinAlgError:
                mu *= 10  # singular or ill-conditioned: damp harder instead
                continue
            d = delta[: 3 * k].reshape(k, 3)
            npos, ns = pos + d[:, :2], s + d[:, 2]
            if nonneg:
                ns = np.maximum(ns, 0.0)  # projected step: strengths stay >= 0
            nb = b + (delta[-1] if fit_background else 0.0)
            nr = evaluate(npos, ns, nb, jac=False)
            ncost = float(nr @ nr) + penalty(ns)
            if ncost < cost:
                improved = True
                break
            mu *= nu  # Nielsen's damping update (Madsen, Nielsen & Tingleff 2004, eq. 3.16)
            nu *= 2
        if not improved:
            break
        # gain ratio: actual over predicted decrease of the cost (predicted by the step)
        predicted = float(delta @ (mu * diag * delta + g))
        rho = (cost - ncost) / max(predicted, 1e-300)
        mu, nu = max(mu * max(1 / 3, 1 - (2 * rho - 1) ** 3), 1e-9), 2.0
        rel = (cost - ncost) / max(cost, 1e-300)
        moved = float(np.max(np.abs(npos - pos)))
        pos, s, b, cost = npos, ns, nb, ncost
        if rel < rtol or moved < xtol:
            break
        r = evaluate(pos, s, b)
    return Fit(pos, s, b, cost - penalty(s), it)


def _solve(M: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve the damped normal equations (symmetric positive definite) by Cholesky."""
    if len(M) < 64:  # local updates: numpy's call overhead is several times smaller
        delta = np.linalg.solve(M, g)
    else:  # LAPACK's positive-definite solver directly: scipy's wrappers cost more than it
        _, delta, info = dposv(M, g, lower=0, overwrite_a=1, overwrite_b=0)
        if info != 0:
            raise np.linalg.LinAlgError(f"dposv info {info}")
    if not np.all(np.isfinite(delta)):
        raise np.linalg.LinAlgError("non-finite step")
    return delta


def _gram(J: np.ndarray) -> np.ndarray:
    """``J^T J`` (float64) of a float32 Jacobian, by a symmetric rank-k update for the big
    ones (half the work of a general product)."""
    if J.shape[1] < 64:
        return (J.T @ J).astype(np.float64)
    upper = ssyrk(1.0, J.T, trans=0).astype(np.float64)  # J.T of a C array is Fortran-ordered
    return np.triu(upper) + np.triu(upper, 1).T


def standard_errors(model, fit: Fit, noise: float) -> np.ndarray:
    """``(k, 3)`` standard errors of ``x, y, s`` for white noise of std ``noise``
    (the diagonal of ``noise² (J^T J)^-1``, background included in ``J``)."""
    k = len(fit.positions)
    if k == 0:
        return np.zeros((0, 3))
    J = np.empty((model.npix, 3 * k + 1))  # double precision: near-degenerate pairs
    J[:, -1] = 1.0                          # make a single-precision J^T J indefinite
    model.image_and_jacobian(fit.positions, fit.strengths, out=J)
    A = dsyrk(1.0, J.T, trans=0)  # the upper triangle of J^T J, all that Cholesky reads
    A[np.diag_indices_from(A)] += 1e-12 * np.trace(A) / len(A)
    c, info = dpotrf(A, lower=0, clean=0, overwrite_a=1)
    if info == 0:
        c, info = dpotri(c, lower=0)  # upper triangle of A^-1 from its Cholesky factor
    if info != 0:
        return np.full((k, 3), np.inf)
    var = np.clip(np.diag(c)[: 3 * k], 0, None)
    return noise * np.sqrt(var).reshape(k, 3)
