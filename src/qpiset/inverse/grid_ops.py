"""Convolution operators from a grid of candidate positions to the image, by FFT.

Candidates sit on a grid ``oversample`` times finer than the pixels, extending ``margin``
pixels beyond the field. Each of the ``oversample²`` sub-grids (phases) is a plain 2D
convolution of its activations with the kernel sampled at that phase's sub-pixel offset.
"""

from __future__ import annotations

import numpy as np
import scipy.fft


__all__ = ["CandidateGrid"]


class CandidateGrid:
    """Linear operator ``A``: activations ``(o, o, C, C)`` -> image ``(R, R)`` ``[iy, ix]``,
    for the kernel of a forward operator ``model`` (:class:`~qpiset.forward.Forward`).

    Candidate ``(phy, phx, Jy, Jx)`` sits at ``x0 + (J - margin + ph/o) * pitch``.
    """

    def __init__(self, model, oversample: int = 2, margin: int = 3) -> None:
        grid = model.grid
        self.model = model
        self.o = int(oversample)
        self.m = int(margin)
        self.R = grid.resolution
        self.C = self.R + 2 * self.m
        self.U0 = self.R - 1 + self.m
        # circular convolution of length L is exact where it is read: the kernel's offsets
        # run over [0, 2 U0] and a pixel's or candidate's over [0, lo + R) = [0, 2 U0 + 1),
        # so no sum wraps once L > 2 U0 (not the 2 U0 + C of a full linear convolution)
        self.L = scipy.fft.next_fast_len(2 * self.U0 + 1, real=True)
        self.pitch = grid.pitch
        self.x0 = float(grid.x[0])
        u = np.arange(2 * self.U0 + 1) - self.U0
        spectra = np.empty((self.o, self.o, self.L, self.L // 2 + 1), dtype=np.complex128)
        norms = np.empty((self.o, self.o))
        for py in range(self.o):
            for px in range(self.o):
                dy = (u[:, None] - py / self.o) * self.pitch
                dx = (u[None, :] - px / self.o) * self.pitch
                k = model.kernel_at_offsets(dx, dy)
                spectra[py, px] = scipy.fft.rfft2(k, s=(self.L, self.L))
                norms[py, px] = np.sqrt(np.sum(k**2))
        self.spectra = spectra
        self.lipschitz = self._power_iteration()

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.o, self.o, self.C, self.C)

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Candidate coordinates ``(X, Y)`` shaped like the activations."""
        J = np.arange(self.C) - self.m
        ph = np.arange(self.o) / self.o
        coord = self.x0 + (J[None, :] + ph[:, None]) * self.pitch  # (o, C)
        X = np.broadcast_to(coord[None, :, None, :], self.shape)
        Y = np.broadcast_to(coord[:, None, :, None], self.shape)
        return X, Y

    def forward(self, a: np.ndarray) -> np.ndarray:
        spec = scipy.fft.rfft2(a, s=(self.L, self.L), axes=(-2, -1))
        total = np.einsum("abij,abij->ij", spec, self.spectra)
        full = scipy.fft.irfft2(total, s=(self.L, self.L))
        lo = self.m + self.U0
        return full[lo:lo + self.R, lo:lo + self.R]

    def adjoint(self, image: np.ndarray) -> np.ndarray:
        pad = np.zeros((self.L, self.L))
        lo = self.m + self.U0
        pad[lo:lo + self.R, lo:lo + self.R] = image
        spec = scipy.fft.rfft2(pad)
        full = scipy.fft.irfft2(spec[None, None] * np.conj(self.spectra), s=(self.L, self.L),
                                axes=(-2, -1))
        return full[..., : self.C, : self.C]

    def _power_iteration(self, iters: int = 30) -> float:
        rng = np.random.default_rng(0)
        v = rng.random(self.shape)
        lam = 1.0
        for _ in range(iters):
            w = self.adjoint(self.forward(v))
            lam = float(np.linalg.norm(w))
            v = w / lam
        return lam * 1.02

    def column_norm(self) -> float:
        """Typical ``||A e_c||`` of a candidate inside the field (for z-scores)."""
        e = np.zeros(self.shape)
        e[0, 0, self.C // 2, self.C // 2] = 1.0
        return float(np.linalg.norm(self.forward(e)))


def fista_nonneg_l1(op: CandidateGrid, image: np.ndarray, lam: float, iters: int = 150,
                    tol: float = 1e-5) -> np.ndarray:
    """``argmin_{a >= 0} 1/2 ||A a - y||² + lam ||a||_1`` by FISTA (Beck & Teboulle 2009)."""
    step = 1.0 / op.lipschitz
    a = np.zeros(op.shape)
    z = a.copy()
    t = 1.0
    for _ in range(iters):
        grad = op.adjoint(op.forward(z) - image)
        a_new = np.maximum(z - step * (grad + lam), 0.0)
        t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        z = a_new + ((t - 1) / t_new) * (a_new - a)
        change = np.linalg.norm(a_new - a) / max(np.linalg.norm(a_new), 1e-300)
        a, t = a_new, t_new
        if change < tol:
            break
    return a
