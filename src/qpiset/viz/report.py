"""One self-contained HTML page about a dataset (and, optionally, a benchmark of it).

Figures are PNGs embedded as ``data:`` URIs, the style sheet is inline, and nothing is
fetched from anywhere, so the page can be mailed or archived as one file. A few lines of
script count the figures that loaded (``<body data-figures-loaded>``) and report any that
did not on the browser console; the tests read both.

The same dataset and results give the same bytes (PNG metadata without a software stamp,
no dates).
"""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np
from matplotlib.figure import Figure

from ..bench import BANDS, band_name
from ..core.dataset import Dataset
from ..io import head
from ..io.store import StoreDataset
from .figures import (figure_show, image_panel, kernel_panel, power_spectrum, profile_panel,
                      qspace_panel, ring_of)

__all__ = ["build_report", "figure_bytes", "png_bytes", "FORMATS"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}
figure{margin:.8em 0}figcaption{font-size:.85em;color:#555}
img{max-width:100%;height:auto}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));gap:.6em}
.muted{color:#777}
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = document.querySelectorAll("img.fig"), ok = 0;
  imgs.forEach(function (im) {
    if (im.complete && im.naturalWidth > 0) { ok += 1; }
    else { console.error("figure failed to load: " + im.alt); }
  });
  document.body.setAttribute("data-figures-loaded", ok + "/" + imgs.length);
});
"""


#: Figure formats by file suffix, with the metadata that would stamp a date or version.
FORMATS = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None,
                                               "CreationDate": None},
           "svg": {"Creator": None, "Date": None}}


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 110) -> bytes:
    """The figure as ``png``, ``pdf`` or ``svg`` bytes, without software or date stamps
    (the same figure gives the same bytes)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; formats: {', '.join(FORMATS)}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, metadata=FORMATS[fmt])
    return buf.getvalue()


def png_bytes(fig: Figure, dpi: int = 96) -> bytes:
    """The figure as PNG bytes (see :func:`figure_bytes`)."""
    return figure_bytes(fig, "png", dpi)


def _img(fig: Figure, alt: str, caption: str = "", dpi: int = 96) -> str:
    data = base64.b64encode(png_bytes(fig, dpi)).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img class="fig" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{data}">{cap}</figure>')


def _table(header: list[str], rows: list[list], left: int = 1) -> str:
    def cell(tag, i, v):
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{html.escape(str(v))}</{tag}>"

    out = ["<table>", "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _summary(ds, label: str) -> str:
    g = ds.grid
    counts = ds.counts
    vals = ds.images.ravel()
    rows = [
        ["file", label], ["images", ds.n_images],
        ["grid", f"{g.resolution} × {g.resolution} px, field of view {g.fov:g} Å, "
                 f"pitch {g.pitch:.4f} Å, x from {g.x[0]:g} to {g.x[-1]:g} Å"],
        ["scatterer slots per row", ds.max_scatterers],
        ["scatterers per image", f"min {counts.min() if len(counts) else 0}, "
                                 f"mean {counts.mean() if len(counts) else 0:.1f}, "
                                 f"max {counts.max() if len(counts) else 0}"],
        ["pixel values", "no images" if not vals.size else
         f"mean {vals.mean():.4g}, std {vals.std():.4g}, min {vals.min():.4g}, "
         f"max {vals.max():.4g}; percentiles 1/50/99: "
         + ", ".join(f"{v:.4g}" for v in np.percentile(vals, [1, 50, 99]))],
    ]
    kernel = ds.meta.get("kernel") or {}
    if kernel:
        rows.append(["kernel model", ", ".join(f"{k}={v}" for k, v in kernel.items()
                                                if v is not None)])
    else:
        rows.append(["kernel model", "not recorded (no metadata sidecar)"])
    gen = {k: ds.meta[k] for k in ("generator", "seed", "min_scatterers", "max_scatterers",
                                   "strength", "noise", "scattering") if k in ds.meta}
    if gen:
        rows.append(["generation", ", ".join(f"{k}={v}" for k, v in gen.items())])
    return _table(["quantity", "value"], rows, left=2)


def _histograms(ds) -> Figure:
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    a, b = fig.subplots(1, 2)
    counts = ds.counts
    top = max(int(counts.max()) if len(counts) else 1, 1)
    a.hist(counts, bins=np.arange(0.5, top + 1.5, max(1, top // 50)), color="#1f4e9c")
    a.set_xlabel("scatterers per image")
    a.set_ylabel("images")
    a.set_title("counts", fontsize=10)
    b.hist(ds.images.ravel(), bins=200, color="#b03030", log=True)
    b.set_xlabel("pixel value, δρ/ρ₀")
    b.set_ylabel("pixels")
    b.set_title("intensity", fontsize=10)
    return fig


def _kernel_figure(ds, kernel_model) -> Figure:
    fig = Figure(figsize=(10, 4), layout="constrained")
    a, b = fig.subplots(1, 2)
    kernel_panel(a, ds.kernel, ds.grid)
    profile_panel(b, ds.kernel, ds.grid, kernel_model)
    return fig


def _spectrum_figure(ds, kernel_model) -> Figure:
    fig = Figure(figsize=(5.6, 4.6), layout="constrained")
    power, q = power_spectrum(ds.images, ds.grid)
    qspace_panel(fig.subplots(), power, q, ring=ring_of(kernel_model, ds.kernel, ds.grid),
                 title=f"mean power spectrum of {ds.n_images} images")
    return fig


def _thumb(ds, i: int, predictions=None, tol: float = 1.5, title: str | None = None) -> Figure:
    fig = Figure(figsize=(3.6, 3.3), layout="constrained")
    ax = fig.subplots()
    image_panel(ax, ds.images[i], ds.grid, truth=ds.positions[i], predictions=predictions,
                tol=tol, title=title or f"image {i}: {len(ds.positions[i])} scatterers",
                colorbar="compact", legend=predictions is not None)
    return fig


def _bench_section(ds, results: dict) -> list[str]:
    tol = results.get("config", {}).get("tol", 1.5)
    out = [f"<p>Matching tolerance {tol} Å; micro-averaged over the images of each "
           "band; time is the median per image.</p>"]
    header = ["method", "scatterers", "images", "precision", "recall", "F1", "RMSE (Å)",
              "mean count error", "image NMSE", "PSNR (dB)", "median s/image"]
    rows = []
    for name, res in results.get("methods", {}).items():
        label = f"{name} (uses the truth)" if res.get("uses_truth") else name
        for band, s in list(res.get("bands", {}).items()) + [("all", res.get("overall", {}))]:
            if not s.get("images"):
                continue
            rows.append([label, band, s["images"], f"{s['precision']:.3f}", f"{s['recall']:.3f}",
                         f"{s['f1']:.3f}", f"{s['rmse']:.3f}", f"{s['count_error_mean']:+.2f}",
                         f"{s['nmse']:.2e}", f"{s['psnr']:.1f}", f"{s['seconds_median']:.3f}"])
    out.append(_table(header, rows, left=2))
    # one example per method: the image nearest the middle of the most crowded band
    examples = []
    for name, res in results.get("methods", {}).items():
        recs = [r for r in res.get("images", []) if "positions" in r and r["image"] < ds.n_images]
        if not recs:
            continue
        lo, hi = BANDS[-1]
        crowded = [r for r in recs if lo <= r["n_true"] <= hi] or recs
        f1 = [2 * r["tp"] / max(r["n_true"] + r["n_pred"], 1) for r in crowded]
        r = crowded[int(np.argsort(f1)[len(f1) // 2])]
        fig = _thumb(ds, r["image"], np.asarray(r["positions"], float).reshape(-1, 2), tol,
                     title=f"{name}: image {r['image']} ({r['n_true']} true, {r['n_pred']} detections)")
        examples.append(_img(fig, f"{name} example", f"{name}: the median-F1 image of band "
                                                     f"{band_name(lo, hi)} (or of all)"))
    if examples:
        out.append("<h3>Example detections</h3><p>Green circles: found; red x: missed; "
                   "orange +: extra detections.</p>")
        out.append('<div class="gallery">' + "".join(examples) + "</div>")
    else:
        out.append('<p class="muted">The results hold no positions, so no overlays.</p>')
    return out


#: Images of a lazily read store that the report loads (statistics, figures).
REPORT_IMAGES = 5000


def build_report(ds, *, label: str = "dataset", results: dict | None = None,
                 kernel_model=None, gallery: int = 8) -> str:
    """The HTML text of the report on ``ds`` (see the module docs).

    Parameters
    ----------
    ds : Dataset
        In memory, or opened lazily (:func:`qpiset.io.open_dataset`): then only its first
        :data:`REPORT_IMAGES` images are read.
    label : str
        How to name the data (usually its path).
    results : dict, optional
        Output of :func:`qpiset.bench.run_benchmark` (or ``qpiset bench --out``).
    kernel_model : Kernel, optional
        The physics model, when known (profile line, ``2 k_F`` ring).
    gallery : int
        Number of images in the gallery (spread evenly over the file).
    """
    note = ""
    if not isinstance(ds, Dataset):  # opened lazily: look at its first images only
        # counting reads no further than one image past what the report loads
        more = head(ds, REPORT_IMAGES + 1).n_images > REPORT_IMAGES
        total = ds.n_images if more and isinstance(ds, StoreDataset) else None  # cheap there
        ds = ds.load(REPORT_IMAGES)
        if more:
            of = f"of {total} images" if total is not None else "images; the file has more"
            note = (f'<p class="muted">Statistics and figures from the first {ds.n_images} '
                    f"{of}.</p>")
    parts = [f"<h1>QPI dataset report: {html.escape(label)}</h1>",
             "<h2>Summary</h2>", note, _summary(ds, label),
             _img(_histograms(ds), "counts and intensity histograms"),
             "<h2>Kernel</h2>",
             _img(_kernel_figure(ds, kernel_model), "kernel",
                  "The file's kernel row (one scatterer at the origin) and its radial profile.")]
    n = min(gallery, ds.n_images)
    if n:
        idx = np.unique(np.linspace(0, ds.n_images - 1, n).round().astype(int))
        parts += ["<h2>Gallery</h2>", "<p>Black circles: the file's scatterer positions.</p>",
                  '<div class="gallery">' + "".join(_img(_thumb(ds, int(i)), f"image {i}")
                                                    for i in idx) + "</div>"]
        ring = ring_of(kernel_model, ds.kernel, ds.grid)
        caption = "Mean |FT|² of the images (Hann-windowed, mean removed per image)"
        if ring is not None:
            caption += (f": Friedel oscillations put a ring at q = 2k_F; dashed: {ring[1]} = "
                        f"{ring[0]:.3f} Å⁻¹ (period π/k_F = {2 * np.pi / ring[0]:.2f} Å).")
        parts += ["<h2>q-space</h2>",
                  _img(_spectrum_figure(ds, kernel_model), "mean power spectrum", caption),
                  _img(figure_show(ds, int(idx[0]), kernel_model=kernel_model, kernel=False),
                       f"image {idx[0]} in detail")]
    if results:
        parts += ["<h2>Benchmark</h2>", *_bench_section(ds, results)]
    body = "\n".join(parts)
    meta = html.escape(json.dumps({"images": ds.n_images, "resolution": ds.grid.resolution}))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>qpiset report: {html.escape(label)}</title>"
            f"<meta name=\"qpiset\" content=\"{meta}\">"
            f"<style>{_CSS}</style><script>{_SCRIPT}</script></head>\n"
            f"<body>\n{body}\n</body></html>\n")
