"""Bogoliubov quasiparticle interference: one scatterer in a one-band superconductor on
the square lattice (BdG T-matrix).

Model (energies in eV, lattice constant ``a`` in Å, ``kx a, ky a`` the Bloch phases)::

    xi_k    = -2 t (cos kx a + cos ky a) - 4 t' cos kx a cos ky a - mu
    Delta_k = Delta0                                  (pairing "s")
    Delta_k = Delta0 / 2 (cos kx a - cos ky a)        (pairing "d"; |Delta| = Delta0 at (pi/a, 0))
    H(k)    = [[xi_k, Delta_k], [Delta_k, -xi_k]]     Nambu spinor (c_{k up}, c^dagger_{-k down})

One impurity on the site at the origin, with Nambu matrix ``V_imp`` (``scatterer``):

- ``"potential"``: ``V sum_s n_s``  ->  ``V tau_3`` (time-reversal invariant);
- ``"magnetic"``: a classical spin along z, ``J S (n_up - n_down)``  ->  ``V tau_0`` with
  ``V = J S`` (in this reduced basis ``n_down = 1 - c_down c^dagger_down``, so the exchange
  term is the identity up to a constant). Spin-up electrons see ``+V``.

Lattice Green's function and T-matrix (:mod:`.lattice_greens`; the normal-state band is
the square lattice's of :mod:`.tight_binding`)::

    G(R, E) = (1/N²) sum_k exp(i k.R) (E + i eta - H(k))^-1
    T(E)    = V_imp (1 - G(0, E) V_imp)^-1
    delta rho(R, E) = -(1/pi) Im [G(R) T G(-R)]_11       (electron part, spin up)
    rho0(E)         = -(1/pi) Im G(0, E)_11              (clean, the same on every site)

For a potential scatterer the spin-down electron LDOS equals the spin-up one, so the
ratio ``delta rho / rho0`` is also that of the spin-summed LDOS. For a magnetic scatterer
the ``_11`` component is the LDOS of spin-up electrons (spin along the impurity spin),
i.e. what a spin-polarised tip would measure; the spin-down part would be
``-(1/pi) Im [G T G]_22`` at ``-E`` and is not included.

Continuous coordinates: every site carries an orbital amplitude ``w`` (:mod:`.orbitals`,
by default the square root of a normalised Gaussian of width ``orbital_sigma``), and the
kernel is the electron part of the **continuum LDOS** (``projection="continuum"``, the
default; :mod:`.continuum`)::

    delta rho(r) = -(1/pi) Im sum_{R, R'} w(r - R) [G(R) T G(-R')]_11 w(r - R')
    K(r)         = a² delta rho(r) / rho0,   rho0 = -(1/pi) Im sum_D G(D)_11 S(D)

(``S`` the orbitals' overlap; ``rho0 / a²`` is the clean electron continuum LDOS averaged
over space). ``projection="site"`` keeps the diagonal ``R = R'`` only::

    K(x, y) = sum_{|R| <= reach} [delta rho(R) / rho0] a² g_sigma(r - R),   rho0 = -(1/pi) Im G(0, E)_11

with ``g_sigma = |w|²`` the normalised 2D Gaussian; it is the continuum LDOS when
neighbouring orbitals do not overlap. Either way ``K`` is ``delta rho / rho0`` relative to
the spatially averaged clean (electron) LDOS at the same energy. Inside a hard s-wave gap
``rho0`` comes from ``eta`` alone, and ``K`` is correspondingly large.

Finite k-grid: ``G`` is computed on an ``N x N`` grid, i.e. for a periodic supercell of
``N a``: the scatterer has images at ``N a (m1, m2)``. At a site ``R`` the error is led by
the cross term ``G(R) T G(-R + N a m)``, first order in the propagator from the nearest
image, which decays as ``exp(-|r| / l)`` with ``l = v_max / eta`` (``v_max``: the band's
largest group velocity, eV Å). The automatic ``N`` therefore makes the supercell exceed
twice the reach plus a margin: ``N a >= 2 reach + max(3 l, 10 sigma + 4 a)``, which keeps
the error on the kept sites at 1e-4 to 1e-3 of the peak in tests (more where flat, nested
pieces of the constant-energy contour focus the propagator; ~1e-2 with ``l`` for ``3 l``). A
smaller explicit ``kgrid`` (at least ``2 (reach + 5 sigma) + 4 a`` over ``a``) is allowed and
trades that accuracy for speed; sums over q-space (Fourier transforms of
:meth:`BdGKernel.site_values`) are the k-grid estimate of ``delta rho(q)`` at any ``N``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from scipy.optimize import brentq
from scipy.special import i0e

from .base import Kernel
from .continuum import (DEFAULT_PROJECTION, PROJECTION_PARAMS, clean_ldos_mean, continuum_ldos,
                        continuum_ldos_grid, projection_fields, site_ldos)
from .lattice_greens import (LatticePropagator, clean_ldos, delta_site_ldos, even_fast_size,
                             greens_function, site_legs, site_positions, t_matrix)
from .tight_binding import square_band, square_max_velocity

__all__ = ["BdGKernel", "OctetVectors", "octet_vectors", "PAIRINGS", "SCATTERERS"]

#: Gap functions: ``"s"`` (isotropic) and ``"d"`` (d_{x^2-y^2}).
PAIRINGS = ("s", "d")
#: Scatterers: ``"potential"`` (``V tau_3``) and ``"magnetic"`` (``V tau_0``, spin along z).
SCATTERERS = ("potential", "magnetic")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


#: Scatterer matrices in the Nambu basis: tau_3 and tau_0.
_NAMBU = {"potential": _read_only(np.diag([1.0, -1.0])), "magnetic": _read_only(np.eye(2))}


def _gap(cx, cy, delta0: float, pairing: str):
    # Delta = Delta0 (s) or Delta0/2 (cos kx a - cos ky a) (d)
    if pairing == "s":
        return np.full(np.broadcast(cx, cy).shape, float(delta0))
    return 0.5 * delta0 * (cx - cy)


def _bdg_hamiltonian(n: int, t: float, t_prime: float, mu: float, delta0: float,
                     pairing: str) -> np.ndarray:
    """Nambu Bloch Hamiltonian ``(n, n, 2, 2)`` on lattice_greens' grid of phases."""
    phase = 2.0 * np.pi * np.arange(n) / n
    cx = np.cos(phase)[:, None]
    cy = np.cos(phase)[None, :]
    xi = square_band(cx, cy, t, t_prime, mu)
    gap = np.broadcast_to(_gap(cx, cy, delta0, pairing), xi.shape)
    hk = np.empty((n, n, 2, 2))
    hk[..., 0, 0] = xi
    hk[..., 1, 1] = -xi
    hk[..., 0, 1] = gap
    hk[..., 1, 0] = gap
    return hk


def _minimum_kgrid(reach: float, a: float, orbital_sigma: float) -> int:
    """Smallest ``N`` with ``N a >= 2 (reach + 5 sigma) + 4 a`` (each kept site's orbital
    is inside the supercell and nearer to the scatterer than to its images)."""
    return int(math.ceil(2.0 * (reach + 5.0 * orbital_sigma) / a)) + 4


#: The automatic k-grid refuses to grow beyond this (memory ~ 100 N² bytes).
MAX_AUTO_KGRID = 4096


def _auto_kgrid(reach: float, a: float, orbital_sigma: float, eta: float, t: float,
                t_prime: float) -> int:
    # N a >= 2 reach + max(3 v_max / eta, 10 sigma + 4 a)
    decay = square_max_velocity(t, t_prime, a) / eta
    span = 2.0 * reach + max(3.0 * decay, 10.0 * orbital_sigma + 4.0 * a)
    n = even_fast_size(max(int(math.ceil(span / a)), _minimum_kgrid(reach, a, orbital_sigma)))
    if n > MAX_AUTO_KGRID:
        raise ValueError(
            f"the propagators decay over v/eta = {decay:.0f} Å: a supercell with the "
            f"scatterer's images far enough needs a {n} x {n} k-grid (> {MAX_AUTO_KGRID}); "
            "raise eta or give kgrid explicitly")
    return n


def _finite(name: str, value: Any, ok) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(value) and ok(value)):
        raise ValueError(f"{name} out of range: {value!r}")
    return value


class BdGKernel(Kernel):
    """Bogoliubov QPI around one scatterer in an s- or d-wave superconductor (BdG T-matrix).

    One band on the square lattice, Nambu basis ``(c_{k up}, c^dagger_{-k down})``; see the
    module docstring for the Hamiltonian, the scatterer matrices and the normalisation.
    Values are ``delta rho / rho0``: the electron (spin-up) LDOS change relative to the
    spatially averaged clean electron LDOS at the same energy.

    Parameters
    ----------
    energy : float
        Bias energy ``E`` (eV, relative to the Fermi level).
    pairing : {"d", "s"}
        Gap function: ``"d"`` is ``Delta0/2 (cos kx a - cos ky a)``, ``"s"`` is ``Delta0``.
    delta0 : float
        Gap amplitude ``Delta0`` (eV, >= 0); for ``"d"`` the gap at ``(pi/a, 0)``.
    scatterer : {"potential", "magnetic"}
        ``"potential"``: ``V tau_3``; ``"magnetic"``: ``V tau_0`` (classical spin along z,
        ``V = J S``).
    potential : float
        Scattering strength ``V`` (eV); 0 gives a zero kernel.
    t, t_prime, mu : float
        Nearest- and next-nearest-neighbour hopping and chemical potential (eV), ``t > 0``.
        The defaults (``t = 0.15``, ``t' = -0.3 t``, ``mu = -t``) give a hole-like Fermi
        surface around ``(pi, pi)`` at about 14.5 % hole doping with the antinodal band
        at -30 meV, like optimally doped Bi2Sr2CaCu2O8.
    eta : float
        Broadening (eV, > 0): ``E -> E + i eta``.
    a : float
        Lattice constant (Å); 3.8 Å is the Cu-Cu distance of the cuprates.
    orbital_sigma : float
        Width (Å) of the orbital that carries each site to continuous coordinates (the
        Gaussian density's ``sigma``, or the Slater orbital's decay length).
    reach : float
        The pattern is kept on sites ``|R| <= reach`` (Å) and is zero beyond
        (:attr:`extent`).
    kgrid : int, optional
        k-grid size ``N``. Default: the smallest convenient even ``N`` with
        ``N a >= 2 reach + max(3 v_max / eta, 10 orbital_sigma + 4 a)`` (module docstring);
        an explicit value must give ``N a >= 2 (reach + 5 orbital_sigma) + 4 a``.
    projection, orbital, orbital_file, orbital_pitch
        As for :class:`~.lattice.LatticeKernel`: the continuum LDOS (default) or the site
        projection; the orbital amplitude.

    Examples
    --------
    >>> K = BdGKernel(0.02, pairing="d", reach=30.0)
    >>> K.kgrid, K.lattice.tolist()
    (378, [[3.8, 0.0], [0.0, 3.8]])
    >>> K.evaluate([0.0, 3.8], [0.0, 0.0]).shape
    (2,)
    >>> K == BdGKernel(**{k: v for k, v in K.params().items() if k != "model"})
    True
    """

    name = "bdg"
    scattering = ("born", "full")
    extent_parameter = "reach"
    #: records from before the continuum projection (issue 14) were made with the site one
    recorded_before = {"projection": "site"}
    #: C4 about the scatterer's site for either gap: a rotation by 90° maps the d-wave gap
    #: to minus itself, which the gauge change ``c -> i c`` (``tau_3``) undoes; ``tau_3``
    #: commutes with both scatterer matrices and leaves the electron (``_11``) part alone.
    rotational_symmetry = 4

    def __init__(
        self,
        energy: float = 0.02,
        *,
        pairing: str = "d",
        delta0: float = 0.04,
        scatterer: str = "potential",
        potential: float = 0.1,
        t: float = 0.15,
        t_prime: float = -0.045,
        mu: float = -0.15,
        eta: float = 0.004,
        a: float = 3.8,
        orbital_sigma: float = 1.0,
        reach: float = 150.0,
        kgrid: int | None = None,
        projection: str = DEFAULT_PROJECTION,
        orbital: str = "gaussian",
        orbital_file: str | None = None,
        orbital_pitch: float | None = None,
    ) -> None:
        if pairing not in PAIRINGS:
            raise ValueError(f"unknown pairing {pairing!r}; choose one of {PAIRINGS}")
        if scatterer not in SCATTERERS:
            raise ValueError(f"unknown scatterer {scatterer!r}; choose one of {SCATTERERS}")
        self.pairing = pairing
        self.scatterer = scatterer
        self.energy = _finite("energy", energy, lambda v: True)
        self.delta0 = _finite("delta0", delta0, lambda v: v >= 0)
        self.potential = _finite("potential", potential, lambda v: True)
        self.t = _finite("t", t, lambda v: v > 0)
        self.t_prime = _finite("t_prime", t_prime, lambda v: True)
        self.mu = _finite("mu", mu, lambda v: True)
        self.eta = _finite("eta", eta, lambda v: v > 0)
        self.a = _finite("a", a, lambda v: v > 0)
        self.orbital_sigma = _finite("orbital_sigma", orbital_sigma, lambda v: v > 0)
        self.reach = _finite("reach", reach, lambda v: v > 0)
        self.__dict__.update(projection_fields(projection, orbital, self.orbital_sigma,
                                               orbital_file, orbital_pitch))
        need = _minimum_kgrid(self.reach, self.a, self.orbital_sigma)
        if kgrid is None:
            self._kgrid_given = None
            self.kgrid = _auto_kgrid(self.reach, self.a, self.orbital_sigma, self.eta,
                                     self.t, self.t_prime)
        else:
            try:
                integral = not isinstance(kgrid, bool) and int(kgrid) == kgrid
            except (TypeError, ValueError):
                integral = False
            if not integral:
                raise ValueError(f"kgrid must be an integer, got {kgrid!r}")
            if int(kgrid) < need:
                raise ValueError(
                    f"kgrid {int(kgrid)} too small for reach {self.reach} Å: the supercell "
                    f"N a must exceed 2 (reach + 5 orbital_sigma) + 4 a, i.e. N >= {need}")
            self._kgrid_given = self.kgrid = int(kgrid)
        self._solution: dict[str, Any] | None = None

    # -- geometry ------------------------------------------------------------------------
    @property
    def lattice(self) -> np.ndarray:
        """Lattice vectors (rows, Å): ``a`` times the identity."""
        return self.a * np.eye(2)

    @property
    def extent(self) -> float:
        """Radius (Å) beyond which the kernel is zero (sites ``|R| > reach`` dropped)."""
        return self.reach

    # -- the T-matrix solution -----------------------------------------------------------
    def hamiltonian(self) -> np.ndarray:
        """Nambu Bloch Hamiltonian ``(N, N, 2, 2)`` on the phases ``2 pi (i1, i2) / N``."""
        return _bdg_hamiltonian(self.kgrid, self.t, self.t_prime, self.mu, self.delta0,
                                self.pairing)

    def greens_function(self) -> np.ndarray:
        """Clean Nambu ``G(R)`` ``(N, N, 2, 2)`` at the kernel's energy, indexed
        ``[n1 mod N, n2 mod N]`` (:mod:`.lattice_greens`); computed afresh on every call."""
        return greens_function(self.hamiltonian(), self.energy, self.eta)

    def impurity_potential(self) -> np.ndarray:
        """Scatterer's Nambu matrix ``V_imp`` ``(2, 2)`` (eV): ``V tau_3`` or ``V tau_0``."""
        return self.potential * _NAMBU[self.scatterer]

    def _clean_ldos(self, g0: np.ndarray) -> float:
        """``rho0`` per site: the clean electron LDOS averaged over space (with the
        orbitals' overlaps for the continuum projection, :mod:`.continuum`) times ``a²``."""
        orbital = self.orbital_model if self.projection == "continuum" else None
        return clean_ldos_mean(g0, self.lattice, np.zeros((2, 2)), [0], orbital, 1.0)

    def _cached(self) -> dict[str, Any]:
        if self._solution is None:
            g0 = self.greens_function()
            potential = self.impurity_potential()
            tm = t_matrix(g0, potential)
            drho = delta_site_ldos(g0, tm, orbitals=[0])[..., 0]
            rho0 = self._clean_ldos(g0)
            values = drho / rho0
            values.setflags(write=False)
            pos = site_positions(self.lattice, np.zeros((1, 2)), self.kgrid)[:, :, 0, :]
            pos.setflags(write=False)
            keep = np.hypot(pos[..., 0], pos[..., 1]) <= self.reach
            sol = {"values": values, "rho0": rho0, "positions": pos,
                   "kept_values": values[keep], "kept_positions": pos[keep]}
            if self.projection == "continuum":
                n = self.kgrid
                idx = np.nonzero(keep)
                cells = np.stack([np.where(i < (n + 1) // 2, i, i - n) for i in idx], axis=1)
                support = np.flatnonzero(np.any(potential != 0, axis=0)
                                         | np.any(potential != 0, axis=1))
                left, right = site_legs(g0, cells, np.zeros(len(cells), np.int64), support)
                # K = a² delta rho(r) / rho0 (rho0 per site)
                sol.update(left=left, right=right,
                           tmat=self.a ** 2 * tm[np.ix_(support, support)] / rho0)
            self._solution = sol
        return self._solution

    def site_values(self) -> np.ndarray:
        """``delta rho(R) / rho0`` on the whole ``N x N`` supercell (no ``reach`` cut),
        indexed ``[n1 mod N, n2 mod N]`` (scatterer at ``[0, 0]``); read-only, cached."""
        return self._cached()["values"]

    def site_positions(self) -> np.ndarray:
        """Positions (Å) ``(N, N, 2)`` of the sites of :meth:`site_values`, centred."""
        return self._cached()["positions"]

    @property
    def rho0(self) -> float:
        """The normalisation, states / eV / site: the clean electron LDOS averaged over
        space times ``a²`` (continuum projection: with the orbitals' overlaps,
        :mod:`.continuum`); for the site projection ``-(1/pi) Im G_11(0, E)``."""
        return self._cached()["rho0"]

    def clean_ldos(self) -> float:
        """The former name of :attr:`rho0` (``FutureWarning``)."""
        warnings.warn("BdGKernel.clean_ldos() is now the property BdGKernel.rho0; the old "
                      "name will be removed", FutureWarning, stacklevel=2)
        return self.rho0

    def propagator(self) -> LatticePropagator:
        """The clean propagator and normalisation for many impurities (one FFT; reuse it):
        sites carry ``a² g_sigma``, so their weight is ``a² / rho0`` with ``rho0`` per site."""
        g0 = self.greens_function()
        rho0 = self._clean_ldos(g0)  # states / eV / site
        if not rho0 > 0:
            raise ValueError(f"no clean density of states at E = {self.energy} eV")
        return LatticePropagator(
            g0=g0, potential=np.array(self.impurity_potential(), complex),
            lattice=np.array(self.lattice, float), tau=np.zeros((2, 2)), orbitals=(0,),
            weight=float(self.a ** 2 / rho0), site_area=self.a ** 2,
            sigma=self.orbital_sigma, cut=self.reach, reach=self.reach,
            orbital=self.orbital_model, projection=self.projection)

    def multiple_scattering(self, grid):
        """Images with every scattering path between impurities on lattice sites
        (:mod:`.lattice_multiple`; a strength scales each site's t-matrix)."""
        from .lattice_multiple import image_renderer

        return image_renderer(self, grid)

    @classmethod
    def family_parameters(cls, rng: np.random.Generator, fov: float) -> dict[str, Any]:
        """A cuprate-like d-wave superconductor (or an s-wave one) at an energy inside the
        gap, potential or magnetic scatterer, band filling drawn; reach covers the field."""
        pairing = "d" if rng.random() < 0.75 else "s"
        delta0 = round(float(rng.uniform(0.025, 0.05)), 4)
        return {"model": "bdg", "pairing": pairing, "delta0": delta0,
                "energy": round(float(rng.uniform(0.2, 0.8)) * delta0, 4),
                "scatterer": "potential" if rng.random() < 0.7 else "magnetic",
                "potential": round(float(rng.uniform(0.05, 0.5)), 3),
                "mu": round(float(rng.uniform(-0.2, -0.1)), 4),
                "reach": float(np.ceil(fov + 5.0))}

    def spectrum(self, energies, site=(0, 0)) -> tuple[np.ndarray, np.ndarray]:
        """Electron LDOS change and clean LDOS at one site versus energy.

        Parameters
        ----------
        energies : array_like
            Energies (eV).
        site : (int, int)
            Cell ``(n1, n2)`` relative to the scatterer.

        Returns
        -------
        delta_rho, rho0 : ndarray
            ``delta rho(R, E)`` and ``rho0(E)`` in states / eV / site, like ``energies``.
        """
        energies = np.asarray(energies, dtype=float)
        n = self.kgrid
        n1, n2 = (int(i) for i in site)
        hk = self.hamiltonian()
        v = self.potential * _NAMBU[self.scatterer]
        out = np.empty((2,) + energies.shape)
        for idx, e in np.ndenumerate(energies):
            g0 = greens_function(hk, float(e), self.eta)
            tm = t_matrix(g0, v)
            # delta rho(R) = -(1/pi) Im [G(R) T G(-R)]_11 at the one site R
            dg = g0[n1 % n, n2 % n] @ tm @ g0[-n1 % n, -n2 % n]
            out[(0,) + idx] = -dg[0, 0].imag / np.pi
            out[(1,) + idx] = clean_ldos(g0, orbitals=[0])
        return out[0], out[1]

    # -- Kernel interface ----------------------------------------------------------------
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``K(x, y)`` at continuous coordinates (Å), scatterer at the origin."""
        sol = self._cached()
        if self.projection == "site":
            # K = a² sum_{|R| <= reach} (delta rho(R) / rho0) g_sigma(r - R)
            return self.a ** 2 * site_ldos(sol["kept_positions"], sol["kept_values"], x, y,
                                           self.orbital_model)
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        return continuum_ldos(np.stack([x, y], axis=-1), sol["kept_positions"], sol["left"],
                              sol["tmat"], sol["right"], self.orbital_model)

    def evaluate_grid(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``K`` on the grid ``x`` × ``y`` (Å), ``[iy, ix]``; the continuum projection by
        its fast separable sums (:func:`.continuum.continuum_ldos_grid`)."""
        if self.projection == "site":
            return super().evaluate_grid(x, y)
        sol = self._cached()
        return continuum_ldos_grid(x, y, sol["kept_positions"], sol["left"], sol["tmat"],
                                   sol["right"], self.orbital_model)

    def azimuthal_average(self, r: np.ndarray) -> np.ndarray:
        """Azimuthal average of ``K`` at distance ``r`` (Å), in closed form: the angular
        average of an orbital ``g_s`` at distance ``d`` from the scatterer is
        ``exp(-(r - d)²/2s²) I0e(r d/s²) / (2 pi s²)`` (orbitals not cut off at ``5 s``)
        for the site projection with Gaussian orbitals; by sampling circles otherwise."""
        if self.projection != "site" or self.orbital != "gaussian":
            return super().azimuthal_average(r)
        sol = self._cached()
        d = np.hypot(sol["kept_positions"][:, 0], sol["kept_positions"][:, 1])
        shells, inverse = np.unique(np.round(d, 9), return_inverse=True)
        weight = np.bincount(inverse.ravel(), weights=sol["kept_values"], minlength=shells.size)
        r = np.asarray(r, dtype=float)
        flat = r.ravel()
        s2 = self.orbital_sigma ** 2
        out = np.empty(flat.size)
        chunk = max(1, 4_000_000 // max(shells.size, 1))
        for start in range(0, flat.size, chunk):
            rr = flat[start:start + chunk, None]
            # sum_d w_d a²/(2 pi s²) exp(-(r - d)²/2s²) I0e(r d/s²)
            g = np.exp(-((rr - shells) ** 2) / (2 * s2)) * i0e(rr * shells / s2)
            out[start:start + chunk] = g @ weight
        return (self.a ** 2 / (2 * np.pi * s2) * out).reshape(r.shape)

    def default_step(self) -> float:
        """Table spacing (Å): a tenth of the orbital width (cubic convolution in such a
        table is within ~1e-4 of the peak; a fifth gives ~1e-3)."""
        return self.orbital_sigma / 10.0 if self.orbital == "gaussian" \
            else self.orbital_model.step()

    def params(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "energy": self.energy,
            "pairing": self.pairing,
            "delta0": self.delta0,
            "scatterer": self.scatterer,
            "potential": self.potential,
            "t": self.t,
            "t_prime": self.t_prime,
            "mu": self.mu,
            "eta": self.eta,
            "a": self.a,
            "orbital_sigma": self.orbital_sigma,
            "reach": self.reach,
            "kgrid": self._kgrid_given,
            **{key: getattr(self, key) for key in PROJECTION_PARAMS},
        }


# -- octet model ---------------------------------------------------------------------------
@dataclass(frozen=True)
class OctetVectors:
    """Banana tips and octet scattering vectors of a d-wave superconductor at one energy.

    ``tips[0] = (kx, ky)`` is the tip in the first quadrant on the ``(pi/a, 0)`` side of the
    node (``kx > ky > 0``); the others are, in order, ``(-kx, ky), (-ky, kx), (-ky, -kx),
    (kx, -ky), (-kx, -ky), (ky, -kx), (ky, kx)``, and ``q[j - 1] = tips[0] - tips[j]``
    folded into the first Brillouin zone ``[-pi/a, pi/a)`` is ``q_j``. All in 1/Å.
    """

    energy: float  # eV
    tips: np.ndarray  # (8, 2)
    q: np.ndarray  # (7, 2): q1 .. q7

    def as_dict(self) -> dict[str, tuple[float, float]]:
        """``{"q1": (qx, qy), ...}``."""
        return {f"q{j + 1}": (float(v[0]), float(v[1])) for j, v in enumerate(self.q)}


def octet_vectors(model: BdGKernel | Mapping[str, Any], energy: float | None = None
                  ) -> OctetVectors:
    """The eight banana tips and seven octet vectors ``q1 .. q7`` of a d-wave model.

    The contour ``E_k = sqrt(xi_k² + Delta_k²) = E`` (``0 < E < max |Delta|`` on the Fermi
    surface) is a banana around each node; its tips, where the joint density of states is
    largest, lie on the Fermi surface ``xi_k = 0`` where ``|Delta_k| = E``. With the tip
    ``k1 = (kx, ky)`` (first quadrant, ``kx > ky``) the eight tips are ``(±kx, ±ky)`` and
    ``(±ky, ±kx)``; the octet vectors join ``k1`` to the other seven (labels after McElroy
    et al., Nature 422, 592 (2003), and Wang & Lee, PRB 67, 020511 (2003); each folded
    into the first zone, i.e. equal to the difference up to a reciprocal lattice vector)::

        q1 = k1 - (-kx,  ky) = (2kx, 0)           sign-preserving
        q2 = k1 - (-ky,  kx) = (kx + ky, ky - kx) sign-reversing
        q3 = k1 - (-ky, -kx) = (kx + ky, kx + ky) sign-reversing
        q4 = k1 - ( kx, -ky) = (0, 2ky)           sign-preserving
        q5 = k1 - (-kx, -ky) = (2kx, 2ky)         sign-preserving
        q6 = k1 - ( ky, -kx) = (kx - ky, kx + ky) sign-reversing
        q7 = k1 - ( ky,  kx) = (kx - ky, ky - kx) sign-reversing

    (q2 and q6 are related by a 90° rotation; the others are distinct families.)

    Parameters
    ----------
    model : BdGKernel or mapping
        The kernel, or its :meth:`~BdGKernel.params` (band, gap and ``a`` are used).
    energy : float, optional
        ``E`` (eV); default the model's energy. Only ``|E|`` matters.

    Returns
    -------
    OctetVectors

    Examples
    --------
    >>> oc = octet_vectors({"pairing": "d", "delta0": 0.04}, 0.02)
    >>> oc.tips.shape, oc.q.shape
    ((8, 2), (7, 2))
    >>> bool(np.allclose(oc.q[6], oc.tips[0] - oc.tips[7]))   # q7: the same banana's tips
    True
    """
    params = dict(model.params() if isinstance(model, BdGKernel) else model)
    if params.get("model", "bdg") != "bdg":
        raise ValueError(f"octet vectors need a 'bdg' model, got {params['model']!r}")
    defaults = BdGKernel.__init__.__kwdefaults__
    pick = {k: params.get(k, defaults[k]) for k in ("pairing", "delta0", "t", "t_prime", "mu",
                                                     "a")}
    if pick["pairing"] != "d":
        raise ValueError(f"octet vectors need d-wave pairing, got {pick['pairing']!r}")
    t = _finite("t", pick["t"], lambda v: v > 0)
    tp = _finite("t_prime", pick["t_prime"], lambda v: True)
    if not abs(tp) < t / 2:
        raise ValueError(f"octet vectors need |t_prime| < t/2, got t={t}, t_prime={tp}")
    mu = _finite("mu", pick["mu"], lambda v: True)
    delta0 = _finite("delta0", pick["delta0"], lambda v: v > 0)
    a = _finite("a", pick["a"], lambda v: v > 0)
    if energy is None:
        if "energy" not in params:
            raise ValueError("give the energy (the model's params have none)")
        energy = params["energy"]
    e = abs(_finite("energy", energy, lambda v: v != 0))

    # Fermi surface at fixed kx: xi = 0 is linear in cos ky a (2t + 4t' cos kx a > 0)
    def cos_ky(theta):
        cx = np.cos(theta)
        return -(2 * t * cx + mu) / (2 * t + 4 * tp * cx)

    def on_diagonal(theta):
        return float(square_band(np.cos(theta), np.cos(theta), t, tp, mu))

    if on_diagonal(0.0) * on_diagonal(np.pi) > 0:
        raise ValueError("the Fermi surface does not cross the zone diagonal: no d-wave nodes")
    node = brentq(on_diagonal, 0.0, np.pi, xtol=1e-15)
    if abs(cos_ky(np.pi)) <= 1:
        end = np.pi  # the Fermi surface meets the zone face kx a = pi
    elif cos_ky(np.pi) > 1:
        end = brentq(lambda th: cos_ky(th) - 1.0, node, np.pi, xtol=1e-15)  # meets ky = 0
    else:
        raise ValueError("unsupported Fermi-surface topology for the octet model")

    def gap_on_fs(theta):
        return abs(float(_gap(np.cos(theta), cos_ky(theta), delta0, "d")))

    # first crossing of |Delta| = E going from the node towards the antinode
    theta = np.linspace(node, end, 2049)
    gaps = np.array([gap_on_fs(th) for th in theta])
    above = np.nonzero(gaps >= e)[0]
    if above.size == 0:
        raise ValueError(f"|energy| {e} eV is not below the largest gap on the Fermi surface "
                         f"({gaps.max():.4g} eV): no banana tips")
    i = above[0]
    kx = brentq(lambda th: gap_on_fs(th) - e, theta[i - 1], theta[i], xtol=1e-15)
    ky = float(np.arccos(np.clip(cos_ky(kx), -1.0, 1.0)))
    tips = np.array([[kx, ky], [-kx, ky], [-ky, kx], [-ky, -kx],
                     [kx, -ky], [-kx, -ky], [ky, -kx], [ky, kx]]) / a
    zone = 2 * np.pi / a
    q = tips[0] - tips[1:]
    q = q - zone * np.floor(q / zone + 0.5)  # fold into [-pi/a, pi/a)
    return OctetVectors(float(energy), tips, q)
