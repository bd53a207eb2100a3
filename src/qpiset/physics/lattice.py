"""Quasiparticle interference on a crystal: one impurity in a tight-binding model.

Physics (conventions of :mod:`.lattice_core`). A tight-binding model has Bravais vectors
``a1, a2`` (rows of ``A``, Å), orbitals at ``tau_a`` in the cell and hoppings
``t_ab(n) = <R+n, a| H |R, b>`` (eV). In the periodic gauge its Bloch Hamiltonian on the
phases ``theta_i = k . a_i`` is::

    H_ab(theta) = eps_a delta_ab + sum_n t_ab(n) exp(-i theta . n)

(the sign of the exponent makes ``G(R) = ifft2[(z - H(theta))^-1]`` the propagator from
cell 0 to cell ``R``, as :func:`~.lattice_core.greens_function` computes it). One impurity
with on-site potential ``V`` on orbital ``c`` of cell 0 gives, with ``z = E + i eta``::

    T          = V (1 - G(0) V)^-1,                  V = potential |0 c><0 c|
    delta rho_a(R) = -(1/pi) Im [G(R) T G(-R)]_aa          (states / eV, per orbital)
    rho0       = -(1/pi) Im Tr G(0) / A_cell               (states / eV / Å²)

``rho0`` is the clean LDOS averaged over space (per unit area). Every orbital carries a
normalised Gaussian of width ``orbital_sigma`` (a Wannier-like orbital density, which
also stands for the tip's lateral resolution), so the kernel at continuous ``r`` (Å) is::

    K(r) = delta rho(r) / rho0 = sum_{R,a} delta rho_a(R) g(r - R - tau_a) / rho0

and the clean orbital-projected LDOS averages to exactly ``rho0`` over space, the same
normalisation as the continuum :class:`~.friedel.FriedelKernel`
(``rho0 = m*/2 pi hbar^2``), which the square lattice reproduces near its band bottom.

Finite k-grid: ``N x N`` phases make the crystal an ``N a1 x N a2`` torus, so the pattern
is the sum of the impurity's own and of its periodic images (Poisson summation). Within
``reach`` of the impurity the images are farther away than the impurity itself as long
as the shortest supercell translation exceeds ``2 (reach + 5 orbital_sigma)``. They still
add to ``G``: ``G_N(R) = sum_L G(R + L)`` over the supercell translations ``L``, and
``G(R) ~ exp(-eta |R| / hbar v_F) / sqrt|R|``, so ``delta rho ~ G(R) T G(-R)`` at ``r`` is
off by ``~ 2 exp(-eta (|L| - 2 r) / hbar v_F)`` of itself. The automatic ``N`` therefore
adds ``ln(100)`` decay lengths ``hbar v_F / eta`` to ``2 (reach + 5 orbital_sigma)``
(``v_F`` the largest group velocity at the energy): images at ~1 % of the pattern at
``reach``. A small ``eta`` needs a large ``N``.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import Kernel
from .lattice_core import delta_site_ldos, greens_function, project_gaussian, t_matrix

__all__ = ["TightBinding", "LatticeKernel"]

#: Sites farther than this many orbital widths from a point do not contribute to it
#: (the cut-off of :func:`~.lattice_core.project_gaussian`).
_ORBITAL_CUTOFF = 5.0
#: Tolerated relative contribution of the periodic images at ``reach`` (automatic k-grid).
_WRAP_TOLERANCE = 0.01
#: Largest Green's function array (N² m² complex entries) the automatic k-grid may use.
_MAX_GRID_ENTRIES = 2**22

Hopping = tuple[int, int, tuple[int, int], complex]


@dataclass(frozen=True, eq=False)
class TightBinding:
    """A tight-binding model: Bravais lattice, orbitals and hoppings.

    Parameters
    ----------
    lattice : array_like (2, 2)
        Lattice vectors ``a1, a2`` as rows, Å.
    tau : array_like (m, 2)
        Orbital positions in the unit cell, Å (Cartesian).
    onsite : array_like (m,)
        On-site energies ``eps_a``, eV (measured from the chemical potential for the
        built-in models).
    hoppings : sequence of (a, b, (n1, n2), t)
        ``<R+n, a| H |R, b> = t`` (eV, real or complex) with ``n = (n1, n2)`` in units of
        the lattice vectors. List each bond once: the hermitian partner
        ``<R-n, b| H |R, a> = conj(t)`` is added automatically, and listing it as well is
        an error (it would double the bond). On-site terms go into ``onsite``.

    Examples
    --------
    >>> tb = TightBinding.square(t=1.0, mu=0.0, a=2.5)
    >>> tb.hk(4).shape
    (4, 4, 1, 1)
    >>> float(tb.bands(np.array([0.0, 0.0]))[0])      # band bottom -4t - mu
    -4.0
    """

    lattice: np.ndarray
    tau: np.ndarray
    onsite: np.ndarray
    hoppings: tuple[Hopping, ...]

    def __post_init__(self) -> None:
        lattice = np.array(self.lattice, dtype=float)
        tau = np.array(self.tau, dtype=float)
        onsite = np.array(self.onsite, dtype=float)
        if lattice.shape != (2, 2) or not np.all(np.isfinite(lattice)):
            raise ValueError(f"lattice must be a finite 2 x 2 array (rows a1, a2, Å), "
                             f"got {np.shape(self.lattice)}")
        if abs(np.linalg.det(lattice)) < 1e-9 * max(1.0, float(np.sum(lattice**2))):
            raise ValueError(f"lattice vectors {lattice.tolist()} are collinear")
        if onsite.ndim != 1 or onsite.size == 0 or not np.all(np.isfinite(onsite)):
            raise ValueError(f"onsite must be a non-empty finite 1D array, got {self.onsite!r}")
        m = onsite.size
        if tau.shape != (m, 2) or not np.all(np.isfinite(tau)):
            raise ValueError(f"tau must be a finite ({m}, 2) array for {m} orbital(s), "
                             f"got shape {tau.shape}")
        hops = []
        seen: set[tuple[int, int, int, int]] = set()
        for i, hop in enumerate(self.hoppings):
            try:
                a, b, (n1, n2), t = hop
            except (TypeError, ValueError):
                raise ValueError(f"hopping {i}: expected (a, b, (n1, n2), t), got {hop!r}") \
                    from None
            if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in (a, b, n1, n2)):
                raise ValueError(f"hopping {i}: orbitals and cell offsets must be integers, "
                                 f"got {hop!r}")
            a, b, n1, n2 = int(a), int(b), int(n1), int(n2)
            if not (0 <= a < m and 0 <= b < m):
                raise ValueError(f"hopping {i}: orbital index out of range 0..{m - 1}: {hop!r}")
            if isinstance(t, bool) or not isinstance(t, (int, float, complex, np.number)):
                raise ValueError(f"hopping {i}: t must be a number (eV), got {t!r}")
            t = complex(t)
            if not np.isfinite(t):
                raise ValueError(f"hopping {i}: t is not finite: {t!r}")
            if a == b and n1 == 0 and n2 == 0:
                raise ValueError(f"hopping {i}: on-site term of orbital {a}; put it in onsite")
            key, partner = (a, b, n1, n2), (b, a, -n1, -n2)
            if key in seen or partner in seen:
                raise ValueError(f"hopping {i} ({a}, {b}, ({n1}, {n2})) is listed twice "
                                 "(the hermitian partner is added automatically)")
            seen.add(key)
            hops.append((a, b, (n1, n2), t))
        for name, value in (("lattice", lattice), ("tau", tau), ("onsite", onsite)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "hoppings", tuple(hops))

    # -- constructors --------------------------------------------------------------------
    @classmethod
    def square(cls, t: float = 1.0, tp: float = 0.0, mu: float = 0.0,
               a: float = 2.5) -> "TightBinding":
        """One orbital on the square lattice (constant ``a``, Å) with hoppings ``-t`` to
        the nearest and ``-tp`` to the next-nearest neighbours, so that (``t > 0``)::

            E(k) = -2t (cos kx a + cos ky a) - 4t' cos kx a cos ky a - mu

        with band bottom ``-4t - 4t' - mu`` at ``k = 0`` and ``E ≈ E_min + (t + 2t') a² k²``
        near it (effective mass ``hbar²/2m* = (t + 2t') a²``).
        """
        _check_positive("a", a)
        hops = [(0, 0, (1, 0), -t), (0, 0, (0, 1), -t)]
        if tp != 0:
            hops += [(0, 0, (1, 1), -tp), (0, 0, (1, -1), -tp)]
        return cls(a * np.eye(2), np.zeros((1, 2)), np.array([-float(mu)]), tuple(hops))

    @classmethod
    def honeycomb(cls, t: float = 2.7, mu: float = 0.0, a: float = 2.46) -> "TightBinding":
        """Graphene-like honeycomb lattice: sublattices A, B and hopping ``-t`` between
        nearest neighbours.

        ``a`` is the lattice constant ``|a1| = |a2|`` (Å; graphene 2.46), the carbon-carbon
        distance is ``a / sqrt(3)``. ``a1 = a (1, 0)``, ``a2 = a (1/2, sqrt(3)/2)``,
        ``tau_A = 0``, ``tau_B = (a1 + a2) / 3``; bands ``E = ±t |1 + e^{i k.a1} +
        e^{i k.a2}| - mu`` with the Dirac points at ``E = -mu``.
        """
        _check_positive("a", a)
        lattice = a * np.array([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
        tau = np.array([[0.0, 0.0], (lattice[0] + lattice[1]) / 3])
        # A of cell n to B of cell 0 for n = 0, a1, a2: the three nearest neighbours
        hops = [(0, 1, (0, 0), -t), (0, 1, (1, 0), -t), (0, 1, (0, 1), -t)]
        return cls(lattice, tau, np.full(2, -float(mu)), tuple(hops))

    @classmethod
    def from_file(cls, path: str | Path) -> "TightBinding":
        """Read a model from a JSON hopping file.

        The file is an object with ``"lattice"`` (two rows ``[x, y]``, Å), ``"orbitals"``
        (a list of ``{"name": str (optional), "position": [x, y] (Å), "onsite": eV}``)
        and ``"hoppings"`` (a list of ``[a, b, [n1, n2], t]`` meaning
        ``<R+n, a| H |R, b> = t`` eV, ``a, b`` orbital indices or names, ``t`` a number or
        ``[re, im]``; each bond once, hermitian partners are added). An optional
        ``"description"`` string is ignored. Any problem raises ``ValueError`` naming the
        file.

        Examples
        --------
        >>> import tempfile, os
        >>> text = '''{"lattice": [[2.5, 0], [0, 2.5]],
        ...            "orbitals": [{"name": "s", "position": [0, 0], "onsite": 0.0}],
        ...            "hoppings": [["s", "s", [1, 0], -1.0], ["s", "s", [0, 1], -1.0]]}'''
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = os.path.join(d, "sq.json")
        ...     _ = open(p, "w").write(text)
        ...     tb = TightBinding.from_file(p)
        >>> bool(np.allclose(tb.hk(8), TightBinding.square(1.0, 0.0, 0.0, 2.5).hk(8)))
        True
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a UTF-8 text file") from None
        try:
            return cls(*_parse_hopping_file(data))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    # -- Bloch Hamiltonian ---------------------------------------------------------------
    @property
    def n_orbitals(self) -> int:
        return len(self.onsite)

    @property
    def cell_area(self) -> float:
        """Unit-cell area ``|a1 x a2|`` (Å²)."""
        return float(abs(np.linalg.det(self.lattice)))

    def _bonds(self):
        """Every hopping with its hermitian partner: ``(a, b, n, t)``."""
        for a, b, (n1, n2), t in self.hoppings:
            yield a, b, (n1, n2), t
            yield b, a, (-n1, -n2), t.conjugate()

    def hk(self, n: int) -> np.ndarray:
        """Bloch Hamiltonian ``(n, n, m, m)`` on the phases ``theta = 2 pi (i1, i2) / n``
        (periodic gauge of :mod:`.lattice_core`)."""
        if not (isinstance(n, (int, np.integer)) and n >= 1):
            raise ValueError(f"k-grid size must be a positive integer, got {n!r}")
        m = self.n_orbitals
        theta = 2 * np.pi * np.arange(n) / n
        h = np.zeros((n, n, m, m), dtype=complex)
        h[:, :, np.arange(m), np.arange(m)] = self.onsite
        for a, b, (n1, n2), t in self._bonds():
            # H_ab(theta) += t_ab(n) exp(-i theta . n)
            h[:, :, a, b] += t * np.outer(np.exp(-1j * n1 * theta), np.exp(-1j * n2 * theta))
        return h

    def hamiltonian(self, k: np.ndarray) -> np.ndarray:
        """Bloch Hamiltonian ``(..., m, m)`` at Cartesian wave vectors ``k`` ``(..., 2)``
        (1/Å), periodic gauge (``theta_i = k . a_i``)."""
        theta = np.asarray(k, float) @ self.lattice.T
        m = self.n_orbitals
        h = np.zeros(theta.shape[:-1] + (m, m), dtype=complex)
        h[..., np.arange(m), np.arange(m)] = self.onsite
        for a, b, n, t in self._bonds():
            h[..., a, b] += t * np.exp(-1j * (theta @ np.asarray(n, float)))
        return h

    def bands(self, k: np.ndarray) -> np.ndarray:
        """Band energies ``(..., m)`` (eV, ascending) at Cartesian ``k`` ``(..., 2)`` (1/Å)."""
        return np.linalg.eigvalsh(self.hamiltonian(k))

    def velocity(self, energy: float, width: float = 0.0, n: int = 48) -> float:
        """Largest group velocity ``|dE/dk|`` (eV Å) of the states within ``width`` (eV;
        at least the energy step between neighbouring points) of ``energy`` on an
        ``n x n`` k-grid; 0 if there are none (``energy`` in a gap or outside the bands).

        Hellmann-Feynman: ``dE_j/dtheta_i = <j| dH/dtheta_i |j>``, ``dE/dk = A^T dE/dtheta``.
        """
        theta = 2 * np.pi * np.arange(n) / n
        t1, t2 = np.meshgrid(theta, theta, indexing="ij")
        m = self.n_orbitals
        h = np.zeros((n, n, m, m), dtype=complex)
        dh = np.zeros((2, n, n, m, m), dtype=complex)
        h[:, :, np.arange(m), np.arange(m)] = self.onsite
        for a, b, (n1, n2), t in self._bonds():
            term = t * np.exp(-1j * (n1 * t1 + n2 * t2))
            h[:, :, a, b] += term
            dh[0, :, :, a, b] += -1j * n1 * term
            dh[1, :, :, a, b] += -1j * n2 * term
        e, u = np.linalg.eigh(h)
        de = np.einsum("xyaj,ixyab,xybj->ixyj", u.conj(), dh, u).real  # dE/dtheta_i
        step = float(np.max(np.abs(de))) * 2 * np.pi / n  # energy step between k-points
        near = np.abs(e - energy) <= max(width, step)
        if not near.any():
            return 0.0
        v = np.einsum("ixyj,ic->xyjc", de, self.lattice)  # dE/dk, eV Å
        return float(np.max(np.linalg.norm(v[near], axis=-1)))

    def shortest_translation(self) -> float:
        """Length (Å) of the shortest non-zero lattice translation."""
        c = np.arange(-3, 4)
        n = np.stack(np.meshgrid(c, c), axis=-1).reshape(-1, 2)
        n = n[np.any(n != 0, axis=1)]
        return float(np.min(np.linalg.norm(n @ self.lattice, axis=1)))


def _parse_hopping_file(data: Any):
    """``(lattice, tau, onsite, hoppings)`` from a decoded hopping file (ValueError)."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object with lattice, orbitals and hoppings")
    unknown = set(data) - {"lattice", "orbitals", "hoppings", "description"}
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)}; expected lattice, orbitals, "
                         "hoppings (and an optional description)")
    missing = [k for k in ("lattice", "orbitals", "hoppings") if k not in data]
    if missing:
        raise ValueError(f"missing key(s) {missing}")
    lattice = _number_array(data["lattice"], (2, 2), "lattice (two rows [x, y], Å)")
    orbitals = data["orbitals"]
    if not isinstance(orbitals, list) or not orbitals:
        raise ValueError("orbitals must be a non-empty list")
    names: dict[str, int] = {}
    tau, onsite = [], []
    for i, orb in enumerate(orbitals):
        if not isinstance(orb, dict) or not {"position", "onsite"} <= set(orb) \
                or not set(orb) <= {"name", "position", "onsite"}:
            raise ValueError(f"orbital {i}: expected an object with position, onsite "
                             f"(and optional name), got {orb!r}")
        if "name" in orb:
            if not isinstance(orb["name"], str) or orb["name"] in names:
                raise ValueError(f"orbital {i}: name must be a unique string, got "
                                 f"{orb['name']!r}")
            names[orb["name"]] = i
        tau.append(_number_array(orb["position"], (2,), f"orbital {i} position [x, y] (Å)"))
        onsite.append(_number(orb["onsite"], f"orbital {i} onsite (eV)"))
    hoppings = data["hoppings"]
    if not isinstance(hoppings, list):
        raise ValueError("hoppings must be a list of [a, b, [n1, n2], t]")

    def orbital(ref, i):
        if isinstance(ref, str):
            if ref not in names:
                raise ValueError(f"hopping {i}: no orbital named {ref!r}")
            return names[ref]
        if isinstance(ref, int) and not isinstance(ref, bool) and 0 <= ref < len(orbitals):
            return ref
        raise ValueError(f"hopping {i}: orbital {ref!r} is neither a name nor an index "
                         f"0..{len(orbitals) - 1}")

    hops = []
    for i, hop in enumerate(hoppings):
        if not (isinstance(hop, list) and len(hop) == 4 and isinstance(hop[2], list)
                and len(hop[2]) == 2):
            raise ValueError(f"hopping {i}: expected [a, b, [n1, n2], t], got {hop!r}")
        a, b, cell, t = hop
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in cell):
            raise ValueError(f"hopping {i}: cell offset must be two integers, got {cell!r}")
        if isinstance(t, list) and len(t) == 2:
            t = complex(_number(t[0], f"hopping {i} Re t"), _number(t[1], f"hopping {i} Im t"))
        else:
            t = _number(t, f"hopping {i} t (eV, a number or [re, im])")
        hops.append((orbital(a, i), orbital(b, i), (cell[0], cell[1]), t))
    return lattice, np.array(tau), np.array(onsite), tuple(hops)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return float(value)


def _number_array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected numbers, got {value!r}") from None
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: expected finite numbers of shape {shape}, got {value!r}")
    return arr


def _is_real(value: Any) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool) and math.isfinite(value))


def _check_positive(name: str, value: Any) -> None:
    if not (_is_real(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _fft_size(smallest: int) -> int:
    """Smallest ``2^p`` or ``3 2^p`` (fast FFT sizes) that is ``>= smallest``."""
    p = max(0, math.ceil(math.log2(max(smallest, 1))))
    return min(n for n in (2**p, 3 * 2 ** max(p - 2, 0), 3 * 2 ** max(p - 1, 0))
               if n >= smallest)


class LatticeKernel(Kernel):
    """LDOS pattern of one impurity in a tight-binding crystal (lattice Green's function and
    T-matrix; physics and normalisation in the module docstring).

    Parameters
    ----------
    structure : {"square", "honeycomb", "file"}
        The crystal: :meth:`TightBinding.square`, :meth:`TightBinding.honeycomb`, or a
        JSON hopping file (:meth:`TightBinding.from_file`) given as ``hopping_file``.
    energy : float
        Bias energy ``E`` in eV relative to the chemical potential.
    t, tp, a : float, optional
        Hopping ``t``, next-nearest hopping ``t'`` (square only) in eV and lattice
        constant ``a`` in Å of the built-in models (independent of any pixel pitch).
        Defaults: square ``t = 1``, ``t' = 0``, ``a = 2.5``; honeycomb (graphene)
        ``t = 2.7``, ``a = 2.46``. Not used with a hopping file (its own lengths and
        energies).
    mu : float
        Chemical potential (eV): ``E(k) - mu`` for the built-in models; for a file model
        the Green's function is taken at ``E + mu`` on the file's energy scale.
    hopping_file : str or Path, optional
        The JSON hopping file of ``structure="file"``.
    eta : float
        Broadening (eV) ``E -> E + i eta``; > 0.
    potential : float
        Impurity on-site potential ``V`` (eV) on orbital ``impurity_orbital`` of cell 0.
    impurity_orbital : int
        Index of the orbital that carries the impurity.
    orbital_sigma : float
        Width (Å) of the Gaussian orbital densities that carry the site LDOS.
    reach : float
        The pattern is exact (up to ~1 % from the k-grid's periodic images) out to this
        distance (Å) from the impurity; only orbitals within ``reach + 5 orbital_sigma``
        are kept, so it falls to zero between there and ``reach + 10 orbital_sigma``.
    kgrid : int, optional
        ``N`` of the ``N x N`` k-grid instead of the automatic choice; the supercell
        must satisfy ``N |a_min| > 2 (reach + 5 orbital_sigma)``.

    Examples
    --------
    >>> K = LatticeKernel("square", energy=-3.8, t=1.0, mu=0.0, eta=0.05, reach=30.0)
    >>> K.lattice.tolist()
    [[2.5, 0.0], [0.0, 2.5]]
    >>> v = K.evaluate([5.0, 0.0, -5.0], [0.0, 5.0, 0.0])   # C4 symmetric
    >>> bool(np.allclose(v, v[0]))
    True
    """

    name = "lattice"
    isotropic = False

    def __init__(
        self,
        structure: str = "square",
        energy: float = 0.0,
        *,
        t: float | None = None,
        tp: float | None = None,
        mu: float = 0.0,
        a: float | None = None,
        hopping_file: str | Path | None = None,
        eta: float = 0.02,
        potential: float = 1.0,
        impurity_orbital: int = 0,
        orbital_sigma: float = 0.8,
        reach: float = 150.0,
        kgrid: int | None = None,
    ) -> None:
        for key, value in (("energy", energy), ("mu", mu), ("potential", potential),
                           ("t", t), ("tp", tp)):
            if value is not None and not _is_real(value):
                raise ValueError(f"{key} must be a finite number (eV), got {value!r}")
        if a is not None:
            _check_positive("a", a)
        for key, value in (("eta", eta), ("orbital_sigma", orbital_sigma), ("reach", reach)):
            _check_positive(key, value)
        if structure == "square":
            t = 1.0 if t is None else t
            tp = 0.0 if tp is None else tp
            a = 2.5 if a is None else a
            model = TightBinding.square(float(t), float(tp), float(mu), float(a))
        elif structure == "honeycomb":
            if tp not in (None, 0, 0.0):
                raise ValueError("tp (next-nearest hopping) is not part of the honeycomb model")
            t = 2.7 if t is None else t
            tp = None
            a = 2.46 if a is None else a
            model = TightBinding.honeycomb(float(t), float(mu), float(a))
        elif structure == "file":
            if hopping_file is None:
                raise ValueError('structure="file" needs hopping_file (a JSON hopping file)')
            given = [k for k, v in (("t", t), ("tp", tp), ("a", a)) if v is not None]
            if given:
                raise ValueError(f"{', '.join(given)} not used with a hopping file "
                                 "(the file gives the lattice and hoppings)")
            model = TightBinding.from_file(hopping_file)
        else:
            raise ValueError(f"unknown structure {structure!r}; "
                             "choose 'square', 'honeycomb' or 'file'")
        if structure != "file" and hopping_file is not None:
            raise ValueError(f'hopping_file is only used with structure="file", '
                             f"not {structure!r}")
        m = model.n_orbitals
        if isinstance(impurity_orbital, bool) \
                or not isinstance(impurity_orbital, (int, np.integer)) \
                or not 0 <= impurity_orbital < m:
            raise ValueError(f"impurity_orbital must be an orbital index 0..{m - 1}, "
                             f"got {impurity_orbital!r}")
        self.structure = structure
        self.energy = float(energy)
        self.t = None if t is None else float(t)
        self.tp = None if tp is None else float(tp)
        self.mu = float(mu)
        self.a = None if a is None else float(a)
        self.hopping_file = None if hopping_file is None else str(hopping_file)
        self.eta = float(eta)
        self.potential = float(potential)
        self.impurity_orbital = int(impurity_orbital)
        self.orbital_sigma = float(orbital_sigma)
        self.reach = float(reach)
        self.tight_binding = model
        lattice = model.lattice.copy()
        lattice.setflags(write=False)
        self.lattice = lattice
        # sites that reach the points within ``reach`` through their Gaussian orbital
        self._site_reach = self.reach + _ORBITAL_CUTOFF * self.orbital_sigma
        self._min_grid = math.floor(2 * self._site_reach / model.shortest_translation()) + 1
        if kgrid is not None:
            if isinstance(kgrid, bool) or not isinstance(kgrid, (int, np.integer)) \
                    or kgrid < self._min_grid:
                raise ValueError(
                    f"kgrid must be an integer >= {self._min_grid}: the supercell N |a_min| "
                    f"must exceed 2 (reach + 5 orbital_sigma) = {2 * self._site_reach:.4g} Å, "
                    f"got {kgrid!r}")
        self.kgrid = None if kgrid is None else int(kgrid)

    # -- k-grid and site values ----------------------------------------------------------
    @property
    def extent(self) -> float:
        """Distance (Å) from the impurity out to which the pattern is exact: ``reach``."""
        return self.reach

    @property
    def _green_energy(self) -> float:
        """Energy at which ``G`` is taken on the model's own scale."""
        return self.energy + (self.mu if self.structure == "file" else 0.0)

    @property
    def n_k(self) -> int:
        """``N`` of the ``N x N`` k-grid (supercell of ``N x N`` cells) actually used."""
        if self.kgrid is not None:
            return self.kgrid
        cached = self.__dict__.get("_n_k")
        if cached is not None:
            return cached
        m = self.tight_binding.n_orbitals
        # G decays over hbar v_F / eta: the images' share of delta rho(r) is
        # ~ exp(-eta (L - 2r) / hbar v_F) for a supercell translation L
        v = self.tight_binding.velocity(self._green_energy, 3 * self.eta)
        wanted = 2 * self._site_reach + math.log(1 / _WRAP_TOLERANCE) * v / self.eta
        n = _fft_size(max(self._min_grid,
                            math.ceil(wanted / self.tight_binding.shortest_translation())))
        limit = _fft_size(self._min_grid)
        while True:  # the largest fast size within the memory budget
            bigger = _fft_size(limit + 1)
            if bigger * bigger * m * m > _MAX_GRID_ENTRIES:
                break
            limit = bigger
        if n > limit:
            warnings.warn(
                f"eta = {self.eta} eV is small for reach {self.reach} Å: the k-grid needed to "
                f"suppress the periodic images ({n}) exceeds the budget ({limit}); the "
                "pattern near reach carries image contributions (give a larger eta or a "
                "smaller reach, or force kgrid)", RuntimeWarning, stacklevel=3)
            n = limit
        self.__dict__["_n_k"] = n
        return n

    def _sites(self) -> tuple[np.ndarray, np.ndarray]:
        """``(positions (s, 2) Å, delta rho / rho0 (s,))`` of every orbital within the site
        reach; computed once per instance."""
        cached = self.__dict__.get("_site_cache")
        if cached is not None:
            return cached
        model, n = self.tight_binding, self.n_k
        m = model.n_orbitals
        g0 = greens_function(model.hk(n), self._green_energy, self.eta)
        v = np.zeros((m, m))
        v[self.impurity_orbital, self.impurity_orbital] = self.potential
        # delta rho_a(R) = -(1/pi) Im [G(R) T G(-R)]_aa, T = V (1 - G(0) V)^-1; states / eV
        drho = delta_site_ldos(g0, t_matrix(g0, v))  # (N, N, m)
        rho0 = -np.trace(g0[0, 0]).imag / np.pi / model.cell_area  # states / eV / Å²
        del g0
        if not rho0 > 0:
            raise ValueError(f"no clean density of states at E = {self.energy} eV")
        # cells R with |R + tau_a| <= site reach: |n_i| = |R . b_i| / 2 pi <= radius |b_i| / 2 pi
        radius = self._site_reach + float(np.max(np.linalg.norm(model.tau, axis=1)))
        half = [math.ceil(radius * np.linalg.norm(b)) for b in np.linalg.inv(model.lattice).T]
        c1, c2 = (np.arange(-h, h + 1) for h in half)
        n1, n2 = (u.ravel() for u in np.meshgrid(c1, c2, indexing="ij"))
        cells = np.stack([n1, n2], axis=1) @ model.lattice
        pos = cells[:, None, :] + model.tau[None, :, :]  # (cells, m, 2)
        values = drho[n1 % n, n2 % n] / rho0  # the torus value of every cell
        keep = np.linalg.norm(pos, axis=-1) <= self._site_reach
        result = (pos[keep], values[keep])
        for arr in result:
            arr.setflags(write=False)
        self.__dict__["_site_cache"] = result
        self.__dict__["_rho0"] = float(rho0)
        return result

    @property
    def rho0(self) -> float:
        """Clean LDOS averaged over space, states / eV / Å² (the normalisation)."""
        self._sites()
        return self.__dict__["_rho0"]

    def greens_function(self) -> np.ndarray:
        """Clean ``G(R)`` ``(N, N, m, m)`` at the kernel's energy (:attr:`n_k`, conventions of
        :mod:`.lattice_core`); computed afresh on every call (not cached)."""
        model = self.tight_binding
        return greens_function(model.hk(self.n_k), self._green_energy, self.eta)

    def impurity_potential(self) -> np.ndarray:
        """Impurity potential matrix ``V`` ``(m, m)`` (eV): ``potential`` on the diagonal
        entry of ``impurity_orbital``, zero elsewhere."""
        m = self.tight_binding.n_orbitals
        v = np.zeros((m, m))
        v[self.impurity_orbital, self.impurity_orbital] = self.potential
        return v

    def site_values(self) -> tuple[np.ndarray, np.ndarray]:
        """``(positions (s, 2) Å, delta rho_a(R) / rho0 (s,) Å²)`` of the orbitals within
        ``reach + 5 orbital_sigma``: the weights of their normalised Gaussians."""
        pos, val = self._sites()
        return pos, val

    # -- the kernel ----------------------------------------------------------------------
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``delta rho / rho0`` at continuous ``(x, y)`` (Å) around the impurity at 0."""
        pos, val = self._sites()
        return project_gaussian(val, pos, x, y, self.orbital_sigma, _ORBITAL_CUTOFF)

    def radial(self, r: np.ndarray) -> np.ndarray:
        """Azimuthal average of :meth:`evaluate` at distance ``r`` (Å): points spaced by
        at most ``orbital_sigma`` on each circle (a multiple of 8 of them)."""
        r = np.asarray(r, dtype=float)
        flat = np.abs(r.ravel())
        counts = 8 * np.maximum(2, np.ceil(np.pi * flat / (4 * self.orbital_sigma))).astype(int)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        index = np.arange(counts.sum()) - np.repeat(starts, counts)
        phi = 2 * np.pi * index / np.repeat(counts, counts)
        rr = np.repeat(flat, counts)
        vals = self.evaluate(rr * np.cos(phi), rr * np.sin(phi))
        out = np.add.reduceat(vals, starts) / counts if flat.size else np.empty(0)
        return out.reshape(r.shape)

    def default_step(self) -> float:
        """``orbital_sigma / 6``: cubic convolution (the 2D tables of :mod:`qpiset.synth`)
        of a Gaussian orbital then errs by ~1e-4 of its peak (bilinear: ~3e-3)."""
        return self.orbital_sigma / 6

    def params(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "structure": self.structure,
            "energy": self.energy,
            "t": self.t,
            "tp": self.tp,
            "mu": self.mu,
            "a": self.a,
            "hopping_file": self.hopping_file,
            "eta": self.eta,
            "potential": self.potential,
            "impurity_orbital": self.impurity_orbital,
            "orbital_sigma": self.orbital_sigma,
            "reach": self.reach,
            "kgrid": self.kgrid,
        }
