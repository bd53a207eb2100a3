"""Figures: real space with scatterer overlays, the kernel, q-space, contributions.

Plain functions over a :class:`~qpiset.core.Dataset` (or arrays and a grid) that draw
into matplotlib axes, and figure builders that combine them. Axes are in Å (real space)
and 1/Å (q-space, ``q = 2 pi f``); images are shown ``origin="lower"`` so +y points up.
Power spectra are taken of Hann-windowed images (:func:`power_spectrum`), so the image
edges, which do not wrap around, draw no cross along ``q_x = 0`` and ``q_y = 0``.
Nothing here opens a window: callers save the figure, or a notebook displays it.

:func:`figure_show` uses matplotlib's ``"compressed"`` layout: under ``"constrained"``, its
square image panels in cells of another shape got colour bars whose labels ran into the
neighbouring panel's axis labels (the tests check the drawn extents of every figure here).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from matplotlib.ticker import MaxNLocator

from ..bench import match
from ..core.grid import Grid

__all__ = ["image_panel", "kernel_panel", "profile_panel", "qspace_panel", "power_spectrum",
           "figure_show", "figure_contributions", "contributions", "ring_of", "hann_window",
           "MARKERS", "VALUE_LABEL", "VALUE_LABEL_SHORT"]

#: Colour bar label of image values: the LDOS change relative to the clean surface.
VALUE_LABEL = "δρ/ρ₀ (LDOS change)"
#: The same, for compact colour bars (thumbnails).
VALUE_LABEL_SHORT = "δρ/ρ₀"

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


def _colorbar(ax, mappable, label: str, *, compact: bool = False, **kwargs):
    """A colour bar beside ``ax`` (an axes or a list of axes sharing one scale).

    ``compact``: small tick labels, at most 5 ticks and the short label, for thumbnails.
    """
    first = np.ravel(ax)[0] if isinstance(ax, (list, tuple, np.ndarray)) else ax
    fig = first.figure
    kwargs = {"fraction": 0.046, "pad": 0.02, **kwargs}
    cb = fig.colorbar(mappable, ax=ax, label=label, **kwargs)
    if compact:
        cb.locator = MaxNLocator(5)
        cb.ax.tick_params(labelsize=7, length=2.5, pad=1.5)
        cb.ax.yaxis.label.set_fontsize(8)
        cb.ax.yaxis.labelpad = 1.5
    return cb


def image_panel(ax, image: np.ndarray, grid: Grid, *, truth=None, predictions=None,
                tol: float = 1.5, title: str | None = None, colorbar: bool | str = True,
                legend: bool = True):
    """Draw one image ``[iy, ix]`` with Å axes, and scatterer overlays.

    With ``truth`` only, true positions are black circles. With ``predictions`` too, the
    one-to-one matching within ``tol`` Å (:func:`qpiset.bench.match`) marks true
    scatterers found (green circles), missed (red x) and extra detections (orange +); the
    legend counts each: ``found (k)`` and ``missed (m)`` add up to the true scatterers,
    ``found (k)`` and ``extra (e)`` to the detections.

    ``colorbar``: True for a colour bar labelled :data:`VALUE_LABEL`, ``"compact"`` for a
    narrow one with small ticks and :data:`VALUE_LABEL_SHORT` (thumbnails), False for none.

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
    if colorbar == "compact":
        _colorbar(ax, im, VALUE_LABEL_SHORT, compact=True)
    elif colorbar:
        _colorbar(ax, im, VALUE_LABEL)
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


def hann_window(resolution: int) -> np.ndarray:
    """The rotationally symmetric 2D Hann window ``w = cos²(pi r / R)`` for ``r < R/2``,
    else 0, with ``r`` the distance in pixels from the image centre: 1 at the centre,
    falling smoothly (value and slope) to 0 on the circle that touches the edges.

    Round rather than a product of two 1D windows: the leakage of a product window lies
    along the axes, and would draw a (fainter) cross of its own under a steep spectrum.
    """
    i = np.arange(resolution) + 0.5 - resolution / 2
    r = np.hypot(*np.meshgrid(i, i))
    return np.where(r < resolution / 2, np.cos(np.pi * r / resolution) ** 2, 0.0)


def power_spectrum(images, grid: Grid, *, window: str | None = "hann"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Mean power spectrum over ``images`` (fft-shifted) and its axis ``q`` in 1/Å.

    Each image is multiplied by a round 2D Hann window (:func:`hann_window`) before its FFT:
    ``<|FT(w (img - m))|²> / mean(w²)``, with ``m`` the window-weighted mean, so the
    ``q = 0`` pixel is 0 and a flat white-noise spectrum keeps its level. Unwindowed
    (``window=None``), the jump between opposite edges of an image (which do not wrap
    around) puts a bright cross along ``q_x = 0`` and ``q_y = 0`` that is no feature of the
    data.
    """
    if window not in ("hann", None):
        raise ValueError(f"unknown window {window!r}; windows: 'hann', None")
    R = grid.resolution
    imgs = np.asarray(images, float).reshape(-1, R, R)
    w = hann_window(R) if window == "hann" else np.ones((R, R))
    power = np.zeros((R, R))
    for img in imgs:
        centred = img - np.sum(w * img) / np.sum(w)
        power += np.abs(np.fft.fft2(w * centred)) ** 2
    power /= np.mean(w ** 2)
    q = 2 * np.pi * np.fft.fftshift(np.fft.fftfreq(R, d=grid.pitch))
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
                 title: str = "q-space: |FT|² (log)", window: str | None = "Hann"):
    """A power spectrum on 1/Å axes (log colour scale), with the ``2 k_F`` circle.

    ``window``: the window the spectrum was taken with (:func:`power_spectrum`'s default,
    Hann), named in the title unless the title already does; None for none.
    """
    dq = q[1] - q[0]
    ext = [q[0] - dq / 2, q[-1] + dq / 2, q[0] - dq / 2, q[-1] + dq / 2]
    logp = np.log10(power + power.max() * 1e-12 + 1e-300)
    im = ax.imshow(logp, origin="lower", extent=ext, cmap="magma", interpolation="nearest",
                   vmin=np.percentile(logp, 5), vmax=logp.max())
    _colorbar(ax, im, "log₁₀ |FT|² (arb.)")
    if window and window.lower() not in title.lower():
        title = f"{title}, {window} window"
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
                method: str = "detections", kernel: bool = True) -> Figure:
    """Four panels: image ``index`` with overlays, the kernel, its radial profile, and
    the image's q-space spectrum (Hann-windowed) with the ``2 k_F`` ring.

    The title counts the true scatterers and, with ``predictions``, the detections
    (``<method>: N detections``); the legend's ``found`` / ``missed`` / ``extra`` split
    them by the matching (see :func:`image_panel`).

    ``kernel_model``: a physics model (for the ring and the profile line), when known.
    ``kernel=False``: only the image and its q-space, side by side (for a page that shows
    the kernel and its profile elsewhere).
    """
    _check_index(ds, index)
    if kernel:
        fig = Figure(figsize=(11, 9.2), layout="compressed")
        axes = fig.subplots(2, 2)
        ax_image, ax_q = axes[0, 0], axes[1, 1]
    else:
        fig = Figure(figsize=(11, 4.8), layout="compressed")
        ax_image, ax_q = fig.subplots(1, 2)
    n = len(ds.positions[index])
    title = f"image {index}: {n} scatterer{'s' * (n != 1)}"
    if predictions is not None:
        k = len(np.asarray(predictions).reshape(-1, 2))
        title += f"; {method}: {k} detection{'s' * (k != 1)}"
    image_panel(ax_image, ds.images[index], ds.grid, truth=ds.positions[index],
                predictions=predictions, tol=tol, title=title)
    if kernel:
        kernel_panel(axes[0, 1], ds.kernel, ds.grid)
        profile_panel(axes[1, 0], ds.kernel, ds.grid, kernel_model)
    power, q = power_spectrum(ds.images[index], ds.grid)
    qspace_panel(ax_q, power, q, ring=ring_of(kernel_model, ds.kernel, ds.grid),
                 title=f"image {index} in q-space: |FT|², Hann window (log)")
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
    """Each scatterer's term (up to ``max_terms`` small panels, on one colour scale shown
    by one shared colour bar), their sum, the image, and the image minus the sum: what
    single-scattering superposition does not explain (multiple-scattering interference,
    noise, model error)."""
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
    grid_axes = np.atleast_1d(top.subplots(rows, cols))
    im = None
    for j, ax in enumerate(grid_axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if j >= shown:
            ax.set_axis_off()
            continue
        im = ax.imshow(terms[j], origin="lower", extent=ext, cmap="RdBu_r", vmin=lo, vmax=hi)
        x, y = ds.positions[index][j]
        ax.set_title(f"#{j} ({x:.1f}, {y:.1f}) s={s[j]:.2f}", fontsize=7)
    if im is not None:  # the panels share one scale: one colour bar beside them all
        _colorbar(list(grid_axes.ravel()[:shown]), im, VALUE_LABEL, fraction=0.02,
                  shrink=0.9, aspect=12 * rows)
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
