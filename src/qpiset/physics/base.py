"""The kernel protocol: a single-scatterer pattern as a function of position.

Two kinds of kernel, told apart by their class, never by probing:

- :class:`Kernel`: any pattern ``K(x, y)`` (lattice models, image kernels); subclasses give
  :meth:`Kernel.evaluate` and :meth:`Kernel.params`;
- :class:`RadialKernel`: an isotropic pattern ``K(r)``; subclasses give
  :meth:`RadialKernel.radial` and :meth:`~Kernel.params`.

What a model can do beyond that is declared on the class, with defaults here: its crystal
``lattice`` (scatterers then sit on lattice sites), the ``extent`` to which it is known,
the parameter that sets that extent (``extent_parameter``), the scattering theories it
supports (``scattering``), its ``rotational_symmetry`` about the scatterer, a circular
Fermi contour (:meth:`Kernel.ring`), a renderer of every multiple-scattering path
(:meth:`Kernel.multiple_scattering`) and a sampler of its parameters for kernel families
(:meth:`Kernel.family_parameters`).
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np

from .renames import renamed_parameters

__all__ = ["Kernel", "RadialKernel", "RadialTable", "GridTable", "gaussian_blur_radial",
           "measure_rotational_symmetry", "ISOTROPIC"]

#: :attr:`Kernel.rotational_symmetry` of a pattern unchanged by every rotation (C_inf).
ISOTROPIC = math.inf


@dataclass(frozen=True)
class RadialTable:
    """Samples ``values[i] = K(i * step)`` of an isotropic kernel, for fast rendering."""

    step: float  # Å
    values: np.ndarray  # float64, K at r = 0, step, 2 step, ...

    @property
    def rmax(self) -> float:
        return self.step * (self.values.size - 1)

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """Linear interpolation in the table (the forward operator's rule, for checks)."""
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

    Coordinates are continuous, in Å; values are dimensionless (``delta rho / rho0``).
    Subclasses give :meth:`evaluate` and :meth:`params` (``make_kernel(**k.params())``
    recreates ``k``), and declare what else they can do by overriding the class attributes
    and methods below.
    """

    #: The model's name in the registry (``qpiset generate --kernel NAME``).
    name: ClassVar[str] = ""
    #: ``True`` for :class:`RadialKernel` (``K`` depends on ``|r|`` only).
    isotropic: ClassVar[bool] = False
    #: Scattering theories of the simulator this model supports (:mod:`qpiset.forward`).
    scattering: ClassVar[tuple[str, ...]] = ("born",)
    #: The parameter that sets :attr:`extent`, named in warnings (e.g. ``"reach"``).
    extent_parameter: ClassVar[str | None] = None
    #: Crystal lattice vectors (rows, Å) when the scatterer sits on a lattice site.
    lattice: np.ndarray | None = None
    #: Distance (Å) from the scatterer to which the pattern is known (zero beyond);
    #: ``None`` when it is known everywhere.
    extent: float | None = None
    #: Rotations about the scatterer that leave the pattern unchanged: ``n`` when they are
    #: the multiples of ``2 pi / n`` (``C_n``; 1: none but the identity), :data:`ISOTROPIC`
    #: (``math.inf``) for every rotation, ``None`` when the model cannot say. Models declare
    #: it (a class attribute, or a property when it depends on the parameters).
    rotational_symmetry: ClassVar[float | None] = None
    #: Parameters renamed since they were first published, ``{old: new}``: the constructor
    #: takes the old keyword with a ``FutureWarning`` and recorded metadata is read quietly.
    renamed: ClassVar[dict[str, str]] = {}
    #: What a record made before a parameter existed implies, ``{name: value}``: the
    #: parameter's value then, where today's default differs (``kernel_from_record``).
    recorded_before: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("renamed"):
            cls.__init__ = renamed_parameters(**cls.renamed)(cls.__init__)

    def __getattr__(self, name: str):
        """The former name of an attribute (``renamed``) still reads, with a warning."""
        new = type(self).renamed.get(name)
        if new is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        warnings.warn(f"{type(self).__name__}.{name} is now called {new}; the old name will be "
                      "removed", FutureWarning, stacklevel=2)
        return getattr(self, new)

    @abstractmethod
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``K(x, y)`` at continuous coordinates in Å (broadcast, vectorised)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters that recreate the kernel via ``make_kernel``."""

    def describe(self) -> dict[str, Any]:
        """A short record for reports and result files (the parameters, unless they hold
        arrays)."""
        return self.params()

    # -- declared capabilities (defaults: none) ------------------------------------------
    def ring(self) -> float | None:
        """``2 k_F`` (1/Å) of a circular constant-energy contour, where the model has one
        (the ring of its q-space pattern); ``None`` otherwise."""
        return None

    def multiple_scattering(self, grid) -> Callable | None:
        """``f(positions, strengths) -> images`` with every multiple-scattering path between
        the scatterers, for ``"full"`` in :attr:`scattering`; ``None`` when the model has
        no such theory."""
        return None

    @classmethod
    def family_parameters(cls, rng: np.random.Generator, fov: float) -> dict[str, Any] | None:
        """Parameters of one member of a kernel family (drawn from ``rng`` for images of
        field ``fov`` Å), or ``None`` when the model has no family sampler."""
        return None

    # -- sampling ------------------------------------------------------------------------
    def sample(self, grid) -> np.ndarray:
        """``K`` at the pixel centres of ``grid`` (one scatterer at (0, 0)), ``[iy, ix]``."""
        X, Y = grid.meshgrid()
        return np.asarray(self.evaluate(X, Y), dtype=float)

    def azimuthal_average(self, r: np.ndarray) -> np.ndarray:
        """Average of ``K`` over circles of radius ``r`` (Å) about the scatterer: points
        spaced by at most six :meth:`default_step` on each circle (a multiple of 8 of
        them, at least 16). Models with a closed form override it."""
        r = np.asarray(r, dtype=float)
        flat = np.abs(r.ravel())
        spacing = 6 * self.default_step()
        counts = 8 * np.maximum(2, np.ceil(np.pi * flat / (4 * spacing))).astype(int)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        index = np.arange(counts.sum()) - np.repeat(starts, counts)
        phi = 2 * np.pi * index / np.repeat(counts, counts)
        rr = np.repeat(flat, counts)
        vals = self.evaluate(rr * np.cos(phi), rr * np.sin(phi))
        out = np.add.reduceat(vals, starts) / counts if flat.size else np.empty(0)
        return out.reshape(r.shape)

    def default_step(self) -> float:
        """Table spacing (Å) that keeps interpolation well below 1e-4 of the peak."""
        return 0.02

    def evaluate_grid(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``K`` on the grid of axes ``x`` × ``y`` (Å), ``(len(y), len(x))`` indexed
        ``[iy, ix]``; models with a faster way for regular grids override it."""
        X, Y = np.meshgrid(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(self.evaluate(X, Y), dtype=np.float64)

    def grid_table(self, half_width: float, step: float | None = None) -> GridTable:
        """Tabulate :meth:`evaluate` on the square ``[-half_width, half_width]²`` (for
        anisotropic kernels); cached, so a dataset computes it once."""
        step = float(step or self.default_step())
        n = 2 * int(np.ceil(half_width / step)) + 1
        h = step * (n // 2)
        cache = self.__dict__.setdefault("_grid_tables", {})
        for (s, hh), table in cache.items():
            if s == step and hh >= h:
                return table
        axis = np.arange(n) * step - h
        values = np.asarray(self.evaluate_grid(axis, axis), dtype=np.float64)
        values.setflags(write=False)
        table = GridTable(step, h, values)
        cache[(step, h)] = table
        return table

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "model")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Kernel) and self.params() == other.params()

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.params().items())))


class RadialKernel(Kernel):
    """An isotropic pattern ``K(|r|)``: subclasses give :meth:`radial` and :meth:`params`."""

    isotropic: ClassVar[bool] = True
    rotational_symmetry: ClassVar[float] = ISOTROPIC

    @abstractmethod
    def radial(self, r: np.ndarray) -> np.ndarray:
        """``K`` at distance ``r`` (Å) from the scatterer, exact (no table)."""

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.radial(np.hypot(np.asarray(x, float), np.asarray(y, float)))

    def azimuthal_average(self, r: np.ndarray) -> np.ndarray:
        return self.radial(r)

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


def measure_rotational_symmetry(kernel: Kernel, radius: float, step: float | None = None,
                                tolerance: float = 0.05) -> float:
    """The rotational symmetry of ``kernel`` measured by rotating it: :data:`ISOTROPIC` when
    rotations by 1 and 2 rad (no ``C_n`` of small ``n`` has them) leave it unchanged, else
    the ``n`` of the largest group of rotations by multiples of ``2 pi / n`` that does
    (the least common multiple of the orders 2, 3, 4, 6 that hold), else 1.

    "Unchanged": the RMS of ``K(rotated r) - K(r)`` over the disc ``|r| <= radius`` (Å;
    points every ``step`` Å along rings ``step`` apart, default :meth:`Kernel.default_step`
    times 10) is at most ``tolerance`` times the RMS of ``K`` there. A zero pattern is
    isotropic.

    Examples
    --------
    >>> class Stripes(Kernel):
    ...     def evaluate(self, x, y):
    ...         return np.cos(np.asarray(x)) + np.cos(np.asarray(y))
    ...     def params(self):
    ...         return {}
    >>> measure_rotational_symmetry(Stripes(), 10.0, step=0.5)
    4
    """
    step = float(step or 10 * kernel.default_step())
    if not (radius > 0 and step > 0):
        raise ValueError(f"radius and step must be > 0 Å, got {radius!r}, {step!r}")
    rings = np.arange(1, int(radius / step) + 1) * step
    counts = np.maximum(8, np.ceil(2 * np.pi * rings / step)).astype(int)
    r = np.repeat(rings, counts)
    phi = np.concatenate([2 * np.pi * np.arange(c) / c for c in counts])
    x, y = r * np.cos(phi), r * np.sin(phi)
    ref = np.asarray(kernel.evaluate(x, y), dtype=float)
    scale = float(np.sqrt(np.mean(ref * ref)))
    if scale == 0:
        return ISOTROPIC

    def unchanged(angle: float) -> bool:
        c, s = math.cos(angle), math.sin(angle)
        turned = np.asarray(kernel.evaluate(c * x - s * y, s * x + c * y), dtype=float)
        return float(np.sqrt(np.mean((turned - ref) ** 2))) <= tolerance * scale

    if unchanged(1.0) and unchanged(2.0):
        return ISOTROPIC
    order = 1
    for n in (2, 3, 4, 6):
        if unchanged(2 * math.pi / n):
            order = math.lcm(order, n)
    return order


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
