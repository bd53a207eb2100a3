"""A measured STM map analysed in one go: ``qpiset analyse``.

1. **Prepare** (:mod:`qpiset.io.prepare`): the spoiled rows of a scan are cut off (the
   longest run of good ones), the map is plane- and line-levelled, then cropped.
2. **Features** (:mod:`qpiset.inverse.features`): point scatterers and steps, where the
   slope is far above the map's typical slope.
3. **Period** (:mod:`qpiset.inverse.period`): the standing waves' half-wavelength from the
   profiles around the isolated points and beside the steps, fitted together;
   ``q_peak = 2 pi / period`` (``2 k`` of a surface state).
4. **Reciprocal space** (:mod:`qpiset.inverse.qspace`): Bragg peaks and the lattice
   constant, when the map resolves a lattice; the lattice is then filtered out before
   detection.
5. **Kernel**: the mean window around the isolated points of the commoner sign
   (:func:`~qpiset.inverse.mapping.average_kernel`), on the analysis grid (64 px over
   100 Å by default: the dataset's); with no isolated point, the Friedel kernel of the
   measured period.
6. **Scatterers**: on the map resampled to the grid's pitch, the point features (each at
   its extremum), or a detector with that kernel on overlapping tiles
   (:func:`~qpiset.inverse.mapping.detect_map`, ``method=``); what is found on a step or
   an edge artefact is dropped (a step is a line scatterer, reported as one), and so is
   what is weaker than ``significance`` times the map's noise.

For a grid with an energy axis (``.3ds``), every energy slice gets its ring radius
(:func:`~qpiset.inverse.qspace.ring_radius`, ``k = q / 2``), the band ``k(E)`` is fitted by
a parabola (:func:`~qpiset.inverse.dispersion.fit_parabolic_band`), and steps 2-6 run on
the slice nearest the Fermi level when it is large enough.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.grid import Grid
from ..core.measurement import Measurement
from ..inverse.dispersion import BandFit, fit_parabolic_band
from ..inverse.features import Features, find_features
from ..inverse.mapping import MapDetections, radial_profile
from ..inverse.period import PeriodFit, standing_wave_period
from ..inverse.qspace import (BraggPeak, bragg_peaks, lattice_constant, lattice_peaks,
                              ring_radius)
from ..io.atomic import atomic_output, check_output
from ..io.prepare import crop as crop_map
from ..io.prepare import keep_good_rows, level_lines, level_plane
from ..physics.constants import HBAR2_OVER_2ME

__all__ = ["MapAnalysis", "analyse_map", "prepare", "parse_crop", "write_analysis",
           "measurement_dataset", "SIGNIFICANCE", "ANALYSIS_FILES"]

#: Scatterers weaker than this many robust standard deviations of the map are dropped.
SIGNIFICANCE = 6.0
#: What ``write_analysis`` writes in the output folder.
ANALYSIS_FILES = ("analysis.json", "kernel.npy")


def parse_crop(text: str) -> tuple[tuple[float, float], tuple[float, float], str]:
    """``"X0:X1,Y0:Y1"`` with an optional unit suffix (``nm``, the default; ``A``; ``px``)
    as ``((x0, x1), (y0, y1), unit)``.

    Examples
    --------
    >>> parse_crop("10:40,5:30")
    ((10.0, 40.0), (5.0, 30.0), 'nm')
    >>> parse_crop("0:256,0:128px")
    ((0.0, 256.0), (0.0, 128.0), 'px')
    """
    body, unit = text.strip(), "nm"
    for suffix in ("nm", "px", "A", "Å"):
        if body.endswith(suffix):
            body, unit = body[: -len(suffix)], "A" if suffix == "Å" else suffix
            break
    try:
        xs, ys = body.split(",")
        (x0, x1), (y0, y1) = (tuple(float(v) for v in part.split(":")) for part in (xs, ys))
    except ValueError:
        raise ValueError(f"crop {text!r}: expected X0:X1,Y0:Y1 with an optional unit "
                         "(nm, A or px), e.g. 10:40,5:30nm") from None
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"crop {text!r}: each range must go from low to high")
    return (x0, x1), (y0, y1), unit


def prepare(m: Measurement, crop: str | None = None) -> Measurement:
    """The map as analysed: spoiled rows cut (scans), plane and line levelling, ``crop``."""
    if not m.is_grid:
        m = keep_good_rows(m)
    m = level_lines(level_plane(m))
    if crop:
        x, y, unit = parse_crop(crop)
        m = crop_map(m, x, y, unit)
    return m


@dataclass
class MapAnalysis:
    """What :func:`analyse_map` found; :meth:`record` is ``analysis.json``."""

    measurement: Measurement = field(repr=False)
    grid: Grid
    crop: str | None
    features: Features = field(repr=False)
    period: PeriodFit | None
    bragg: list[BraggPeak]
    lattice: float | None
    kernel: np.ndarray | None = field(repr=False)
    kernel_source: str
    scatterers: MapDetections
    significance: np.ndarray = field(repr=False)
    noise: float
    notes: list[str] = field(default_factory=list)
    slices: list[dict] = field(default_factory=list)
    band: BandFit | None = None

    @property
    def kernel_profile(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.kernel is None else radial_profile(self.kernel, self.grid)

    def record(self) -> dict:
        m = self.measurement
        p = self.period
        rec = {
            "source": m.path, "channel": m.channel, "units": m.units,
            "bias_ev": m.bias, "crop": self.crop,
            "rows_kept": list(m.cropped) if m.cropped else None,
            "size_angstrom": [round(v, 6) for v in m.size],
            "pitch_angstrom": [round(v, 6) for v in m.pitch],
            "period_angstrom": None if p is None else round(p.period, 4),
            "period_error_angstrom": None if p is None else round(p.error, 4),
            "q_peak_inv_angstrom": None if p is None else round(p.q, 6),
            "k_inv_angstrom": None if p is None else round(p.k, 6),
            "period_profiles": [] if p is None else [
                {"kind": pr.kind, "period_angstrom": round(pr.period, 3),
                 "used": pr.label in p.used} for pr in p.profiles],
            "bragg_peaks_inv_angstrom": [[round(b.qx, 5), round(b.qy, 5), round(b.q, 5)]
                                         for b in self.bragg],
            "lattice_angstrom": None if self.lattice is None else round(self.lattice, 4),
            "steps": [{"centre_line": list(ln.coef), "along": ln.along,
                       "halfwidth_angstrom": round(ln.halfwidth, 3)}
                      for ln in self.features.lines],
            "isolated_points": [[round(c, 3) for c in pt.extremum]
                                for pt in self.features.isolated],
            "scatterers": [
                {"x": round(float(x), 4), "y": round(float(y), 4),
                 "strength": round(float(s), 6), "significance": round(float(z), 3),
                 "confidence": round(float(z / (z + SIGNIFICANCE)), 4)}
                for (x, y), s, z in zip(self.scatterers.positions, self.scatterers.strengths,
                                        self.significance)],
            "positions_are": "estimated (no truth in a measurement)",
            "noise": self.noise if np.isfinite(self.noise) else None,
            "kernel": None if self.kernel is None else {
                "file": "kernel.npy", "source": self.kernel_source,
                "grid": {"resolution": self.grid.resolution, "fov_angstrom": self.grid.fov},
                "radial_profile": {"r_angstrom": self.kernel_profile[0].round(4).tolist(),
                                   "value": self.kernel_profile[1].round(6).tolist()}},
            "notes": self.notes,
        }
        if self.slices:
            rec["energy_slices"] = self.slices
            rec["band"] = None if self.band is None else self.band.record()
        return rec


def analyse_map(m: Measurement, *, crop: str | None = None, grid: Grid | None = None,
                method: str = "features", significance: float = SIGNIFICANCE,
                workers: int = 1, energy: float = 0.0) -> MapAnalysis:
    """Analyse one measured map (module docs).

    Parameters
    ----------
    m : Measurement
        As :func:`qpiset.read` gives it.
    crop : str, optional
        ``"X0:X1,Y0:Y1"`` with a unit (:func:`parse_crop`).
    grid : Grid
        The analysis grid (default: the dataset's 64 px over 100 Å).
    method : str
        ``"features"`` (default): the point features of the map at the grid's pitch, each
        at its centre (the centroid of its deviation from the map's median). Or a detector (``"sparse"``, ...), run with the map's kernel on
        tiles: slower, and on measured maps it also explains the waves and the
        correlated noise with weak scatterers, which ``significance`` then removes.
    significance : float
        Scatterers weaker than this many robust standard deviations of the
        background-removed map (outside the features) are dropped.
    workers : int
        Processes for a detector's tiles.
    energy : float
        For a grid: the slice (nearest, eV) analysed for scatterers and kernel.
    """
    grid = grid or Grid(64, 100.0)
    m = prepare(m, crop)
    slices, band, notes = [], None, []
    if m.is_grid:
        slices, band, notes = _dispersion(m)
        i = int(np.argmin(np.abs(m.energies - energy)))
        scan = Measurement(m.data[i], m.x, m.y, m.channel, m.units, float(m.energies[i]),
                           None, m.channels, m.angle, m.header, m.path, m.cropped)
    else:
        scan = m
    result = _analyse_scan(scan, grid, crop, method, significance, workers, notes)
    result.measurement, result.slices, result.band = m if not m.is_grid else scan, slices, band
    return result


def _analyse_scan(m: Measurement, grid: Grid, crop, method, significance, workers,
                  notes: list[str]) -> MapAnalysis:
    from scipy import ndimage as ndi

    from ..inverse import file_operator
    from ..inverse.features import background
    from ..inverse.mapping import detect_map
    from ..inverse.qspace import remove_peaks
    from ..io.prepare import resample

    z, pitch = m.data, m.pitch[0]
    features = find_features(z, pitch)
    try:
        period = standing_wave_period(z, features)
    except ValueError as exc:
        period = None
        notes.append(f"no standing-wave period: {exc}")
    if period is not None and not period.error < 0.1 * period.period:
        notes.append(f"the standing-wave period ({period.period:.2f} ± {period.error:.2f} Å) "
                     "is uncertain: the profiles disagree (no clear surface-state waves)")
    bragg = lattice_peaks(bragg_peaks(z, pitch, q_min=_bragg_min(period, pitch)))
    lattice = lattice_constant(bragg) if bragg else None
    if bragg:
        m = _replace(m, remove_peaks(z, pitch, bragg))
    coarse = resample(m, grid.pitch, antialias=True)
    zc = coarse.data
    empty = MapDetections(np.zeros((0, 2)), np.zeros(0), np.zeros(0))
    if min(zc.shape) < grid.resolution:
        notes.append(f"no scatterers: the map ({zc.shape[1]}x{zc.shape[0]} px at "
                     f"{grid.pitch:.3f} Å) is smaller than one {grid.resolution} px tile")
        return MapAnalysis(m, grid, crop, features, period, bragg, lattice, None, "none",
                           empty, np.zeros(0), float("nan"), notes)
    # on a lattice, the defects are looked for at the lattice's scale (what is left of the
    # atoms after the Bragg filter is not a feature) and with a lower threshold: their
    # patterns are broad, not steep
    fc = (find_features(zc, grid.pitch) if lattice is None else
          find_features(zc, grid.pitch, smoothing=max(1.0, lattice), threshold=6.0))
    near = ndi.binary_dilation(fc.mask, iterations=2)
    zh = zc - background(zc, near, 6.0, grid.pitch)
    exclude = ndi.binary_dilation(fc.line_mask() | fc.artefacts, iterations=3)
    zh[exclude] = 0.0
    quiet = ~near & ~exclude
    noise = float(1.4826 * np.median(np.abs(zh[quiet] - np.median(zh[quiet]))))
    kernel, source = _kernel(zh, fc, grid, period)
    if kernel is None:
        notes.append("no kernel: no isolated scatterer and no standing-wave period")
        return MapAnalysis(m, grid, crop, features, period, bragg, lattice, None, "none",
                           empty, np.zeros(0), noise, notes)
    if method == "features":
        sign = float(np.sign(_at(kernel, (grid.fov / 2, grid.fov / 2), grid.pitch)) or 1.0)
        found = _feature_scatterers(zh, fc, exclude, sign)
    else:
        found = detect_map(zh, file_operator(kernel, grid), method=method, exclude=exclude,
                           workers=workers)
    z_score = np.abs(found.strengths) / noise if noise > 0 else np.full(len(found), np.inf)
    keep = z_score >= significance
    kept = MapDetections(found.positions[keep] + [coarse.x[0], coarse.y[0]],
                         found.strengths[keep], found.confidence[keep])
    return MapAnalysis(m, grid, crop, features, period, bragg, lattice, kernel, source,
                       kept, z_score[keep], noise, notes)


def _at(z: np.ndarray, xy, pitch: float) -> float:
    """``z`` at the pixel nearest ``xy`` (Å)."""
    ix, iy = (int(round(v / pitch)) for v in xy)
    return float(z[min(max(iy, 0), z.shape[0] - 1), min(max(ix, 0), z.shape[1] - 1)])


def _feature_scatterers(zh: np.ndarray, features: Features, exclude: np.ndarray,
                        sign: float = 1.0) -> MapDetections:
    """The point features as scatterers: each at its centre (the centroid of its
    deviation), its strength the background-removed map at its extremum over the kernel's
    value at its centre (``sign``)."""
    pos, strength = [], []
    for p in features.points:
        if _at(exclude.astype(float), p.center, features.pitch):
            continue
        pos.append(p.center)
        strength.append(sign * _at(zh, p.extremum, features.pitch))
    return MapDetections(np.array(pos, np.float64).reshape(-1, 2),
                         np.array(strength, np.float64), np.full(len(pos), np.nan))


def _bragg_min(period: PeriodFit | None, pitch: float) -> float:
    """Bragg peaks are looked for beyond the QPI ring (twice its radius) and 1/Å."""
    return max(1.0, 2.5 * period.q) if period is not None else 1.0


def _replace(m: Measurement, data: np.ndarray) -> Measurement:
    import dataclasses

    return dataclasses.replace(m, data=data)


def _kernel(zh: np.ndarray, features: Features, grid: Grid,
            period: PeriodFit | None) -> tuple[np.ndarray | None, str]:
    """The averaged kernel of the isolated points of the commoner sign, else the Friedel
    kernel of the period, else None."""
    from ..forward import Forward
    from ..inverse.mapping import average_kernel
    from ..physics import FriedelKernel

    points = features.isolated
    if points:
        sign = 1.0 if sum(p.peak > 0 for p in points) >= len(points) / 2 else -1.0
        chosen = [p for p in points if np.sign(p.peak) == sign]
        centres = np.array([p.center for p in chosen]) / grid.pitch
        # each window divided by its scatterer's size (the extreme's magnitude): the mean
        # keeps the pattern's sign, +-1 at the extreme, the strengths positive
        scales = [abs(_at(zh, p.extremum, grid.pitch)) for p in chosen]
        kernel, _ = average_kernel(zh, centres, grid, features.labels,
                                   [p.label for p in chosen], scales)
        return kernel, f"mean of {len(chosen)} isolated scatterers"
    if period is not None:
        mass = 0.38  # the period sets k_F; the mass only scales energies, not the pattern
        model = FriedelKernel(None, 0.0, mass=mass,
                              band_bottom=-(period.k**2) * HBAR2_OVER_2ME / mass)
        row = Forward(model, grid).kernel_row
        return row / np.abs(row).max(), f"Friedel kernel of the period {period.period:.2f} Å"
    return None, "none"


def _dispersion(m: Measurement) -> tuple[list[dict], BandFit | None, list[str]]:
    """The ring radius of every energy slice, and the parabolic band through them."""
    pitch = m.pitch[0]
    rows, notes = [], []
    for e, s in zip(m.energies, m.data):
        try:
            q, _, flat = ring_radius(s, pitch)
            rows.append({"energy_ev": float(e), "q_inv_angstrom": round(q, 6),
                         "k_inv_angstrom": round(q / 2, 6),
                         "contrast": round(float(flat.max() / np.median(flat)), 3)})
        except ValueError as exc:
            rows.append({"energy_ev": float(e), "q_inv_angstrom": None,
                         "k_inv_angstrom": None, "contrast": None})
            notes.append(f"{e:+.4f} eV: {exc}")
    e = np.array([r["energy_ev"] for r in rows])
    k = np.array([np.nan if r["k_inv_angstrom"] is None else r["k_inv_angstrom"]
                  for r in rows])
    try:
        band = fit_parabolic_band(e, k)
    except ValueError as exc:
        band = None
        notes.append(f"no band: {exc}")
    return rows, band, notes


def write_analysis(a: MapAnalysis, out, *, overwrite: bool = False) -> list[Path]:
    """``analysis.json`` and ``kernel.npy`` in the folder ``out`` (made if missing),
    each written atomically; an existing one is replaced only with ``overwrite``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in ANALYSIS_FILES]
    for p in paths:
        check_output(p, overwrite=overwrite)
    text = json.dumps(a.record(), indent=2, allow_nan=False, default=_plain) + "\n"
    with atomic_output(paths[0]) as f:
        f.write(text.encode("utf-8"))
    written = [paths[0]]
    if a.kernel is not None:
        with atomic_output(paths[1]) as f:
            np.save(f, np.asarray(a.kernel, np.float64))
        written.append(paths[1])
    return written


def measurement_dataset(a: MapAnalysis, grid: Grid | None = None, max_scatterers: int = 100):
    """The analysed map as a dataset: the levelled map (lattice filtered, if any) at
    ``grid``'s pitch cut into tiles of ``grid`` (no overlap; the last row and column of
    tiles end at the map's edge), each with the scatterers found in it as positions
    (the tile's own centred frame, Å), the estimated kernel row as the file's kernel,
    and metadata saying that both are estimated.

    Raises
    ------
    ValueError
        When the map is smaller than one tile or no kernel was estimated.
    """
    from ..core.dataset import Dataset
    from ..forward import Forward
    from ..inverse.mapping import tiles
    from ..io.prepare import resample
    from ..physics import SampledKernel2D

    grid = grid or a.grid
    if a.kernel is None:
        raise ValueError("the analysis has no kernel to put in the dataset")
    coarse = resample(a.measurement, grid.pitch, antialias=True)
    z = coarse.data
    if min(z.shape) < grid.resolution:
        raise ValueError(f"the map ({z.shape[1]}x{z.shape[0]} px at {grid.pitch:.3f} Å) is "
                         f"smaller than one {grid.resolution} px tile")
    kernel = a.kernel
    if grid != a.grid:
        model = SampledKernel2D(a.kernel, a.grid.fov)
        kernel = Forward(model, grid).kernel_row
    stack, origins = tiles(z - np.median(z), grid.resolution, 0)
    positions, strengths = [], []
    for iy0, ix0 in origins:
        local = (a.scatterers.positions - [coarse.x[0], coarse.y[0]]) / grid.pitch \
            - [ix0, iy0]
        inside = np.all((local > -0.5) & (local < grid.resolution - 0.5), axis=1)
        order = np.argsort(-np.abs(a.scatterers.strengths[inside]), kind="stable")
        pick = order[:max_scatterers]
        positions.append(local[inside][pick] * grid.pitch + grid.x[0])
        strengths.append(a.scatterers.strengths[inside][pick])
    meta = {"source": a.measurement.path, "channel": a.measurement.channel,
            "units": a.measurement.units, "kind": "measurement",
            "positions": "estimated by qpiset analyse, not true",
            "kernel": {"model": "estimated from the map", "source": a.kernel_source},
            "tile_origins_angstrom": [[round(float(coarse.x[0] + ix * grid.pitch), 4),
                                       round(float(coarse.y[0] + iy * grid.pitch), 4)]
                                      for iy, ix in origins],
            "period_angstrom": None if a.period is None else round(a.period.period, 4)}
    return Dataset(grid, np.asarray(kernel, np.float64), stack, positions,
                   max(max_scatterers, 1), strengths, meta)


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")

