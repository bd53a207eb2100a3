"""Quasiparticle interference on a crystal: one impurity in a tight-binding model.

Physics (the model of :mod:`.tight_binding`, the conventions of :mod:`.lattice_greens`).
One impurity
with on-site potential ``V`` on orbital ``c`` of cell 0 gives, with ``z = E + i eta``::

    T          = V (1 - G(0) V)^-1,                  V = potential |0 c><0 c|
    delta rho_a(R) = -(1/pi) Im [G(R) T G(-R)]_aa          (states / eV, per orbital)
    rho0       = -(1/pi) Im Tr G(0) / A_cell               (states / eV / Å²)

Every orbital carries an amplitude ``w(r)`` (:mod:`.orbitals`; by default
``w = sqrt(g)``, ``g`` the normalised Gaussian density of width ``orbital_sigma``, which
also stands for the tip's lateral resolution). The kernel at continuous ``r`` (Å) is the
**continuum LDOS** (``projection="continuum"``, the default; :mod:`.continuum`, after
Kreisel et al., PRL 114, 217002 (2015))::

    delta rho(r) = -(1/pi) Im sum_{R a, R' b} w_a(r - R - tau_a) [G(R) T G(-R')]_ab
                                               w_b(r - R' - tau_b)
    K(r)         = delta rho(r) / rho0

with ``rho0`` the clean continuum LDOS averaged over space (the same sum with ``G(R - R')``,
which leaves the orbitals' overlaps ``S``: ``rho0 = -(1/pi) Im sum_ab sum_D G(D)_ab
S(D + tau_a - tau_b) / A_cell``). The interference between overlapping orbitals is part of
what the tip measures: it puts the Fourier weight of the pattern at ``2 k_F``, where
measured QPI shows it. ``projection="site"`` keeps only ``R = R', a = b``, a blurred
lattice LDOS::

    K(r) = sum_{R,a} delta rho_a(R) |w(r - R - tau_a)|² / rho0,   rho0 = -(1/pi) Im Tr G(0) / A_cell

It equals the continuum when neighbouring orbitals do not overlap (``orbital_sigma`` below
~0.15 of the distance between orbitals) and otherwise drops 30-70 % of the map (square
lattice, ``a = 2.5 Å``, ``sigma = 0.8 Å``; more than the map itself on graphene); being
periodic in q, its Fourier transform puts most weight on the alias ``G - 2 k_F``. Both
normalisations are the same as the continuum :class:`~.friedel.FriedelKernel`'s
(``rho0 = m*/2 pi hbar^2`` for the site projection near the square band's bottom; the
continuum one adds the overlaps, ``sum_d S(d) J0(k_F d)``).

Finite k-grid: ``N x N`` phases make the crystal an ``N a1 x N a2`` torus, so the pattern
is the sum of the impurity's own and of its periodic images (Poisson summation). Within
``reach`` of the impurity the images are farther away than the impurity itself as long
as the shortest supercell translation exceeds ``2 (reach + c)``, ``c`` an orbital's reach
(8 ``orbital_sigma`` for the continuum's Gaussian amplitudes, 5 for the site projection's
densities). They still
add to ``G``: ``G_N(R) = sum_L G(R + L)`` over the supercell translations ``L``, and
``G(R) ~ exp(-eta |R| / hbar v_F) / sqrt|R|``, so ``delta rho ~ G(R) T G(-R)`` at ``r`` is
off by ``~ 2 exp(-eta (|L| - 2 r) / hbar v_F)`` of itself. The automatic ``N`` therefore
adds ``ln(100)`` decay lengths ``hbar v_F / eta`` to ``2 (reach + c)``
(``v_F`` the largest group velocity at the energy): images at ~1 % of the pattern at
``reach``. A small ``eta`` needs a large ``N``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .base import Kernel
from .continuum import (DEFAULT_PROJECTION, PROJECTION_PARAMS, clean_ldos_mean, continuum_ldos,
                        continuum_ldos_grid, projection_fields, site_ldos)
from .lattice_greens import (LatticePropagator, delta_site_ldos, fft_size, greens_function,
                             orbital_reach, site_legs, t_matrix)
from .tight_binding import TightBinding, _check_positive, _is_real

__all__ = ["LatticeKernel"]

#: Tolerated relative contribution of the periodic images at ``reach`` (automatic k-grid).
_WRAP_TOLERANCE = 0.01
#: Largest Green's function array (N² m² complex entries) the automatic k-grid may use.
_MAX_GRID_ENTRIES = 2**22


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
    t, t_prime, a : float, optional
        Hopping ``t``, next-nearest hopping ``t'`` (square only; formerly ``tp``) in eV and lattice
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
        Width (Å) of the orbitals: the Gaussian density's ``sigma``, or the Slater
        orbital's decay length.
    reach : float
        The pattern is exact (up to ~1 % from the k-grid's periodic images) out to this
        distance (Å) from the impurity; only orbitals within ``reach + c`` are kept (``c``
        an orbital's reach), so it falls to zero between there and ``reach + 2 c``.
    kgrid : int, optional
        ``N`` of the ``N x N`` k-grid instead of the automatic choice; the supercell
        must satisfy ``N |a_min| > 2 (reach + c)``.
    projection : {"continuum", "site"}
        The continuum LDOS (default) or the site projection (module docstring).
    orbital : {"gaussian", "slater", "image"}
        The orbital amplitude (:mod:`.orbitals`): the square root of a normalised
        Gaussian density (default), an exponential s orbital, or an image.
    orbital_file : str, optional
        The ``.npy`` amplitude image of ``orbital="image"``, centred on the site.
    orbital_pitch : float, optional
        The pixel pitch (Å) of the orbital image.

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
    scattering = ("born", "full")
    extent_parameter = "reach"
    renamed = {"tp": "t_prime"}
    #: records from before the continuum projection (issue 14) were made with the site one
    recorded_before = {"projection": "site"}

    def __init__(
        self,
        structure: str = "square",
        energy: float = 0.0,
        *,
        t: float | None = None,
        t_prime: float | None = None,
        mu: float = 0.0,
        a: float | None = None,
        hopping_file: str | Path | None = None,
        eta: float = 0.02,
        potential: float = 1.0,
        impurity_orbital: int = 0,
        orbital_sigma: float = 0.8,
        reach: float = 150.0,
        kgrid: int | None = None,
        projection: str = DEFAULT_PROJECTION,
        orbital: str = "gaussian",
        orbital_file: str | Path | None = None,
        orbital_pitch: float | None = None,
    ) -> None:
        for key, value in (("energy", energy), ("mu", mu), ("potential", potential),
                           ("t", t), ("t_prime", t_prime)):
            if value is not None and not _is_real(value):
                raise ValueError(f"{key} must be a finite number (eV), got {value!r}")
        if a is not None:
            _check_positive("a", a)
        for key, value in (("eta", eta), ("orbital_sigma", orbital_sigma), ("reach", reach)):
            _check_positive(key, value)
        if structure == "square":
            t = 1.0 if t is None else t
            t_prime = 0.0 if t_prime is None else t_prime
            a = 2.5 if a is None else a
            model = TightBinding.square(float(t), float(t_prime), float(mu), float(a))
        elif structure == "honeycomb":
            if t_prime not in (None, 0, 0.0):
                raise ValueError("t_prime (next-nearest hopping) is not part of the honeycomb "
                                 "model")
            t = 2.7 if t is None else t
            t_prime = None
            a = 2.46 if a is None else a
            model = TightBinding.honeycomb(float(t), float(mu), float(a))
        elif structure == "file":
            if hopping_file is None:
                raise ValueError('structure="file" needs hopping_file (a JSON hopping file)')
            given = [k for k, v in (("t", t), ("t_prime", t_prime), ("a", a)) if v is not None]
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
        self.t_prime = None if t_prime is None else float(t_prime)
        self.mu = float(mu)
        self.a = None if a is None else float(a)
        self.hopping_file = None if hopping_file is None else str(hopping_file)
        self.eta = float(eta)
        self.potential = float(potential)
        self.impurity_orbital = int(impurity_orbital)
        self.orbital_sigma = float(orbital_sigma)
        self.reach = float(reach)
        self.__dict__.update(projection_fields(projection, orbital, self.orbital_sigma,
                                               orbital_file, orbital_pitch))
        self.tight_binding = model
        lattice = model.lattice.copy()
        lattice.setflags(write=False)
        self.lattice = lattice
        # sites that reach the points within ``reach`` through their orbital
        self._site_reach = self.reach + orbital_reach(self.orbital_model, self.projection)
        self._min_grid = math.floor(2 * self._site_reach / model.shortest_translation()) + 1
        if kgrid is not None:
            if isinstance(kgrid, bool) or not isinstance(kgrid, (int, np.integer)) \
                    or kgrid < self._min_grid:
                raise ValueError(
                    f"kgrid must be an integer >= {self._min_grid}: the supercell N |a_min| "
                    f"must exceed 2 (reach + the orbital's reach) = {2 * self._site_reach:.4g} Å, "
                    f"got {kgrid!r}")
        self.kgrid = None if kgrid is None else int(kgrid)

    # -- k-grid and site values ----------------------------------------------------------
    @property
    def rotational_symmetry(self) -> int:
        """The rotations about the scatterer's position (the origin) that map the crystal
        and the impurity's orbital onto themselves, from the lattice and the hoppings
        (:meth:`TightBinding.rotational_symmetry`): 4 on the square lattice, 3 on the
        honeycomb lattice (a site of graphene has C3, not C6: a rotation by 60° about it
        swaps the sublattices' positions), that of the file's model; 1 for an impurity
        orbital away from the origin (its pattern is off the kernel's centre)."""
        return self.tight_binding.rotational_symmetry(self.impurity_orbital)

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
        n = fft_size(max(self._min_grid,
                            math.ceil(wanted / self.tight_binding.shortest_translation())))
        limit = fft_size(self._min_grid)
        while True:  # the largest fast size within the memory budget
            bigger = fft_size(limit + 1)
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

    def _solution(self) -> dict[str, Any]:
        """Sites within the site reach, their ``delta rho / rho0``, and for the continuum
        the propagators to and from the impurity (:mod:`.continuum`); computed once per
        instance."""
        cached = self.__dict__.get("_solution_cache")
        if cached is not None:
            return cached
        model, n = self.tight_binding, self.n_k
        g0 = self.greens_function()
        potential = self.impurity_potential()
        # delta rho_a(R) = -(1/pi) Im [G(R) T G(-R)]_aa, T = V (1 - G(0) V)^-1; states / eV
        tm = t_matrix(g0, potential)
        drho = delta_site_ldos(g0, tm)  # (N, N, m)
        orbital = self.orbital_model if self.projection == "continuum" else None
        rho0 = clean_ldos_mean(g0, model.lattice, model.tau, range(model.n_orbitals), orbital,
                               model.cell_area)  # states / eV / Å²
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
        result = {"positions": pos[keep], "values": values[keep], "rho0": float(rho0)}
        if orbital is not None:
            support = np.flatnonzero(np.any(potential != 0, axis=0)
                                     | np.any(potential != 0, axis=1))
            which = np.nonzero(keep)
            cell_n = np.stack([n1[which[0]], n2[which[0]]], axis=1)
            left, right = site_legs(g0, cell_n, which[1], support)
            result.update(left=left, right=right,
                          tmat=tm[np.ix_(support, support)] / rho0)
        del g0
        for arr in result.values():
            if isinstance(arr, np.ndarray):
                arr.setflags(write=False)
        self.__dict__["_solution_cache"] = result
        return result

    @property
    def rho0(self) -> float:
        """Clean LDOS averaged over space, states / eV / Å² (the normalisation): with the
        orbitals' overlaps for the continuum projection (:mod:`.continuum`),
        ``-(1/pi) Im Tr G(0) / A_cell`` for the site projection."""
        return self._solution()["rho0"]

    def greens_function(self) -> np.ndarray:
        """Clean ``G(R)`` ``(N, N, m, m)`` at the kernel's energy (:attr:`n_k`, conventions of
        :mod:`.lattice_greens`); computed afresh on every call (not cached)."""
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
        the site reach (``reach`` plus an orbital's reach): the site LDOS change, the
        weights of the orbital densities in the site projection."""
        sol = self._solution()
        return sol["positions"], sol["values"]

    def propagator(self) -> LatticePropagator:
        """The clean propagator and normalisation for many impurities (one FFT; reuse it):
        site values are ``delta rho / rho0`` with ``rho0`` per Å², as in :meth:`site_values`."""
        g0 = self.greens_function()
        model = self.tight_binding
        orbital = self.orbital_model if self.projection == "continuum" else None
        # rho0 per Å², as the kernel (with the overlaps for the continuum)
        rho0 = clean_ldos_mean(g0, model.lattice, model.tau, range(model.n_orbitals), orbital,
                               model.cell_area)
        if not rho0 > 0:
            raise ValueError(f"no clean density of states at E = {self.energy} eV")
        return LatticePropagator(
            g0=g0, potential=np.array(self.impurity_potential(), complex),
            lattice=np.array(self.lattice, float), tau=np.array(model.tau, float),
            orbitals=tuple(range(model.n_orbitals)), weight=float(1.0 / rho0), site_area=1.0,
            sigma=self.orbital_sigma, cut=float(self._site_reach), reach=self.reach,
            orbital=self.orbital_model, projection=self.projection)

    def multiple_scattering(self, grid):
        """Images with every scattering path between impurities on lattice sites
        (:mod:`.lattice_multiple`; a strength scales each site's t-matrix)."""
        from .lattice_multiple import image_renderer

        return image_renderer(self, grid)

    @classmethod
    def family_parameters(cls, rng: np.random.Generator, fov: float) -> dict[str, Any]:
        """A square lattice (t = 1 eV, t' and filling drawn; cuprate- to free-electron-like
        Fermi surfaces) or a honeycomb lattice away from its Dirac point, lattice constant
        and orbital width drawn; reach covers the field (scatterer-pixel offsets up to fov)."""
        common = {"model": "lattice", "reach": float(np.ceil(fov + 5.0)),
                  "orbital_sigma": round(float(rng.uniform(0.6, 1.2)), 3),
                  "eta": round(float(rng.uniform(0.02, 0.06)), 4)}
        if rng.random() < 0.7:
            return {**common, "structure": "square", "t": 1.0,
                    "t_prime": round(float(rng.uniform(-0.35, 0.0)), 4),
                    "mu": round(float(rng.uniform(-3.0, 0.0)), 4),
                    "energy": round(float(rng.uniform(-0.3, 0.3)), 4),
                    "a": round(float(rng.uniform(2.5, 4.0)), 3)}
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return {**common, "structure": "honeycomb", "t": 2.7, "a": 2.46,
                "energy": round(sign * float(rng.uniform(0.3, 1.0)), 4)}

    # -- the kernel ----------------------------------------------------------------------
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``delta rho / rho0`` at continuous ``(x, y)`` (Å) around the impurity at 0."""
        sol = self._solution()
        if self.projection == "site":
            return site_ldos(sol["positions"], sol["values"], x, y, self.orbital_model)
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        return continuum_ldos(np.stack([x, y], axis=-1), sol["positions"], sol["left"],
                              sol["tmat"], sol["right"], self.orbital_model)

    def evaluate_grid(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``K`` on the grid ``x`` × ``y`` (regular axes, Å), ``[iy, ix]``: the continuum
        projection by its fast separable sums (:func:`.continuum.continuum_ldos_grid`)."""
        if self.projection == "site":
            return super().evaluate_grid(x, y)
        sol = self._solution()
        return continuum_ldos_grid(x, y, sol["positions"], sol["left"], sol["tmat"],
                                   sol["right"], self.orbital_model)

    def default_step(self) -> float:
        """The orbital's table step (``orbital_sigma / 6`` for Gaussians): cubic
        convolution (the 2D tables of :mod:`qpiset.forward`) then errs by ~1e-4 of the
        peak (bilinear: ~3e-3)."""
        return self.orbital_model.step()

    def params(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "structure": self.structure,
            "energy": self.energy,
            "t": self.t,
            "t_prime": self.t_prime,
            "mu": self.mu,
            "a": self.a,
            "hopping_file": self.hopping_file,
            "eta": self.eta,
            "potential": self.potential,
            "impurity_orbital": self.impurity_orbital,
            "orbital_sigma": self.orbital_sigma,
            "reach": self.reach,
            "kgrid": self.kgrid,
            **{key: getattr(self, key) for key in PROJECTION_PARAMS},
        }
