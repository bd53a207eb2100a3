"""Figure defects of issue 13, item 14: colour bars that run into the next panel, the two
meanings of "found", the edge cross of unwindowed spectra, panels without a colour bar,
and the kernel drawn twice in the report. Checked on the drawn artists and the spectra."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from qpiset.core import Grid
from qpiset.forward import simulate
from qpiset.physics import FriedelKernel
from qpiset.viz import (figure_contributions, figure_show, image_panel, kernel_panel,
                        power_spectrum, profile_panel, qspace_panel)
from qpiset.viz.figures import VALUE_LABEL, VALUE_LABEL_SHORT, hann_window


@pytest.fixture(scope="module")
def small():
    return simulate(FriedelKernel(), Grid(32, 50.0), n=3, seed=4, min_scatterers=2,
                    max_scatterers=6)


@pytest.fixture(scope="module")
def crowded():
    """The published geometry, a few tens of scatterers, noise: long tick labels."""
    return simulate(FriedelKernel("Cu(111)", energy=0.0), Grid(64, 100.0), n=3, seed=1,
                    min_scatterers=10, max_scatterers=30, noise=0.1)


@pytest.fixture(scope="module")
def twelve():
    """Twelve scatterers on a small grid: two rows of contribution panels, drawn fast."""
    return simulate(FriedelKernel(), Grid(32, 50.0), n=1, seed=2, min_scatterers=12,
                    max_scatterers=12)


# -- what overlaps what, after drawing --------------------------------------------------

def _pieces(fig, renderer):
    """``(owner, what, bbox)`` of each drawn piece: every axes' frame, its x and y axis
    (tick labels and axis label together), its titles and legend; and the figure's and
    subfigures' titles (owner ``"fig..."``)."""
    out = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison:
            continue
        out.append((i, "frame", ax.get_window_extent(renderer)))
        for what, axis in (("x axis", ax.xaxis), ("y axis", ax.yaxis)):
            bb = axis.get_tightbbox(renderer)
            if bb is not None and bb.width > 0 and bb.height > 0:
                out.append((i, what, bb))
        for t in (ax.title, ax._left_title, ax._right_title):
            if t.get_text():
                out.append((i, f"title {t.get_text()!r}", t.get_window_extent(renderer)))
        if ax.get_legend() is not None:
            out.append((i, "legend", ax.get_legend().get_window_extent(renderer)))

    def titles(f, owner):
        t = getattr(f, "_suptitle", None)
        if t is not None and t.get_text():
            out.append((owner, "suptitle", t.get_window_extent(renderer)))
        for k, sub in enumerate(getattr(f, "subfigs", [])):
            titles(sub, f"{owner}.{k}")

    titles(fig, "fig")
    return out


def collisions(fig, dpi: float = 96, margin: float = 1.0) -> list:
    """Draw ``fig`` once (as ``savefig`` does) and list the pieces of different axes that
    intersect (by more than ``margin`` px both ways), and pieces outside the figure."""
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    pieces = _pieces(fig, renderer)
    W, H = fig.bbox.width, fig.bbox.height
    bad = []
    for k, (o1, w1, b1) in enumerate(pieces):
        if b1.x0 < -margin or b1.y0 < -margin or b1.x1 > W + margin or b1.y1 > H + margin:
            bad.append((f"{o1} {w1}", "outside the figure", tuple(np.round(b1.extents))))
        for o2, w2, b2 in pieces[k + 1:]:
            dx = min(b1.x1, b2.x1) - max(b1.x0, b2.x0)
            dy = min(b1.y1, b2.y1) - max(b1.y0, b2.y0)
            if o1 != o2 and dx > margin and dy > margin:
                bad.append((f"{o1} {w1}", f"{o2} {w2}", (round(dx), round(dy))))
    return bad


def colorbars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def _report_like_kernel_figure(ds):
    """The report's kernel section: kernel and profile side by side, constrained layout."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    a, b = fig.subplots(1, 2)
    kernel_panel(a, ds.kernel, ds.grid)
    profile_panel(b, ds.kernel, ds.grid, FriedelKernel("Cu(111)", energy=0.0))
    return fig


def _thumbnail(ds, i, predictions=None):
    """A gallery thumbnail as the report draws it, with the compact colour bar."""
    fig = Figure(figsize=(3.6, 3.3), layout="constrained")
    image_panel(fig.subplots(), ds.images[i], ds.grid, truth=ds.positions[i],
                predictions=predictions, title=f"image {i}: {len(ds.positions[i])} scatterers",
                colorbar="compact", legend=predictions is not None)
    return fig


FIGURES = {
    "show": lambda ds: figure_show(ds, 1, predictions=ds.positions[1][:-1] + 0.3,
                                   kernel_model=FriedelKernel(), method="sparse"),
    "show without kernel": lambda ds: figure_show(ds, 0, kernel=False),
    "contributions": lambda ds: figure_contributions(ds, 2, kernel_model=FriedelKernel()),
    "contributions, one short row": lambda ds: figure_contributions(
        ds, 2, kernel_model=FriedelKernel(), max_terms=2),
    "kernel and profile": _report_like_kernel_figure,
    "thumbnail": lambda ds: _thumbnail(ds, 0),
}


@pytest.mark.parametrize("dpi", [96, 110])  # the report's, and figure_bytes' default
@pytest.mark.parametrize("name", list(FIGURES))
def test_colour_bar_labels_clear_the_neighbouring_panels(name, dpi, crowded):
    fig = FIGURES[name](crowded)
    assert colorbars(fig), name
    assert collisions(fig, dpi) == []


def test_the_collision_check_sees_the_former_defect(crowded):
    """figure_show's former layout ("constrained", colour bars with pad 0.03): the kernel
    panel's y axis ran into the colour bar label of the image panel."""
    fig = Figure(figsize=(11, 9.2), layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, data in ((axes[0, 0], crowded.images[1]), (axes[0, 1], crowded.kernel),
                     (axes[1, 1], np.log10(power_spectrum(crowded.images[1], crowded.grid)[0]
                                           + 1e-9))):
        im = ax.imshow(data, origin="lower", extent=[-50, 50, -50, 50])
        ax.set_xlabel("x (Å)")
        ax.set_ylabel("y (Å)")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label=VALUE_LABEL)
    profile_panel(axes[1, 0], crowded.kernel, crowded.grid)
    bad = collisions(fig, 96)
    assert any(a == "1 y axis" and b == "4 y axis" for a, b, _ in bad), bad


# -- "found" ----------------------------------------------------------------------------

def test_show_title_counts_detections_and_legend_counts_matches(small):
    truth = small.positions[1]
    n = len(truth)
    extra = np.array([[20.0, 20.0], [-20.0, -21.0], [0.5, 22.0]])
    extra = extra[np.min(np.linalg.norm(extra[:, None] - truth[None], axis=-1), axis=1) > 3]
    pred = np.concatenate([truth[:-1] + 0.2, extra])  # all but one found, plus extras
    fig = figure_show(small, 1, predictions=pred, method="sparse")
    ax = fig.axes[0]
    title = ax.get_title()
    assert f"{n} scatterers" in title and f"sparse: {len(pred)} detections" in title
    assert "found" not in title
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"found ({n - 1})", "missed (1)", f"extra ({len(extra)})"]
    # one detection, one scatterer: singular
    one = figure_show(small, 0, predictions=small.positions[0][:1], method="m").axes[0]
    assert "m: 1 detection" in one.get_title() and "1 detections" not in one.get_title()


# -- the edge cross ---------------------------------------------------------------------

def _cross_ratios(power: np.ndarray, q: np.ndarray) -> np.ndarray:
    """For each ring of radius |q| (whole bins, DC and the Nyquist corners left out): the
    mean power on the q_x = 0 and q_y = 0 lines over the mean power off them."""
    dq = q[1] - q[0]
    QX, QY = np.meshgrid(q, q)
    on = (np.abs(QX) < dq / 2) | (np.abs(QY) < dq / 2)
    ring = np.round(np.hypot(QX, QY) / dq).astype(int)
    out = []
    for k in range(2, len(q) // 2 - 1):
        sel = ring == k
        out.append(power[sel & on].mean() / power[sel & ~on].mean())
    return np.array(out)


def _smooth_field(resolution: int, n: int, seed: int) -> np.ndarray:
    """Isotropic smooth random images, cut from a four-times larger periodic field: no
    structure along the axes, but their edges do not wrap around."""
    rng = np.random.default_rng(seed)
    big = 4 * resolution
    f = np.fft.fftfreq(big)
    filt = np.exp(-(f[:, None] ** 2 + f[None] ** 2) / (2 * 0.06 ** 2))
    field = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, big, big))) * filt).real
    return field[:, :resolution, :resolution]


@pytest.mark.parametrize("resolution, seed", [(64, 0), (64, 1), (33, 2)])
def test_windowed_power_spectrum_draws_no_edge_cross(resolution, seed):
    grid = Grid(resolution, 100.0)
    images = _smooth_field(resolution, 8, seed)
    raw = _cross_ratios(*power_spectrum(images, grid, window=None))
    assert np.median(raw) > 2.5  # unwindowed: the edges put a bright cross on the axes
    windowed = _cross_ratios(*power_spectrum(images, grid))  # Hann, the default
    assert np.median(windowed) < 1.6 and windowed.max() < 2.2, windowed.round(2)


def test_power_spectrum_window_keeps_level_and_zero_mean():
    grid = Grid(64, 100.0)
    rng = np.random.default_rng(5)
    noise = rng.normal(3.0, 2.0, size=(20, 64, 64))  # white: flat spectrum 4 R² per pixel
    power, q = power_spectrum(noise, grid)
    assert q[32] == 0 and power[32, 32] == pytest.approx(0, abs=1e-6 * power.max())  # centred
    assert np.median(power) == pytest.approx(4.0 * 64 ** 2, rel=0.1)
    w = hann_window(64)
    assert w.max() == pytest.approx(1, abs=0.01) and w[0, 0] == 0 and w.min() >= 0
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, w[::-1])  # symmetric about the image centre
    assert np.all(hann_window(2) > 0) and hann_window(1)[0, 0] == 1  # tiny images keep values
    with pytest.raises(ValueError, match="window"):
        power_spectrum(noise, grid, window="kaiser")


def test_qspace_titles_name_the_window(small):
    fig = figure_show(small, 1)
    assert any("Hann window" in ax.get_title() for ax in fig.axes)
    power, q = power_spectrum(small.images, small.grid)
    a, b = Figure().subplots(1, 2)
    qspace_panel(a, power, q, title="mean power spectrum of 3 images")
    assert a.get_title() == "mean power spectrum of 3 images, Hann window"
    qspace_panel(b, *power_spectrum(small.images, small.grid, window=None), window=None)
    assert "Hann" not in b.get_title()


# -- colour bars on thumbnails and contribution panels ----------------------------------

def test_contribution_panels_share_one_colour_bar(twelve):
    fig = figure_contributions(twelve, 0, kernel_model=FriedelKernel())
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    terms = [ax for ax in fig.axes if ax.get_title().startswith("#")]
    clims = {ax.images[0].get_clim() for ax in terms}
    assert len(terms) == 12 and len(clims) == 1  # one scale
    (clim,) = clims
    shared = [cb for cb in colorbars(fig) if cb.get_ylim() == pytest.approx(clim)]
    assert len(shared) == 1 and shared[0].get_ylabel() == VALUE_LABEL
    assert len(colorbars(fig)) == 1 + 3  # and one on each of the three large panels
    # beside the grid of terms, spanning most of its rows
    cb = shared[0].get_window_extent()
    frames = [ax.get_window_extent() for ax in terms]
    assert cb.x0 > max(f.x1 for f in frames)
    top, bottom = max(f.y1 for f in frames), min(f.y0 for f in frames)
    assert cb.height > 0.7 * (top - bottom) and bottom - 2 < cb.y0 and cb.y1 < top + 2


def test_contribution_colour_bar_stands_beside_a_short_row(twelve):
    """Two terms in a row of six: the colour bar beside them, not past the empty cells."""
    fig = figure_contributions(twelve, 0, kernel_model=FriedelKernel(), max_terms=2)
    FigureCanvasAgg(fig).draw()
    terms = [ax.get_window_extent() for ax in fig.axes if ax.get_title().startswith("#")]
    shared = [ax for ax in colorbars(fig) if ax.get_window_extent().y0 > terms[0].y0 - 5]
    assert len(terms) == 2 and len(shared) == 1
    gap = shared[0].get_window_extent().x0 - terms[1].x1
    assert 0 < gap < 0.05 * fig.bbox.width


def test_thumbnail_colour_bar_is_compact_and_leaves_the_image_large(crowded):
    fig = _thumbnail(crowded, 1, predictions=crowded.positions[1][:-2])
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    (cb,) = colorbars(fig)
    assert cb.get_ylabel() == VALUE_LABEL_SHORT
    lo, hi = cb.get_ylim()
    labels = [t for t in cb.get_yticklabels() if t.get_text() and lo <= t.get_position()[1] <= hi]
    assert 3 <= len(labels) <= 6 and all(t.get_fontsize() <= 7 for t in labels)
    image = fig.axes[0].get_window_extent()
    assert image.width > 0.6 * fig.bbox.width  # the colour bar takes little room
    assert collisions(fig, 96) == []
    # plain image_panel keeps the full label; colorbar=False still draws none
    full = Figure()
    image_panel(full.subplots(), crowded.images[0], crowded.grid)
    assert [ax.get_ylabel() for ax in colorbars(full)] == [VALUE_LABEL]
    none = Figure()
    image_panel(none.subplots(), crowded.images[0], crowded.grid, colorbar=False)
    assert colorbars(none) == []


# -- the kernel drawn once --------------------------------------------------------------

def test_show_without_kernel_draws_image_and_q_space_only(small):
    full = figure_show(small, 1, kernel_model=FriedelKernel())
    fig = figure_show(small, 1, kernel_model=FriedelKernel(), kernel=False)
    main = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(main) == 2 and len(colorbars(fig)) == 2
    assert [ax.get_xlabel() for ax in main] == ["x (Å)", "q_x (Å⁻¹)"]
    assert not any("kernel" in ax.get_title() for ax in fig.axes)
    assert "r (Å)" not in {ax.get_xlabel() for ax in fig.axes}
    assert sum("kernel" in ax.get_title() for ax in full.axes) == 2  # image and profile
    assert fig.get_size_inches()[1] < full.get_size_inches()[1]
    # the same image and spectrum as in the full figure
    np.testing.assert_array_equal(main[0].images[0].get_array(), full.axes[0].images[0].get_array())
    np.testing.assert_array_equal(main[1].images[0].get_array(), full.axes[3].images[0].get_array())
