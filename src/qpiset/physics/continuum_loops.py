"""The compiled loop of the continuum tables (:func:`.continuum.continuum_ldos_grid`):
numba, loaded only when a table is made (``import qpiset`` stays light)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["combine_rows"]


@numba.njit(cache=True, parallel=True, boundscheck=False)
def combine_rows(first, count, fy, h_left, h_right, same, tmat, out):  # pragma: no cover - jit
    """``out[j, i] = -(1/pi) Im sum_kl u_k T_kl v_l`` with ``u[i, k] = sum_q fy[j, q]
    h_left[first[j] + q, i, k]`` (and ``v`` from ``h_right``, or ``u`` when ``same``):
    one table row ``j`` per iteration, over the ``count[j]`` rows of sites that reach it."""
    ny, nx = out.shape
    n_k = h_left.shape[2]
    for j in numba.prange(ny):
        u = np.zeros((nx, n_k), dtype=np.complex128)
        v = u if same else np.zeros((nx, n_k), dtype=np.complex128)
        for q in range(count[j]):
            r = first[j] + q
            f = fy[j, q]
            for i in range(nx):
                for k in range(n_k):
                    u[i, k] += f * h_left[r, i, k]
            if not same:
                for i in range(nx):
                    for k in range(n_k):
                        v[i, k] += f * h_right[r, i, k]
        for i in range(nx):
            acc = 0.0
            for k in range(n_k):
                for m in range(n_k):
                    acc += (u[i, k] * tmat[k, m] * v[i, m]).imag
            out[j, i] = -acc / np.pi
