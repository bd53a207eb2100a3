"""Figures: real space with scatterer overlays, the kernel, q-space, contributions.

Plain functions over a :class:`~qpiset.core.Dataset` (or arrays and a grid) that draw
into matplotlib axes, and figure builders that combine them. Axes are in Å (real space)
and 1/Å (q-space, ``q = 2 pi f``); images are shown ``origin="lower"`` so +y points up.
Nothing here opens a window: callers save the figure, or a notebook displays it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from ..bench import match
from ..core.grid import Grid

__all__ = ["image_panel", "kernel_panel", "profile_panel", "qspace_panel", "power_spectrum",
           "figure_show", "figure_contributions", "contributions", "ring_of", "MARKERS",
           "VALUE_LABEL"]

#: Colour bar label of image values: the LDOS change relative to the clean surface.
VALUE_LABEL = "δρ/ρ₀ (LDOS change)"

#: Overlay styles; colours are plain RGB so tests can find them in a raster.
MARKERS = {
    "truth": dict(marker="o", s=46, facecolors="none", edgecolors="#000000", linewidths=1.2),
    "matched": dict(marker="o", s=46, facecolors="none", edgecolors="#00c000", linewidths=1.6),
    "missed": dict(marker="x", s=46, c="#e00000", linewidths=1.8),
    "extra": dict(marker="+", s=60, c="#ff8c00", linewidths=1.8),
}


def _extent(grid: Grid) -> list[float]:
    h = grid.pitch / 2
    return [grid.x[0] - h, grid.x[-1] + h, grid.x[0] - h, grid.x[-1] + h]


def _limits(values: np.ndarray) -> tuple[float, float]:
    """Symmetric colour limits around the median, from the 99.5th percentile (the log
    divergence at each scatterer would otherwise wash the oscillations out)."""
    centre = float(np.median(values))
    span = float(np.percentile(np.abs(values - centre), 99.5)) or 1.0
    return centre - span, centre + span


def image_panel(ax, image: np.ndarray, grid: Grid, *, truth=None, predictions=None,
                tol: float = 1.5, title: str | None = None, colorbar: bool = True,
                legend: bool = True):
    """Draw one image ``[iy, ix]`` with Å axes, and scatterer overlays.

    With ``truth`` only, true positions are black circles. With ``predictions`` too, the
    one-to-one matching within ``tol`` Å (:func:`qpiset.bench.match`) marks true
    scatterers found (green circles), missed (red x) and extra detections (orange +).

    Returns the image artist.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> g = Grid(8, 10.0)
    >>> im = image_panel(fig.subplots(), np.zeros((8, 8)), g, truth=[[0.0, 0.0]])
    """
    image = np.asarray(image, float)
    lo, hi = _limits(image)
    im = ax.imshow(image, origin="lower", extent=_extent(grid), cmap="RdBu_r", vmin=lo,
                   vmax=hi, interpolation="nearest")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label=VALUE_LABEL)
    groups = {}
    t = None if truth is None else np.asarray(truth, float).reshape(-1, 2)
    if predictions is None:
        if t is not None:
            groups["truth"] = t
    else:
        p = np.asarray(predictions, float).reshape(-1, 2)
        t = np.zeros((0, 2)) if t is None else t
        it, ip = match(t, p, tol)
        groups["matched"] = t[it]
        groups["missed"] = np.delete(t, it, axis=0)
        groups["extra"] = np.delete(p, ip, axis=0)
    labels = {"truth": "scatterer", "matched": "found", "missed": "missed", "extra": "extra"}
    for name, pts in groups.items():
        ax.scatter(pts[:, 0], pts[:, 1], label=f"{labels[name]} ({len(pts)})", zorder=3,
                   **MARKERS[name])
    ax.set_xlim(_extent(grid)[:2])
    ax.set_ylim(_extent(grid)[2:])
    if legend and groups:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.8, markerscale=0.8)
    return im


def kernel_panel(ax, kernel: np.ndarray, grid: Grid, title: str = "kernel (one scatterer at 0, 0)"):
    """The kernel image with Å axes and a colour bar."""
    return image_panel(ax, kernel, grid, title=title, legend=False)


def profile_panel(ax, kernel: np.ndarray, grid: Grid, model=None):
    """Radial profile of the kernel image: every pixel's value against its distance from
    the centre (dots), and the continuous model's azimuthal average ``K(r)`` when given
    (line)."""
    X, Y = np.meshgrid(grid.x, grid.x)
    r = np.hypot(X, Y).ravel()
    ax.plot(r, np.asarray(kernel).ravel(), ".", ms=2, color="#1f4e9c", label="kernel row pixels")
    if model is not None:
        rr = np.linspace(0, r.max(), 800)
        ax.plot(rr, model.azimuthal_average(rr), "-", lw=0.9, color="#e07000",
                label=f"model: {model.params().get('model', type(model).__name__)}")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel(VALUE_LABEL)
    ax.set_title("kernel, radial profile", fontsize=10)
    ax.legend(fontsize=7)


def power_spectrum(images, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Mean power spectrum ``<|FT(img - mean)|²>`` over ``images`` (fft-shifted) and its
    axis ``q`` in 1/Å."""
    imgs = np.asarray(images, float).reshape(-1, grid.resolution, grid.resolution)
    power = np.zeros((grid.resolution, grid.resolution))
    for img in imgs:
        power += np.abs(np.fft.fft2(img - img.mean())) ** 2
    q = 2 * np.pi * np.fft.fftshift(np.fft.fftfreq(grid.resolution, d=grid.pitch))
    return np.fft.fftshift(power / max(len(imgs), 1)), q


def ring_of(kernel_model=None, kernel_image=None, grid: Grid | None = None) -> tuple[float, str] | None:
    """``(q, label)`` of the expected ``2 k_F`` ring: the model's, when it declares one
    (:meth:`~qpiset.physics.Kernel.ring`); None for an anisotropic model without one (a
    lattice's Fermi surface is no circle); else estimated from the kernel image's
    spectrum."""
    if kernel_model is not None:
        q = kernel_model.ring()
        if q is not None:
            return float(q), "2k_F (model)"
        if not kernel_model.isotropic:
            return None
    if kernel_image is not None and grid is not None:
        from ..inverse import ring_wavevector

        return ring_wavevector([kernel_image], grid), "2k_F (from the kernel row)"
    return None


def qspace_panel(ax, power: np.ndarray, q: np.ndarray, *, ring=None,
                 title: str = "q-space: |FT|² (log)"):
    """A power spectrum on 1/Å axes (log colour scale), with the ``2 k_F`` circle."""
    dq = q[1] - q[0]
    ext = [q[0] - dq / 2, q[-1] + dq / 2, q[0] - dq / 2, q[-1] + dq / 2]
    logp = np.log10(power + power.max() * 1e-12 + 1e-300)
    im = ax.imshow(logp, origin="lower", extent=ext, cmap="magma", interpolation="nearest",
                   vmin=np.percentile(logp, 5), vmax=logp.max())
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="log₁₀ |FT|² (arb.)")
    if ring is not None:
        qr, label = ring
        ax.add_patch(Circle((0, 0), qr, fill=False, ls="--", lw=1.0, ec="#40ff40",
                            label=f"{label} = {qr:.3f} Å⁻¹"))
        ax.legend(loc="upper right", fontsize=7, framealpha=0.8)
    ax.set_xlabel("q_x (Å⁻¹)")
    ax.set_ylabel("q_y (Å⁻¹)")
    ax.set_title(title, fontsize=10)
    return im


def figure_show(ds, index: int, *, predictions=None, tol: float = 1.5, kernel_model=None,
                method: str = "detections") -> Figure:
    """Four panels: image ``index`` with overlays, the kernel, its radial profile, and
    the image's q-space spectrum with the ``2 k_F`` ring.

    ``kernel_model``: a physics model (for the ring and the profile line), when known.
    """
    _check_index(ds, index)
    fig = Figure(figsize=(11, 9.2), layout="constrained")
    axes = fig.subplots(2, 2)
    n = len(ds.positions[index])
    title = f"image {index}: {n} scatterers"
    if predictions is not None:
        title += f"; {method}: {len(np.asarray(predictions).reshape(-1, 2))} found"
    image_panel(axes[0, 0], ds.images[index], ds.grid, truth=ds.positions[index],
                predictions=predictions, tol=tol, title=title)
    kernel_panel(axes[0, 1], ds.kernel, ds.grid)
    profile_panel(axes[1, 0], ds.kernel, ds.grid, kernel_model)
    power, q = power_spectrum(ds.images[index], ds.grid)
    qspace_panel(axes[1, 1], power, q, ring=ring_of(kernel_model, ds.kernel, ds.grid),
                 title=f"image {index} in q-space: |FT|² (log)")
    return fig


def contributions(ds, index: int, kernel_model=None) -> tuple[np.ndarray, np.ndarray]:
    """Each scatterer's isolated term ``s_j K(r - r_j)`` of image ``index`` as
    ``(k, R, R)``, and the strengths used (known ones, or the fixed strength the metadata
    records, else least squares with a constant background). ``kernel_model`` defaults to
    the kernel row's continuous model."""
    from ..inverse import file_operator

    op = file_operator(ds.kernel, ds.grid, kernel_model)
    pos = ds.positions[index]
    R = ds.grid.resolution
    terms = op.terms(pos).reshape(len(pos), R, R)  # K(r - r_j), unit strength
    fixed = ds.meta.get("strength")
    if ds.strengths is not None:
        s = np.asarray(ds.strengths[index], float)
    elif isinstance(fixed, (int, float)):  # recorded: every scatterer had this strength
        s = np.full(len(pos), float(fixed))
    else:
        s = op.least_squares(np.asarray(ds.images[index]), pos).strengths
    return terms * s[:, None, None], s


def figure_contributions(ds, index: int, *, kernel_model=None, max_terms: int = 24) -> Figure:
    """Each scatterer's term (up to ``max_terms`` small panels, on one colour scale), their
    sum, the image, and the image minus the sum: what single-scattering superposition does
    not explain (multiple-scattering interference, noise, model error)."""
    _check_index(ds, index)
    terms, s = contributions(ds, index, kernel_model)
    total = terms.sum(axis=0)
    image = ds.images[index]
    shown = min(len(terms), max_terms)
    cols = 6
    rows = max(-(-shown // cols), 1)
    fig = Figure(figsize=(12, 1.9 * rows + 4.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.9 * rows, 4.0])
    lo, hi = _limits(terms[:shown]) if shown else (-1, 1)
    ext = _extent(ds.grid)
    for j, ax in enumerate(np.atleast_1d(top.subplots(rows, cols)).ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if j >= shown:
            ax.set_axis_off()
            continue
        ax.imshow(terms[j], origin="lower", extent=ext, cmap="RdBu_r", vmin=lo, vmax=hi)
        x, y = ds.positions[index][j]
        ax.set_title(f"#{j} ({x:.1f}, {y:.1f}) s={s[j]:.2f}", fontsize=7)
    more = f" (first {shown} of {len(terms)} shown)" if shown < len(terms) else ""
    top.suptitle(f"isolated terms s_j K(r - r_j), one colour scale{more}", fontsize=9)
    panels = [(total, f"sum of the {len(terms)} isolated terms"), (image, "image"),
              (image - total, "image − sum: interference + noise + model error")]
    for ax, (data, title) in zip(bottom.subplots(1, 3), panels):
        image_panel(ax, data, ds.grid, title=title, legend=False)
    fig.suptitle(f"image {index}: contributions of individual scatterers", fontsize=11)
    return fig


def _check_index(ds, index: int) -> None:
    if not 0 <= index < ds.n_images:
        raise IndexError(f"image index {index} out of range: the dataset has {ds.n_images} "
                         f"images (0..{ds.n_images - 1})")
