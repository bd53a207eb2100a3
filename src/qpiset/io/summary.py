"""Checking a whole file and gathering its statistics (``qpiset validate``, ``qpiset info``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .formats import PRIVATE_META, file_format
from .reading import stream

__all__ = ["Summary", "summarize", "validate"]


@dataclass
class Summary:
    """What ``qpiset info`` reports about a file."""

    path: str
    format: str
    resolution: int
    fov: float
    pitch: float
    max_scatterers: int
    n_images: int
    counts: dict
    intensity: dict
    layout: str | None
    meta: dict

    def line(self) -> str:
        c = self.counts
        return (f"{self.path}: ok: {self.n_images} images, {self.resolution}x{self.resolution} px, "
                f"fov {self.fov:g} Å, max_scatterers {self.max_scatterers}, "
                f"scatterers per image {c['min']}-{c['max']} (mean {c['mean']:.1f})")

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def summarize(path, order: str = "F", *, order_check: str = "warn",
              on_progress=None) -> Summary:
    """Validate a whole file (streaming) and gather its statistics.

    Raises :class:`~qpiset.core.FormatError` at the first problem. ``order_check`` and
    ``on_progress(done, total, unit)`` as for :func:`~qpiset.io.stream`.
    """
    path = os.fspath(path)
    if file_format(path) == "zarr":
        from .store import check_store

        check_store(path, on_progress=on_progress)
    counts: list[np.ndarray] = []
    n = 0
    total = total2 = 0.0
    lo, hi = np.inf, -np.inf
    first = None
    for part in stream(path, order=order, order_check=order_check, on_progress=on_progress):
        first = first or part
        counts.append(part.counts)
        if part.n_images:
            n += part.n_images
            total += float(part.images.sum())
            total2 += float(np.square(part.images).sum())
            lo, hi = min(lo, float(part.images.min())), max(hi, float(part.images.max()))
    c = np.concatenate(counts)
    npx = max(n, 1) * first.grid.resolution ** 2
    mean = total / npx
    stats_counts = {
        "min": int(c.min()) if c.size else 0, "max": int(c.max()) if c.size else 0,
        "mean": float(c.mean()) if c.size else 0.0, "median": float(np.median(c)) if c.size else 0.0,
        "total": int(c.sum()),
    }
    intensity = {"min": lo if n else 0.0, "max": hi if n else 0.0, "mean": mean,
                 "std": float(np.sqrt(max(total2 / npx - mean * mean, 0.0)))}
    meta = {k: v for k, v in first.meta.items() if k not in PRIVATE_META}
    fmt = file_format(path)
    return Summary(path, fmt if fmt in ("npz", "zarr") else "rows", first.grid.resolution,
                   first.grid.fov, first.grid.pitch, first.max_scatterers, n, stats_counts,
                   intensity, first.meta.get("layout"), meta)


def validate(path, order: str = "F", *, on_progress=None) -> Summary:
    """Check every line of a file; return its :class:`Summary` or raise
    :class:`~qpiset.core.FormatError`. A row-format file without qpiset's metadata whose
    images fit the other pixel order clearly better than ``order`` fails, naming the fix.
    """
    return summarize(path, order=order, order_check="error", on_progress=on_progress)
