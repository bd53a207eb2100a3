"""Figures and the report: rendered headless (Agg), checked in the raster."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle

import qpiset
from qpiset.core import Grid
from qpiset.forward import simulate
from qpiset.physics import FriedelKernel
from qpiset.viz import (MARKERS, build_report, contributions, figure_bytes,
                        figure_contributions, figure_show, image_panel, power_spectrum,
                        qspace_panel, ring_of)


def raster(fig: Figure) -> np.ndarray:
    """RGB float array ``(H, W, 3)`` of the figure drawn by Agg."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(float) / 255


def centroid_of(rgb: np.ndarray, colour: str, tol: float = 0.12) -> tuple[float, float, int]:
    """(row, col, pixel count) of the pixels within ``tol`` of ``colour``."""
    near = np.all(np.abs(rgb - np.array(to_rgb(colour))) < tol, axis=-1)
    rows, cols = np.nonzero(near)
    return (rows.mean() if len(rows) else np.nan, cols.mean() if len(cols) else np.nan,
            int(near.sum()))


@pytest.fixture(scope="module")
def small():
    return simulate(FriedelKernel(), Grid(32, 50.0), n=3, seed=4, min_scatterers=2,
                    max_scatterers=6)


def test_show_figure_has_its_size_and_content(small):
    fig = figure_show(small, 1, kernel_model=FriedelKernel())
    rgb = raster(fig)
    w, h = fig.get_size_inches() * fig.dpi
    assert rgb.shape == (round(h), round(w), 3)
    assert len(fig.axes) >= 4 + 3  # four panels and their colour bars
    # not blank: plenty of pixels far from white, and many distinct colours
    assert np.mean(rgb.sum(axis=-1) < 2.4) > 0.15
    assert len(np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 500
    labels = {ax.get_xlabel() for ax in fig.axes}
    assert {"x (Å)", "q_x (Å⁻¹)", "r (Å)"} <= labels
    assert any("δρ/ρ₀" in ax.get_ylabel() for ax in fig.axes)  # a colour bar with units


@pytest.mark.parametrize("where", [(12.3, -20.0), (-40.0, 35.5)])
def test_overlay_lands_on_the_right_pixels(where):
    """Found / missed / extra markers are drawn where the data coordinates say."""
    grid = Grid(64, 100.0)
    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.subplots()
    found, missed, extra = np.array(where), np.array([-where[0], 10.0]), np.array([30.0, 30.0])
    truth = np.array([found, missed])
    pred = np.array([found + [0.4, -0.3], extra])
    image_panel(ax, np.zeros((64, 64)), grid, truth=truth, predictions=pred, colorbar=False,
                legend=False)
    rgb = raster(fig)
    height = rgb.shape[0]
    for name, point in (("matched", found), ("missed", missed), ("extra", extra)):
        style = MARKERS[name]
        colour = style.get("edgecolors", style.get("c"))
        row, col, count = centroid_of(rgb, colour)
        assert count > 10, name
        px, py = ax.transData.transform(point)
        assert abs(col - px) < 2.0 and abs(row - (height - py)) < 2.0, (name, row, col, px, py)


def test_qspace_axes_and_ring_follow_the_physics():
    grid = Grid(64, 100.0)
    kernel = FriedelKernel("Cu(111)", energy=0.0)
    ds = simulate(kernel, grid, n=4, seed=1, min_scatterers=20, max_scatterers=20)
    power, q = power_spectrum(ds.images, grid)
    assert q[0] == pytest.approx(-np.pi / grid.pitch)  # Nyquist in 1/Å
    ring = ring_of(kernel)
    assert ring[0] == pytest.approx(2 * kernel.k.real)
    # the kernel row's spectrum has its Friedel edge at 2 k_F (within half an FFT bin)
    estimated = ring_of(None, ds.kernel, grid)[0]
    assert abs(estimated - 2 * kernel.k.real) < 0.5 * 2 * np.pi / (64 * grid.pitch)
    fig = Figure()
    ax = fig.subplots()
    qspace_panel(ax, power, q, ring=ring)
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    assert len(circles) == 1 and circles[0].get_radius() == pytest.approx(2 * kernel.k.real)
    assert ax.get_xlabel() == "q_x (Å⁻¹)"


def test_contributions_add_up_to_the_clean_image(small):
    terms, s = contributions(small, 2, FriedelKernel())
    assert terms.shape == (len(small.positions[2]), 32, 32)
    np.testing.assert_allclose(s, small.strengths[2])
    clean = terms.sum(axis=0)
    assert np.max(np.abs(clean - small.images[2])) < 1e-3 * np.max(np.abs(small.images[2]))
    fig = figure_contributions(small, 2, kernel_model=FriedelKernel())
    titles = [ax.get_title() for ax in fig.axes]
    assert sum(t.startswith("#") for t in titles) == len(small.positions[2])
    assert any("image − sum" in t for t in titles)
    assert raster(fig).std() > 0.05


def test_ds_plot_and_index_errors(small):
    assert len(small.plot(0).axes) >= 4
    assert len(small.plot(0, contributions=True).axes) > 3
    with pytest.raises(IndexError, match="3 images"):
        small.plot(3)


def test_figure_bytes_are_deterministic(small):
    a = figure_bytes(figure_show(small, 0), "png")
    b = figure_bytes(figure_show(small, 0), "png")
    assert a == b and a.startswith(b"\x89PNG")
    assert figure_bytes(figure_show(small, 0), "svg").lstrip().startswith(b"<?xml")
    with pytest.raises(ValueError, match="format"):
        figure_bytes(figure_show(small, 0), "bmp")


@pytest.mark.slow  # 3 s, 6-7 s under load
def test_report_is_self_contained_and_deterministic(small):
    from qpiset.bench import run_benchmark

    results = run_benchmark(small, ["matched"])
    page = build_report(small, label="small.csv", results=results, gallery=3)
    assert page == build_report(small, label="small.csv", results=results, gallery=3)
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    for s in srcs:
        assert base64.b64decode(s.split(",", 1)[1]).startswith(b"\x89PNG")
    assert not re.search(r"(href|src)=\"(https?:|//)", page)  # nothing fetched from outside
    assert "<h2>Benchmark</h2>" in page and "matched" in page and "Example detections" in page
    assert page.count("<h2>") == 5  # summary, kernel, gallery, q-space, benchmark
    assert "no metadata" not in page and "Cu(111)" in page


def test_to_xarray_carries_coordinates_and_metadata(small):
    xd = small.to_xarray()
    assert xd["x"].attrs["units"] == "Å" and xd["y"].attrs["units"] == "Å"
    np.testing.assert_array_equal(xd["x"].values, small.grid.x)
    x, y = small.grid.x[5], small.grid.x[9]
    assert xd["images"].sel(image=1, x=x, y=y).item() == small.images[1, 9, 5]
    pos = xd["positions"].sel(image=0).values
    k = len(small.positions[0])
    np.testing.assert_array_equal(pos[:k], small.positions[0])
    assert np.isnan(pos[k:]).all()
    assert xd["counts"].values.tolist() == small.counts.tolist()
    assert json.loads(xd.attrs["qpiset_meta"])["kernel"]["material"] == "Cu(111)"
    assert xd.attrs["fov"] == 50.0


@pytest.mark.slow  # 3 s, 5-9 s under load
def test_cli_show_and_report(tmp_path, small, run):
    data = tmp_path / "d.csv"
    qpiset.write(data, small)
    pred = tmp_path / "p.json"
    pred.write_text(json.dumps({"method": "x", "positions": [p.tolist() for p in small.positions]}))
    out = tmp_path / "fig.png"
    run("show", data, "--index", 1, "--out", out, "--predictions", pred)
    assert out.read_bytes().startswith(b"\x89PNG")
    run("show", data, "--index", 2, "--out", tmp_path / "c.svg", "--contributions")
    assert (tmp_path / "c.svg").stat().st_size > 10_000
    res = run("show", data, "--index", 9, "--out", out, "--overwrite", code=2)
    assert "3 images" in res.output
    run("show", data, "--out", tmp_path / "fig.bmp", code=2)
    bad = tmp_path / "bad.json"
    bad.write_text('{"methods": {"a": 1}')
    res = run("report", data, "--out", tmp_path / "r.html", "--results", bad, code=1)
    assert f"{bad}:1:" in res.output and "Traceback" not in res.output
    results = tmp_path / "res.json"
    run("bench", data, "--methods", "matched", "--out", results)
    run("report", data, "--out", tmp_path / "r.html", "--results", results)
    res = run("report", data, "--out", tmp_path / "r.html", code=1)  # exists: not replaced
    assert "give --overwrite" in res.output
    page = (tmp_path / "r.html").read_text()
    assert "Example detections" in page and page.count('class="fig"') >= 6


def test_report_on_a_file_without_images(tmp_path, run):
    path = tmp_path / "empty.csv"
    run("generate", path, "--n", 0, "--resolution", 16)
    run("report", path, "--out", tmp_path / "r.html")
    assert "no images" in (tmp_path / "r.html").read_text()
