"""Which format a path is, and the metadata sidecar of a row-format file.

Formats by suffix: ``.csv`` (and any other text name) and ``.csv.gz`` are the row format;
``.npz`` is the binary container (:mod:`.npz`); ``.zarr`` is the chunked store
(:mod:`.store`). A row-format file may have a sidecar ``<name>.json`` with how the data
were made (kernel model, seed, ...).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from ..core.errors import FormatError
from .records import write_json

__all__ = ["file_format", "sidecar_path", "read_sidecar", "write_sidecar", "SIDECAR_FORMAT",
           "PRIVATE_META"]

#: The sidecar's format tag.
SIDECAR_FORMAT = "qpiset-rows/1"
#: Metadata keys that describe one reading of a file, not the data (never written).
PRIVATE_META = ("first_image", "order", "layout")


def file_format(path) -> str:
    """``"npz"``, ``"zarr"`` or ``"rows"`` (the row format, plain or gzipped) by suffix.

    Examples
    --------
    >>> file_format("a.csv.gz"), file_format("b.ZARR/"), file_format("c.npz")
    ('rows', 'zarr', 'npz')
    """
    name = os.fspath(path).lower().rstrip("/")
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".zarr"):
        return "zarr"
    return "rows"


def sidecar_path(path) -> Path:
    """Where the metadata of a row-format file lives: ``<file name>.json`` beside it."""
    p = Path(path)
    return p.with_name(p.name + ".json")


def read_sidecar(path) -> dict:
    """The metadata recorded beside a row-format file (``{}`` when there is none, or when
    it was written for another file of that name: a warning says so)."""
    side = sidecar_path(path)
    if not side.exists():
        return {}
    text = side.read_text(encoding="utf-8")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(side, exc.lineno, exc.colno, f"sidecar metadata is not JSON: {exc.msg}") from None
    size = record.get("data_bytes")
    if size is not None and size != os.path.getsize(path):
        warnings.warn(f"{side}: written for a file of {size} bytes, {path} has "
                      f"{os.path.getsize(path)}; ignoring the stale metadata", stacklevel=3)
        return {}
    return record.get("meta", {})


def write_sidecar(path, meta: dict | None, n_images: int) -> None:
    """Record ``meta`` beside the row-format file ``path`` (atomically), or remove a stale
    sidecar when there is nothing to record."""
    meta = {k: v for k, v in (meta or {}).items() if k not in PRIVATE_META}
    side = sidecar_path(path)
    if meta:
        record = {"format": SIDECAR_FORMAT, "data_bytes": os.path.getsize(path),
                  "n_images": n_images, "meta": meta}
        write_json(side, record, indent=2, sort_keys=True)
    elif side.exists():
        side.unlink()  # a sidecar from an earlier file of that name would be stale
