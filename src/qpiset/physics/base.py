"""The kernel interface: a single-scatterer pattern as a function of position."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Kernel", "RadialTable", "GridTable", "gaussian_blur_radial"]


@dataclass(frozen=True)
class RadialTable:
    """Samples ``values[i] = K(i * step)`` of an isotropic kernel, for fast rendering."""

    step: float  # Å
    values: np.ndarray  # float64, K at r = 0, step, 2 step, ...

    @property
    def rmax(self) -> float:
        return self.step * (self.values.size - 1)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """Linear interpolation in the table (for checks; synth has its own loop)."""
        r = np.asarray(r, dtype=float)
        return np.interp(r / self.step, np.arange(self.values.size), self.values)


@dataclass(frozen=True)
class GridTable:
    """Samples ``values[iy, ix] = K(-h + ix step, -h + iy step)`` of a kernel on the square
    ``[-h, h]²`` (``h = half_width``), for fast rendering of anisotropic kernels."""

    step: float  # Å
    half_width: float  # Å
    values: np.ndarray  # float64 (n, n), [iy, ix]

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear interpolation in the table, zero outside it (for checks)."""
        from scipy.ndimage import map_coordinates

        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        coords = np.stack([(y + self.half_width) / self.step, (x + self.half_width) / self.step])
        return map_coordinates(self.values, coords.reshape(2, -1), order=1, mode="constant",
                               cval=0.0).reshape(x.shape)


class Kernel(ABC):
    """A single-scatterer pattern ``K(x, y)``: the LDOS change around one scatterer at (0, 0).

    Subclasses give :meth:`radial` (isotropic kernels; the azimuthal average for the
    others, which also override :meth:`evaluate` and set ``isotropic = False``) and
    :meth:`params`. Coordinates are continuous, in Å; values are dimensionless
    (``delta rho / rho0``). A kernel that lives on a crystal lattice sets ``lattice`` to its
    lattice vectors (rows, Å): scatterers then sit on lattice sites.
    """

    #: The model's name as used by ``qpiset generate --kernel``.
    name: str = ""
    isotropic: bool = True
    lattice: np.ndarray | None = None

    @abstractmethod
    def radial(self, r: np.ndarray) -> np.ndarray:
        """``K`` at distance ``r`` (Å) from the scatterer, exact (no table)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters that recreate the kernel via ``make_kernel``."""

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``K(x, y)`` at continuous coordinates in Å (broadcast, vectorised)."""
        return self.radial(np.hypot(np.asarray(x, float), np.asarray(y, float)))

    def default_step(self) -> float:
        """Table spacing (Å) that keeps linear interpolation well below 1e-4 of the peak."""
        return 0.02

    def radial_table(self, rmax: float, step: float | None = None) -> RadialTable:
        """Tabulate :meth:`radial` on ``[0, rmax]``; cached, so a dataset computes it once."""
        step = float(step or self.default_step())
        n = int(np.ceil(rmax / step)) + 2
        cache = self.__dict__.setdefault("_tables", {})
        for (s, m), table in cache.items():
            if s == step and m >= n:
                return table
        values = self.radial(np.arange(n) * step)
        values.setflags(write=False)
        table = RadialTable(step, values)
        cache[(step, n)] = table
        return table

    def grid_table(self, half_width: float, step: float | None = None) -> GridTable:
        """Tabulate :meth:`evaluate` on the square ``[-half_width, half_width]²`` (for
        anisotropic kernels); cached like :meth:`radial_table`."""
        step = float(step or self.default_step())
        n = 2 * int(np.ceil(half_width / step)) + 1
        h = step * (n // 2)
        cache = self.__dict__.setdefault("_grid_tables", {})
        for (s, hh), table in cache.items():
            if s == step and hh >= h:
                return table
        axis = np.arange(n) * step - h
        X, Y = np.meshgrid(axis, axis)
        values = np.asarray(self.evaluate(X, Y), dtype=np.float64)
        values.setflags(write=False)
        table = GridTable(step, h, values)
        cache[(step, h)] = table
        return table

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k != "model")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Kernel) and self.params() == other.params()

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.params().items())))


def gaussian_blur_radial(f, r: np.ndarray, sigma: float, nodes: int = 96) -> np.ndarray:
    """Convolve an isotropic function ``f(r)`` with a normalised 2D Gaussian of width ``sigma``.

    ``F(r) = ∫ r'/σ² exp(-(r - r')²/2σ²) I0e(r r'/σ²) f(r') dr'`` (the angular integral
    of the 2D Gaussian done analytically; ``I0e`` is the exponentially scaled Bessel I0).
    Gauss-Legendre on ``[max(0, r - 8σ), r + 8σ]`` with nodes clustered at the lower end
    (``r' = a + (b - a) v²``), which integrates a logarithmic singularity of ``f`` at 0.
    """
    from scipy.special import i0e

    r = np.asarray(r, dtype=float)
    flat = r.ravel()
    out = np.empty(flat.size)
    v, w = np.polynomial.legendre.leggauss(nodes)
    v = 0.5 * (v + 1.0)
    w = 0.5 * w
    s2 = sigma * sigma
    chunk = max(1, 200_000 // nodes)
    for start in range(0, flat.size, chunk):
        rr = flat[start:start + chunk, None]
        a = np.maximum(0.0, rr - 8.0 * sigma)
        b = rr + 8.0 * sigma
        rp = a + (b - a) * v * v
        jac = 2.0 * (b - a) * v
        weight = rp / s2 * np.exp(-((rr - rp) ** 2) / (2 * s2)) * i0e(rr * rp / s2)
        out[start:start + chunk] = np.sum(w * jac * weight * f(rp), axis=1)
    return out.reshape(r.shape)
