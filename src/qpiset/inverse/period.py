"""The standing-wave period of a measured map, from the profiles around its scatterers.

Around a point scatterer on a surface state the local density of states oscillates as
``cos(2 k r + phi) / r`` (the asymptote of the 2D Friedel oscillation), and beside a step
as ``cos(2 k d + phi) / sqrt(d)`` (the asymptote of ``J0(2 k d)``): both with the period
``pi / k``, half the Fermi wavelength at the bias of the map. The profiles are the map's
mean at each distance from each isolated point's centre (a radial average) and from
each line's centre line (each side apart), after removing what varies slower than the
waves (:func:`~qpiset.inverse.features.background`).

All profiles are fitted together: one period, and for each profile its own amplitude,
phase and a cubic background in the distance. The period minimises the summed
chi-square over a fine scan; a profile whose own best period is more than 20 % away
(one that follows a neighbour's waves, or a harmonic) is left out and the rest refitted.
The standard error is where the chi-square (each profile's scaled by its residual
variance) rises by one, or the scatter between the profiles' own periods when larger.

Examples
--------
>>> import numpy as np
>>> from qpiset.inverse.features import find_features
>>> yy, xx = np.mgrid[0:160, 0:160] * 1.0
>>> r = np.hypot(xx - 80.3, yy - 79.6)
>>> z = 8 * np.exp(-r**2 / 6) + np.cos(2 * np.pi * r / 14.4) / np.maximum(r, 3)
>>> fit = standing_wave_period(z, find_features(z, 1.0))
>>> abs(fit.period - 14.4) < 0.2
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .features import Features, background, line_distance

__all__ = ["Profile", "PeriodFit", "scatterer_profiles", "standing_wave_period",
           "PERIOD_RANGE"]

#: Periods (Å) scanned by default: from a few pixels to beyond any surface state's.
PERIOD_RANGE = (5.0, 40.0)


@dataclass
class Profile:
    """One scatterer's profile: ``kind`` (``"point"`` or ``"line"``), ``label`` of the
    feature, ``distance`` (Å, bin centres), ``value`` (the map's mean in each bin, after
    the background), ``count`` (pixels in each bin), ``decay`` (the exponent of the
    envelope: 1 for a point, 1/2 for a line) and, once fitted, ``model``."""

    kind: str
    label: int
    distance: np.ndarray
    value: np.ndarray
    count: np.ndarray
    decay: float
    model: np.ndarray | None = None
    period: float | None = None

    def record(self) -> dict:
        return {"kind": self.kind, "label": self.label, "period_angstrom": self.period,
                "distance_angstrom": self.distance.round(4).tolist(),
                "value": self.value.tolist()}


@dataclass
class PeriodFit:
    """The fitted period: ``period`` (Å, ``pi / k``), its standard ``error``, ``k``
    (1/Å), ``q`` (``2 k``, the ring's wave vector), the ``profiles`` fitted, the scanned
    ``periods`` and their summed ``chi2``, and the ``used`` profiles' labels (the ones
    that agree with the joint period)."""

    period: float
    error: float
    profiles: list[Profile]
    periods: np.ndarray = field(repr=False)
    chi2: np.ndarray = field(repr=False)
    used: list[int] = field(default_factory=list)

    @property
    def k(self) -> float:
        return float(np.pi / self.period)

    @property
    def q(self) -> float:
        return float(2 * np.pi / self.period)


def _binned(d: np.ndarray, v: np.ndarray, step: float, lo: float, hi: float):
    keep = (d >= lo) & (d < hi)
    b = np.floor((d[keep] - lo) / step).astype(int)
    n = int(np.ceil((hi - lo) / step))
    count = np.bincount(b, minlength=n)[:n]
    total = np.bincount(b, v[keep], minlength=n)[:n]
    ok = count > 0
    centre = lo + (np.arange(n) + 0.5) * step
    return centre[ok], total[ok] / count[ok], count[ok].astype(np.float64)


def scatterer_profiles(z: np.ndarray, features: Features, *, reach: float = 60.0,
                       line_reach: float = 60.0, gap: float = 3.0,
                       smooth: float = 6.0) -> list[Profile]:
    """The profiles around the isolated points and beside each line of ``features``.

    Parameters
    ----------
    z : (ny, nx) array
        The levelled map the features were found in.
    features : Features
    reach, line_reach : float
        Largest distance (Å) from a point's centre, from a line's centre line.
    gap : float
        Distance (Å) kept clear beyond a feature's own extent (its radius or half width),
        where the scatterer's own shape still dominates.
    smooth : float
        Width (Å) of the background removed first (:func:`background`): long enough to
        leave the waves (a Gaussian of 6 Å keeps 97 % of a 14 Å period), short enough to
        take terraces and drift out.
    """
    from scipy import ndimage as ndi

    pitch = features.pitch
    mask = features.mask
    zh = np.asarray(z, np.float64) - background(z, ndi.binary_dilation(mask, iterations=3),
                                                smooth, pitch)
    yy, xx = np.mgrid[0:z.shape[0], 0:z.shape[1]] * pitch
    profiles = []
    for point in features.isolated:
        others = mask & (features.labels != point.label)
        to_others = (ndi.distance_transform_edt(~others) * pitch if others.any()
                     else np.full(z.shape, np.inf))
        r = np.hypot(xx - point.center[0], yy - point.center[1])
        use = ~mask & (to_others > r)
        d, v, c = _binned(r[use], zh[use], pitch, point.radius + gap, reach)
        if len(d) >= 12:
            profiles.append(Profile("point", point.label, d, v, c, 1.0))
    for line in features.lines:
        signed = line_distance(line, z.shape, pitch)
        for side in (-1.0, 1.0):
            use = ~mask & (np.sign(signed) == side)
            d, v, c = _binned(np.abs(signed[use]), zh[use], pitch, line.halfwidth + gap,
                              line_reach)
            if len(d) >= 12:
                profiles.append(Profile("line", line.label, d, v, c, 0.5))
    return profiles


def _design(p: Profile, period: float) -> np.ndarray:
    u = p.distance / p.distance.max()
    envelope = p.distance ** -p.decay
    phase = 2 * np.pi * p.distance / period
    return np.stack([np.ones_like(u), u, u**2, u**3,
                     envelope * np.cos(phase), envelope * np.sin(phase)], axis=1)


def _residual(p: Profile, period: float) -> tuple[float, np.ndarray]:
    a = _design(p, period)
    w = np.sqrt(p.count)
    coef, *_ = np.linalg.lstsq(a * w[:, None], p.value * w, rcond=None)
    model = a @ coef
    return float(np.sum(p.count * (p.value - model) ** 2)), model


def standing_wave_period(z: np.ndarray, features: Features, *,
                         period_range: tuple[float, float] = PERIOD_RANGE,
                         profiles: list[Profile] | None = None, **options) -> PeriodFit:
    """The standing-wave period (Å) of a levelled map with its ``features``.

    Parameters
    ----------
    z : (ny, nx) array
    features : Features
        From :func:`~qpiset.inverse.features.find_features` on ``z``.
    period_range : (float, float)
        Periods scanned (Å); the lower end is raised to three pixels.
    profiles : list of Profile, optional
        Default :func:`scatterer_profiles` of ``z`` (``options`` go there).

    Raises
    ------
    ValueError
        When the map has no isolated point and no line to take a profile around, or the
        best period lies at an end of ``period_range`` (no minimum inside it).
    """
    profiles = scatterer_profiles(z, features, **options) if profiles is None else profiles
    if not profiles:
        raise ValueError("no isolated scatterer or step to measure the standing waves "
                         "around (crop to a region with one, or lower the isolation)")
    lo, hi = max(period_range[0], 3 * features.pitch), period_range[1]
    periods = np.arange(lo, hi, 0.01)
    table = np.array([[_residual(p, t)[0] for t in periods] for p in profiles])
    for p, row in zip(profiles, table):
        p.period = float(periods[int(np.argmin(row))])
    best, curvature, chi2 = _joint(profiles, table, periods)
    agree = np.array([abs(p.period - best) <= OUTLIER * best for p in profiles])
    if 0 < agree.sum() < len(profiles):  # a profile locked on another scatterer or a harmonic
        best, curvature, chi2 = _joint([p for p, a in zip(profiles, agree) if a],
                                       table[agree], periods)
    if not periods[1] < best < periods[-2]:  # the scan's end, not a minimum: no answer
        raise ValueError(f"the profiles' chi-square has no minimum between {lo:.1f} and "
                         f"{hi:.1f} Å (it falls towards {best:.1f} Å): no standing-wave "
                         "period in this range")
    used = [p for p, a in zip(profiles, agree) if a] or profiles
    error = float(np.sqrt(2 / curvature)) if curvature > 0 else float("inf")
    if len(used) > 1:  # the scatter between profiles, when larger than the fit's own
        error = max(error, float(np.std([p.period for p in used], ddof=1) / np.sqrt(len(used))))
    for p in profiles:
        p.model = _residual(p, best)[1]
    return PeriodFit(best, error, profiles, periods, chi2, [p.label for p in used])


#: A profile whose own best period is farther than this fraction from the joint one is
#: left out of the joint fit (it follows another scatterer's waves, or a harmonic).
OUTLIER = 0.2


def _joint(profiles: list[Profile], table: np.ndarray, periods: np.ndarray):
    """The joint period (parabola through the scan's minimum), the curvature of the summed
    chi-square there, and that chi-square."""
    dof = np.array([max(len(p.distance) - 6, 1) for p in profiles])
    scale = table.min(axis=1) / dof  # each profile's residual variance at its best
    chi2 = (table / scale[:, None]).sum(axis=0)
    step = periods[1] - periods[0]
    i = int(np.clip(np.argmin(chi2), 1, len(periods) - 2))
    c0, c1, c2 = chi2[i - 1], chi2[i], chi2[i + 1]
    curvature = (c0 - 2 * c1 + c2) / step**2
    shift = 0.5 * step * (c0 - c2) / (c0 - 2 * c1 + c2) if curvature > 0 else 0.0
    return float(periods[i] + shift), float(curvature), chi2
