"""The tight-binding model shared by the lattice kernels: Bravais lattice, orbitals,
hoppings, the Bloch Hamiltonian, bands and group velocities (the Green's functions, the
T-matrix, the clean LDOS and the k-grid are in :mod:`.lattice_greens`).

A model has Bravais vectors ``a1, a2`` (rows of ``A``, Å), orbitals at ``tau_a`` in the
cell and hoppings ``t_ab(n) = <R+n, a| H |R, b>`` (eV). In the periodic gauge its Bloch
Hamiltonian on the phases ``theta_i = k . a_i`` is::

    H_ab(theta) = eps_a delta_ab + sum_n t_ab(n) exp(-i theta . n)

(the sign of the exponent makes ``G(R) = ifft2[(z - H(theta))^-1]`` the propagator from
cell 0 to cell ``R``, as :func:`~.lattice_greens.greens_function` computes it).

The one-band square lattice also has its closed forms here, :func:`square_band` and
:func:`square_max_velocity` (the superconducting model's normal state); the tests hold
them to the hopping form of :meth:`TightBinding.square`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .renames import renamed_parameters

__all__ = ["TightBinding", "square_band", "square_max_velocity"]

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
    @renamed_parameters(tp="t_prime")
    def square(cls, t: float = 1.0, t_prime: float = 0.0, mu: float = 0.0,
               a: float = 2.5) -> "TightBinding":
        """One orbital on the square lattice (constant ``a``, Å) with hoppings ``-t`` to
        the nearest and ``-t_prime`` to the next-nearest neighbours, so that (``t > 0``)::

            E(k) = -2t (cos kx a + cos ky a) - 4t' cos kx a cos ky a - mu

        with band bottom ``-4t - 4t' - mu`` at ``k = 0`` and ``E ≈ E_min + (t + 2t') a² k²``
        near it (effective mass ``hbar²/2m* = (t + 2t') a²``); :func:`square_band` is
        the same band in closed form.
        """
        _check_positive("a", a)
        hops = [(0, 0, (1, 0), -t), (0, 0, (0, 1), -t)]
        if t_prime != 0:
            hops += [(0, 0, (1, 1), -t_prime), (0, 0, (1, -1), -t_prime)]
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
        (periodic gauge of :mod:`.lattice_greens`)."""
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

    def rotational_symmetry(self, orbital: int = 0, tolerance: float = 1e-6) -> int:
        """The ``n`` of the largest group of rotations by multiples of ``2 pi / n`` about
        the origin that maps the model onto itself and orbital ``orbital`` of cell 0 onto
        itself (the least common multiple of the orders 2, 3, 4, 6 that do; 1 when none
        does): the symmetry of the LDOS pattern of an impurity on that orbital about the
        origin, where the lattice kernels put their scatterer.

        A rotation is a symmetry when it maps the lattice onto itself, every orbital onto
        an orbital of the same on-site energy and every hopping onto a hopping of the same
        value (orbitals are taken as s-like, as the kernels' Gaussian orbital densities
        are; a model symmetric only up to a gauge change of complex hoppings counts as less
        symmetric). An impurity orbital away from the origin (graphene's B site, at
        ``tau_B``) has no rotation about the origin that keeps it in place: 1.

        Examples
        --------
        >>> TightBinding.square(t=1.0, t_prime=-0.3).rotational_symmetry()
        4
        >>> TightBinding.honeycomb().rotational_symmetry()   # a site of graphene: C3, not C6
        3
        """
        m = self.n_orbitals
        if not (isinstance(orbital, (int, np.integer)) and 0 <= orbital < m):
            raise ValueError(f"orbital must be an index 0..{m - 1}, got {orbital!r}")
        lattice, tau = self.lattice, self.tau
        inverse = np.linalg.inv(lattice)
        centre = np.zeros(2)
        energy_scale = max(1.0, float(np.max(np.abs(self.onsite))),
                           max((abs(t) for *_, t in self.hoppings), default=0.0))
        bonds = {(a, b, n): t for a, b, n, t in self._bonds()}

        def integral(values: np.ndarray) -> np.ndarray | None:
            rounded = np.rint(values)
            return rounded.astype(int) if np.allclose(values, rounded, rtol=0,
                                                      atol=tolerance) else None

        def holds(n: int) -> bool:
            c, s = math.cos(2 * math.pi / n), math.sin(2 * math.pi / n)
            rot = np.array([[c, -s], [s, c]])
            # the rotated lattice vectors in lattice coordinates (rows): R a_i = M_ij a_j
            turn = integral((lattice @ rot.T) @ inverse)
            if turn is None:
                return False
            image = []  # orbital a of cell 0 -> (orbital b, cell m)
            for a in range(m):
                target = centre + rot @ (tau[a] - centre)
                for b in range(m):
                    cell = integral((target - tau[b]) @ inverse)
                    if cell is not None and abs(self.onsite[a] - self.onsite[b]) \
                            <= tolerance * energy_scale:
                        image.append((b, cell))
                        break
                else:
                    return False
            if image[orbital][0] != orbital or np.any(image[orbital][1]):
                return False  # the impurity's orbital moves
            for (a, b, (n1, n2)), t in bonds.items():
                # <cell n, a| H |cell 0, b> -> <cell m_a + n M, a'| H |cell m_b, b'>
                a2, cell_a = image[a]
                b2, cell_b = image[b]
                shift = cell_a + np.array([n1, n2]) @ turn - cell_b
                partner = bonds.get((a2, b2, (int(shift[0]), int(shift[1]))))
                if partner is None or abs(partner - t) > tolerance * energy_scale:
                    return False
            return True

        order = 1
        for n in (2, 3, 4, 6):
            if holds(n):
                order = math.lcm(order, n)
        return order

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



def square_band(cx, cy, t: float, t_prime: float, mu: float):
    """The square lattice's band from the cosines ``cx = cos kx a``, ``cy = cos ky a``::

        xi = -2t (cos kx a + cos ky a) - 4t' cos kx a cos ky a - mu

    (the band of :meth:`TightBinding.square`, in closed form).

    Examples
    --------
    >>> float(square_band(1.0, 1.0, 1.0, 0.0, 0.0))      # band bottom -4t at k = 0
    -4.0
    """
    return -2.0 * t * (cx + cy) - 4.0 * t_prime * cx * cy - mu


def square_max_velocity(t: float, t_prime: float, a: float) -> float:
    """Largest ``|grad_k xi_k|`` (eV Å) of :func:`square_band` over the Brillouin zone.

    ``grad xi = a (sin kx a (2t + 4t' cos ky a), sin ky a (2t + 4t' cos kx a))``, maximised
    on a 129 x 129 grid of the first quadrant (enough for the smooth ``|grad xi|``).

    Examples
    --------
    >>> round(square_max_velocity(0.15, 0.0, 3.8), 3)     # 2 sqrt(2) t a at (pi/2a, pi/2a)
    1.612
    """
    theta = np.linspace(0.0, np.pi, 129)
    sx, cx = np.sin(theta)[:, None], np.cos(theta)[:, None]
    sy, cy = np.sin(theta)[None, :], np.cos(theta)[None, :]
    vx = sx * (2 * t + 4 * t_prime * cy)
    vy = sy * (2 * t + 4 * t_prime * cx)
    return float(a * np.sqrt(vx**2 + vy**2).max())
