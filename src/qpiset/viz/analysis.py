"""The report of a measured map's analysis (``qpiset analyse``): one self-contained HTML
page with the map and what was found on it, the kernel and its radial profile, the
standing-wave profiles and their fit, q-space (ring and Bragg peaks) and, for a grid, the
band ``k(E)``. Built like the dataset report (:mod:`.report`): PNGs inline, no fetches,
the same analysis gives the same bytes.
"""

from __future__ import annotations

import html

import numpy as np
from matplotlib.figure import Figure

from .report import _CSS, _SCRIPT, _img, _table

__all__ = ["build_analysis_report"]


def _map_figure(a) -> Figure:
    m = a.measurement
    z = m.data
    fig = Figure(figsize=(7.5, 7.5 * len(m.y) / len(m.x) + 0.6), layout="constrained")
    ax = fig.add_subplot()
    lo, hi = np.percentile(z, [1, 99])
    extent = [m.x[0] / 10, m.x[-1] / 10, m.y[-1] / 10, m.y[0] / 10]
    ax.imshow(z, cmap="gray", vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
    pos = a.scatterers.positions
    if len(pos):
        ax.scatter(pos[:, 0] / 10, pos[:, 1] / 10, s=90, facecolors="none",
                   edgecolors="#e8362d", linewidths=1.4, label=f"scatterers ({len(pos)})")
    iso = np.array([p.extremum for p in a.features.isolated]).reshape(-1, 2)
    if len(iso):
        iso = iso + [m.x[0], m.y[0]]
        ax.scatter(iso[:, 0] / 10, iso[:, 1] / 10, marker="+", s=60, c="#2a9df4",
                   label="isolated (period, kernel)")
    for line in a.features.lines:
        t = np.arange(len(m.y) if line.along == "y" else len(m.x), dtype=float)
        c = np.polyval(line.coef, t)
        px = a.features.pitch
        xs, ys = (c, t) if line.along == "y" else (t, c)
        ax.plot(m.x[0] / 10 + xs * px / 10, m.y[0] / 10 + ys * px / 10, "--", c="#f5a623",
                lw=1.5, label="step (line scatterer)")
    ax.set(xlabel="x (nm)", ylabel="y (nm)", title=f"{m.channel} ({m.units})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    return fig


def _kernel_figure(a) -> Figure:
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    g = a.grid
    k = a.kernel
    lim = 0.15  # of the centre: the rings, not the core
    im = ax1.imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower",
                    extent=[g.x[0], g.x[-1], g.x[0], g.x[-1]])
    fig.colorbar(im, ax=ax1, shrink=0.8)
    ax1.set(xlabel="x (Å)", ylabel="y (Å)",
            title="kernel (one scatterer at the origin; ±0.15 of its centre)")
    r, v = a.kernel_profile
    ax2.plot(r, v, "k.-", ms=3)
    ax2.axhline(0, c="0.6", lw=0.8)
    if a.period is not None:
        for n in range(1, int(r.max() / a.period.period) + 1):
            ax2.axvline(n * a.period.period, c="#2a9df4", lw=0.6, ls=":")
    ax2.set_ylim(-0.15, 0.15)
    ax2.set(xlabel="r (Å)", ylabel="kernel (centre = 1)",
            title="radial profile (dotted: multiples of the period)")
    return fig


def _profiles_figure(a) -> Figure:
    p = a.period
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for i, pr in enumerate(p.profiles):
        off = i * 1.0
        scale = np.abs(pr.value).max() or 1.0
        used = pr.label in p.used
        ax1.plot(pr.distance, pr.value / scale + off, ".", ms=2, c="k" if used else "0.6")
        ax1.plot(pr.distance, pr.model / scale + off, "-", lw=1,
                 c="#e8362d" if used else "0.6")
    ax1.set(xlabel="distance (Å)", ylabel="profile (scaled, offset)",
            title="profiles around scatterers (red: fit with the joint period)")
    ax2.plot(p.periods, p.chi2, "k-", lw=1)
    ax2.axvline(p.period, c="#e8362d", lw=1)
    ax2.set(xlabel="period (Å)", ylabel="summed χ²",
            title=f"period {p.period:.2f} ± {p.error:.2f} Å")
    return fig


def _qspace_figure(a) -> Figure:
    from ..inverse.qspace import power_spectrum

    m = a.measurement
    s = power_spectrum(m.data - np.median(m.data), m.pitch[0])
    fig = Figure(figsize=(6.5, 6), layout="constrained")
    ax = fig.add_subplot()
    lim = np.pi / m.pitch[0]
    logp = np.log10(s.power + 1e-300)
    lo, hi = np.percentile(logp, [50, 99.9])
    ax.imshow(logp, cmap="magma", vmin=lo, vmax=hi, origin="lower",
              extent=[s.q[0], s.q[-1], s.q[0], s.q[-1]])
    if a.period is not None:
        t = np.linspace(0, 2 * np.pi, 200)
        ax.plot(a.period.q * np.cos(t), a.period.q * np.sin(t), "--", c="#2a9df4", lw=1,
                label=f"q = 2π/period = {a.period.q:.3f} Å⁻¹")
    for b in a.bragg:
        ax.plot([b.qx, -b.qx], [b.qy, -b.qy], "o", mfc="none", mec="#7ed321", ms=12)
    if a.bragg:
        ax.plot([], [], "o", mfc="none", mec="#7ed321", label=f"Bragg peaks (a = {a.lattice:.3f} Å)")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="qx (Å⁻¹)", ylabel="qy (Å⁻¹)",
           title="|FT|² (Hann window, log)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    return fig


def _band_figure(a) -> Figure:
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.add_subplot()
    e = np.array([r["energy_ev"] for r in a.slices])
    k = np.array([np.nan if r["k_inv_angstrom"] is None else r["k_inv_angstrom"]
                  for r in a.slices])
    ax.plot(k, e, "k.", ms=4, label="ring radius / 2 per slice")
    if a.band is not None:
        ee = np.linspace(e.min(), e.max(), 200)
        ax.plot(a.band.k(ee), ee, "-", c="#e8362d",
                label=f"m* = {a.band.mass:.3f} ± {a.band.mass_error:.3f} mₑ, "
                      f"E0 = {a.band.band_bottom:.3f} ± {a.band.band_bottom_error:.3f} eV")
    ax.set(xlabel="k (Å⁻¹)", ylabel="E (eV)", title="dispersion k(E)")
    ax.legend(fontsize=8)
    return fig


def build_analysis_report(a, label: str = "") -> str:
    """The HTML text of the report on a :class:`~qpiset.workflows.analyse.MapAnalysis`."""
    rec = a.record()
    label = label or rec["source"]
    rows = [["channel", f"{rec['channel']} ({rec['units']})"],
            ["size", f"{rec['size_angstrom'][0] / 10:.2f} × {rec['size_angstrom'][1] / 10:.2f} nm"],
            ["bias", "—" if rec["bias_ev"] is None else f"{rec['bias_ev'] * 1e3:.1f} mV"],
            ["rows kept", rec["rows_kept"] or "all"], ["crop", rec["crop"] or "none"],
            ["standing-wave period", "—" if a.period is None else
             f"{a.period.period:.2f} ± {a.period.error:.2f} Å "
             f"(q = {a.period.q:.4f} Å⁻¹, {len(a.period.used)} of {len(a.period.profiles)} "
             "profiles)"],
            ["lattice (Bragg peaks)", "none resolved" if a.lattice is None else
             f"a = {a.lattice:.3f} Å ({len(a.bragg)} peaks)"],
            ["steps", len(a.features.lines)], ["scatterers", len(a.scatterers)],
            ["kernel", a.kernel_source]]
    parts = [f"<h1>Measured map: {html.escape(label)}</h1>", _table(["", ""], rows),
             "".join(f"<p>{html.escape(n)}</p>" for n in a.notes),
             "<h2>Map</h2>",
             _img(_map_figure(a), "map with scatterers",
                  "The levelled map; red circles: scatterers found; blue crosses: the isolated "
                  "ones the period and kernel come from; dashed: steps.")]
    if a.period is not None:
        parts += ["<h2>Standing waves</h2>",
                  _img(_profiles_figure(a), "profiles and period fit",
                       "Left: the map's mean at each distance from each isolated scatterer "
                       "(radial average) and each side of each step, with the joint fit; "
                       "grey: left out (its own period disagrees). Right: the fit's χ² "
                       "against the period.")]
    if a.kernel is not None:
        parts += ["<h2>Kernel</h2>", _img(_kernel_figure(a), "kernel and radial profile")]
    parts += ["<h2>q-space</h2>", _img(_qspace_figure(a), "power spectrum")]
    if a.slices:
        parts += ["<h2>Dispersion</h2>", _img(_band_figure(a), "dispersion")]
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>qpiset analysis: {html.escape(label)}</title>"
            f"<style>{_CSS}</style><script>{_SCRIPT}</script></head>\n"
            f"<body>\n{body}\n</body></html>\n")
