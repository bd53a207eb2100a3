"""A surface state's band from its wave vectors at several energies: ``k(E)`` fitted by the
parabola ``E = E0 + hbar² k² / (2 m*)`` (the model of the surface-state presets,
:mod:`qpiset.physics.materials`).

With ``c = hbar² / (2 m_e)`` (3.81 eV Å²) the parabola is a line in ``k²``:
``k² = (m* / c) E - (m* / c) E0``. It is fitted by weighted least squares (weights from
the wave vectors' errors, when given, through ``sigma(k²) = 2 k sigma(k)``); the effective
mass and band bottom, and their standard errors, follow from the line's slope and
intercept and their covariance (scaled by the reduced chi-square when no errors are
given).

Examples
--------
>>> import numpy as np
>>> e = np.linspace(-0.2, 0.4, 7)
>>> k = np.sqrt(0.38 * (e + 0.44) / 3.80998212)
>>> band = fit_parabolic_band(e, k)
>>> round(band.mass, 3), round(band.band_bottom, 3)
(0.38, -0.44)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..physics.constants import HBAR2_OVER_2ME

__all__ = ["BandFit", "fit_parabolic_band"]


@dataclass(frozen=True)
class BandFit:
    """``mass`` (m*, electron masses) and ``band_bottom`` (E0, eV) with their standard
    errors, the number of ``points`` fitted and the reduced ``chi2``."""

    mass: float
    mass_error: float
    band_bottom: float
    band_bottom_error: float
    points: int
    chi2: float

    def k(self, energy) -> np.ndarray:
        """The fitted band's wave vector (1/Å) at ``energy`` (eV); NaN below the bottom."""
        e = np.asarray(energy, np.float64) - self.band_bottom
        return np.sqrt(np.where(e > 0, self.mass * e / HBAR2_OVER_2ME, np.nan))

    def record(self) -> dict:
        return asdict(self)


def fit_parabolic_band(energies, k, k_error=None) -> BandFit:
    """Fit ``E = E0 + hbar² k² / (2 m*)`` to wave vectors ``k`` (1/Å) at ``energies`` (eV).

    Raises
    ------
    ValueError
        With fewer than three finite points, or when ``k²`` does not grow with the energy
        (no parabolic band in the data).
    """
    e = np.asarray(energies, np.float64).ravel()
    k = np.asarray(k, np.float64).ravel()
    err = None if k_error is None else np.asarray(k_error, np.float64).ravel()
    if e.shape != k.shape or (err is not None and err.shape != k.shape):
        raise ValueError(f"{e.size} energies, {k.size} wave vectors"
                         + ("" if err is None else f", {err.size} errors"))
    ok = np.isfinite(e) & np.isfinite(k) & (k > 0)
    if err is not None:
        ok &= np.isfinite(err) & (err > 0)
    if ok.sum() < 3:
        raise ValueError(f"{int(ok.sum())} usable points: at least 3 are needed for a band")
    e, k2 = e[ok], k[ok] ** 2
    sigma = np.ones_like(k2) if err is None else 2 * k[ok] * err[ok]
    a = np.stack([e, np.ones_like(e)], axis=1) / sigma[:, None]
    coef, *_ = np.linalg.lstsq(a, k2 / sigma, rcond=None)
    slope, intercept = coef
    if not slope > 0:
        raise ValueError("k² does not grow with the energy: no parabolic band in these points")
    dof = max(len(e) - 2, 1)
    chi2 = float(np.sum(((k2 - (slope * e + intercept)) / sigma) ** 2) / dof)
    cov = np.linalg.inv(a.T @ a) * (chi2 if err is None else 1.0)
    mass = slope * HBAR2_OVER_2ME
    e0 = -intercept / slope
    # e0 = -b/a: gradient (b/a², -1/a)
    g = np.array([intercept / slope**2, -1 / slope])
    e0_err = float(np.sqrt(max(g @ cov @ g, 0.0)))
    mass_err = float(np.sqrt(max(cov[0, 0], 0.0)) * HBAR2_OVER_2ME)
    return BandFit(float(mass), mass_err, float(e0), e0_err, int(len(e)), chi2)
