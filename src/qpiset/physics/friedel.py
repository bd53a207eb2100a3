"""Point scatterer in a two-dimensional free-electron gas (a Shockley surface state).

T-matrix form of the LDOS change around one s-wave scatterer at the origin::

    delta rho(r, E) = -(1/pi) Im[ G0(r, E) T(E) G0(r, E) ]
    G0(r, E)        = -i (m*/2 hbar^2) H0^(1)(k r),     k = sqrt(2 m* (E - E0 + i eta)) / hbar
    T(E)            = (i hbar^2 / m*) (exp(2 i delta) - 1)

(``T`` written through the s-wave phase shift ``delta``, which makes it unitary:
``Im(1/T) = -Im G0(0)``), which gives, relative to the clean LDOS ``rho0 = m*/(2 pi hbar^2)``::

    delta rho / rho0 = 1/2 Re[ (exp(2 i delta) - 1) H0^(1)(k r)^2 ]

(e.g. G. A. Fiete and E. J. Heller, Rev. Mod. Phys. 75, 933 (2003)). Far from the
scatterer this is ``~ -sin(2 k r + 2 delta - pi/2 ...)/(pi k r)``: Friedel oscillations with
period ``pi / k_F`` (15 Å on Cu(111)). ``G0`` diverges logarithmically at ``r -> 0``; the
measured pattern is regularised physically by the STM tip's finite lateral resolution,
a Gaussian of width ``tip_sigma`` (Å) convolved with ``delta rho``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from .base import RadialKernel, gaussian_blur_radial
from .constants import HBAR2_OVER_2ME
from .materials import MATERIALS
from .materials import material as lookup_material
from .renames import renamed_parameters

__all__ = ["FriedelKernel", "wavevector", "phase_shift_from_potential"]


@renamed_parameters(gamma="eta")
def wavevector(energy, mass: float, band_bottom: float, eta: float = 0.0):
    """Complex wave vector (1/Å) of a parabolic band at ``energy`` (eV, rel. E_F).

    ``hbar^2 k^2 / 2 m* = E - E0 + i eta``; the root with ``Im k >= 0`` (outgoing,
    decaying waves). ``eta`` (eV) is the quasiparticle broadening (lifetime ``hbar/2 eta``).

    Examples
    --------
    >>> print(f"{wavevector(0.0, 0.38, -0.44).real:.4f}")   # Cu(111) k_F, 1/Å
    0.2095
    """
    eps = np.asarray(energy, dtype=complex) - band_bottom + 1j * eta
    return np.sqrt(eps * mass / HBAR2_OVER_2ME)


def phase_shift_from_potential(potential: float, k: float, mass: float, k_cut: float) -> float:
    """s-wave phase shift of a contact potential ``V`` (eV Å²) in a 2D electron gas.

    ``1/T = 1/V - G0(0)`` with the on-site Green's function regularised by a momentum
    cut-off ``k_cut`` (1/Å): ``Re G0(0) = -(m*/2 pi hbar^2) ln((k_cut² - k²)/k²)``, and
    ``1/T = -(m*/2 hbar^2)(cot delta - i)``, so
    ``cot delta = -2 hbar^2/(m* V) - (1/pi) ln((k_cut² - k²)/k²)``.
    For weak ``V`` this is the Born limit ``delta ≈ -m* V / (2 hbar^2)``.
    """
    if not 0 < k < k_cut:
        raise ValueError(f"need 0 < k ({k:.4g}) < k_cut ({k_cut:.4g}) 1/Å")
    if potential == 0:
        return 0.0
    alpha = mass / (2 * HBAR2_OVER_2ME)  # m*/(2 hbar^2), in 1/(eV Å^2)
    cot = -1.0 / (alpha * potential) - math.log((k_cut**2 - k**2) / k**2) / math.pi
    delta = math.atan2(1.0, cot)  # in (0, pi); delta is defined modulo pi
    return delta - math.pi if delta > math.pi / 2 else delta


class FriedelKernel(RadialKernel):
    """Friedel oscillations around a point scatterer in a 2D surface state (T-matrix).

    Parameters
    ----------
    material : str, optional
        Surface-state preset (``"Cu(111)"``, ``"Ag(111)"``, ``"Au(111)"``); ``mass`` and
        ``band_bottom`` override it. ``None`` requires both.
    energy : float
        Bias energy in eV relative to the Fermi level.
    mass : float, optional
        Effective mass in units of the electron mass.
    band_bottom : float, optional
        Band-bottom energy ``E0`` in eV.
    phase_shift : float
        s-wave scattering phase shift ``delta`` (rad); ``pi/2`` is the unitary limit.
    potential : float, optional
        Contact potential ``V`` (eV Å²) instead of ``phase_shift``, with the on-site
        Green's function cut off at ``k_cut = 1 / scatterer_radius``.
    scatterer_radius : float
        Size (Å) of the scatterer, used only with ``potential``.
    eta : float
        Quasiparticle broadening (eV): ``E -> E + i eta`` (finite lifetime; formerly
        ``gamma``).
    decay_length : float, optional
        Phase-coherence length ``L`` (Å): adds ``i / 2L`` to ``k`` so the oscillation
        envelope decays as ``exp(-r/L) / r``.
    tip_sigma : float
        Gaussian tip broadening (Å) that regularises the logarithmic divergence of the
        Green's function at the scatterer; must be > 0.

    Examples
    --------
    >>> K = FriedelKernel("Cu(111)", energy=0.0)
    >>> round(K.period, 2)        # pi / k_F, Å
    15.0
    >>> K.evaluate([0.0, 7.5], [0.0, 0.0]).shape
    (2,)
    """

    name = "friedel"
    scattering = ("born", "full")
    renamed = {"gamma": "eta"}

    def __init__(
        self,
        material: str | None = "Cu(111)",
        energy: float = 0.0,
        *,
        mass: float | None = None,
        band_bottom: float | None = None,
        phase_shift: float = math.pi / 2,
        potential: float | None = None,
        scatterer_radius: float = 1.0,
        eta: float = 0.0,
        decay_length: float | None = None,
        tip_sigma: float = 1.0,
    ) -> None:
        preset = None if material is None else lookup_material(material)
        if mass is None:
            if preset is None:
                raise ValueError("give a material preset or both mass and band_bottom")
            mass = preset.mass
        if band_bottom is None:
            if preset is None:
                raise ValueError("give a material preset or both mass and band_bottom")
            band_bottom = preset.band_bottom
        checks = {
            "mass": (mass, mass > 0),
            "tip_sigma": (tip_sigma, tip_sigma > 0),
            "eta": (eta, eta >= 0),
            "scatterer_radius": (scatterer_radius, scatterer_radius > 0),
        }
        for key, (value, ok) in checks.items():
            if not (np.isfinite(value) and ok):
                raise ValueError(f"{key} out of range: {value!r}")
        if decay_length is not None and not decay_length > 0:
            raise ValueError(f"decay_length must be > 0 Å, got {decay_length!r}")
        if energy - band_bottom <= 0 and eta == 0:
            raise ValueError(
                f"energy {energy} eV is at or below the band bottom {band_bottom} eV: "
                "no propagating surface-state electrons (give eta > 0 for evanescent waves)"
            )
        self.material = preset.name if preset else None
        self.energy = float(energy)
        self.mass = float(mass)
        self.band_bottom = float(band_bottom)
        self.eta = float(eta)
        self.decay_length = None if decay_length is None else float(decay_length)
        self.tip_sigma = float(tip_sigma)
        self.scatterer_radius = float(scatterer_radius)
        self.potential = None if potential is None else float(potential)
        if self.potential is not None:
            phase_shift = phase_shift_from_potential(
                self.potential, self.k.real, self.mass, 1.0 / self.scatterer_radius
            )
        self.phase_shift = float(phase_shift)

    # -- band and scattering -------------------------------------------------------------
    @property
    def k(self) -> complex:
        """Complex wave vector (1/Å) at :attr:`energy`."""
        k = complex(wavevector(self.energy, self.mass, self.band_bottom, self.eta))
        if self.decay_length is not None:
            k += 0.5j / self.decay_length
        return k

    @property
    def period(self) -> float:
        """Friedel-oscillation period ``pi / Re k`` (Å) = half the electron wavelength."""
        return math.pi / self.k.real

    @property
    def rho0(self) -> float:
        """The clean surface-state LDOS ``m*/(2 pi hbar^2)`` (states / eV / Å²), the
        normalisation of ``delta rho / rho0``."""
        return self.mass / (4 * math.pi * HBAR2_OVER_2ME)

    def ring(self) -> float:
        """``2 Re k``: the Friedel oscillations' ring in q-space (1/Å)."""
        return 2 * self.k.real

    def multiple_scattering(self, grid):
        """Images with every scattering path between the scatterers
        (:mod:`.multiple`; a strength scales a site's t-matrix)."""
        from .multiple import image_renderer

        return image_renderer(self, grid)

    @classmethod
    def family_parameters(cls, rng: np.random.Generator, fov: float) -> dict[str, Any]:
        """A surface state (Cu/Ag/Au(111)) at an energy in its band, with a phase shift,
        a lifetime and a tip width drawn from ranges seen in experiments."""
        name = str(rng.choice(sorted(MATERIALS)))
        e0 = MATERIALS[name].band_bottom
        energy = float(rng.uniform(max(e0 + 0.05, -0.3), 0.5))
        return {"model": "friedel", "material": name, "energy": round(energy, 4),
                "phase_shift": round(float(rng.uniform(0.25, 0.5)) * math.pi, 4),
                "eta": round(float(rng.uniform(0.0, 0.02)), 4),
                "tip_sigma": round(float(rng.uniform(0.5, 1.5)), 3)}

    @property
    def scattering_factor(self) -> complex:
        """``exp(2 i delta) - 1``."""
        return complex(np.expm1(2j * self.phase_shift))

    def bare(self, r: np.ndarray) -> np.ndarray:
        """``delta rho / rho0`` without tip broadening (diverges at r = 0)."""
        h = special.hankel1(0, self.k * np.asarray(r, dtype=float))
        return 0.5 * np.real(self.scattering_factor * h * h)

    def radial(self, r: np.ndarray) -> np.ndarray:
        """Tip-broadened ``delta rho / rho0`` at distance ``r`` (Å)."""
        return gaussian_blur_radial(self.bare, r, self.tip_sigma)

    def default_step(self) -> float:
        return min(0.02, self.tip_sigma / 50.0)

    def params(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "material": self.material,
            "energy": self.energy,
            "mass": self.mass,
            "band_bottom": self.band_bottom,
            "phase_shift": self.phase_shift,
            "potential": self.potential,
            "scatterer_radius": self.scatterer_radius,
            "eta": self.eta,
            "decay_length": self.decay_length,
            "tip_sigma": self.tip_sigma,
        }
