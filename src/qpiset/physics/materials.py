"""Surface-state presets from the literature (parabolic band, effective mass).

Each preset gives the effective mass ``m*/m_e`` and the band-bottom energy ``E0``
(eV relative to the Fermi level) of the Shockley surface state, so that
``E(k) = E0 + hbar^2 k^2 / (2 m*)``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SurfaceState", "MATERIALS", "material"]


@dataclass(frozen=True)
class SurfaceState:
    """A free-electron-like surface state: ``E(k) = band_bottom + hbar^2 k^2 / (2 mass m_e)``."""

    name: str
    mass: float  # effective mass, units of the free-electron mass
    band_bottom: float  # eV, relative to the Fermi level
    reference: str


MATERIALS: dict[str, SurfaceState] = {
    s.name: s
    for s in (
        SurfaceState(
            "Cu(111)", 0.38, -0.44,
            "M. F. Crommie, C. P. Lutz, D. M. Eigler, Nature 363, 524 (1993): "
            "E0 = -0.44 eV, m* = 0.38 m_e; standing waves with lambda_F/2 = 15 Å at E_F.",
        ),
        SurfaceState(
            "Ag(111)", 0.40, -0.067,
            "J. Li, W.-D. Schneider, R. Berndt, S. Crampin, Phys. Rev. Lett. 80, 3332 (1998) and "
            "J. Li et al., Phys. Rev. B 56, 7656 (1997): E0 = -67 meV, m* = 0.40 m_e "
            "(lambda_F ~ 75 Å).",
        ),
        SurfaceState(
            "Au(111)", 0.26, -0.487,
            "S. LaShell, B. A. McDougall, E. Jensen, Phys. Rev. Lett. 77, 3419 (1996): "
            "E0 = -0.487 eV, m* = 0.26 m_e (spin-orbit splitting neglected).",
        ),
    )
}


def material(name: str) -> SurfaceState:
    """Look up a preset by name, ignoring case and spaces (``"cu(111)"`` works).

    Examples
    --------
    >>> material("Cu(111)").mass
    0.38
    """
    key = name.replace(" ", "").lower()
    for preset in MATERIALS.values():
        if preset.name.lower() == key:
            return preset
    raise ValueError(f"unknown material {name!r}; presets: {', '.join(MATERIALS)}")
