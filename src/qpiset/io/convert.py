"""Converting between the row format, ``.npz`` and the chunked store (``qpiset convert``)."""

from __future__ import annotations

import os

from ..core.errors import FormatError
from .formats import PRIVATE_META, file_format
from .reading import read, stream
from .summary import summarize
from .writing import write, write_store, write_stream

__all__ = ["convert"]


def convert(src, dst, layout: str = "padded", order: str = "F", *, on_progress=None) -> int:
    """Convert between the row format, ``.npz`` and ``.zarr``; returns the number of images.

    Row-format and store output are streamed (bounded memory); ``.npz`` output is built in
    memory. ``on_progress(done, total, unit)`` as for :func:`~qpiset.io.stream`.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.abspath(src) == os.path.abspath(dst):
        raise FormatError(dst, None, None, "output is the input file")
    if file_format(dst) == "npz":
        ds = read(src, order=order)
        write(dst, ds)
        return ds.n_images
    parts = stream(src, order=order, on_progress=on_progress)
    first = next(parts)
    meta = {k: v for k, v in first.meta.items() if k not in PRIVATE_META}

    def chunks():
        yield first.images, first.positions, first.strengths
        for part in parts:
            yield part.images, part.positions, part.strengths

    if file_format(dst) == "zarr":
        # a first pass checks every line and counts (the order matters not for that)
        n = summarize(src, order="F", order_check="off").n_images \
            if file_format(src) != "zarr" else read(src).n_images
        return write_store(dst, first.grid, first.kernel, first.max_scatterers, n, chunks(),
                           meta)
    return write_stream(dst, first.grid, first.kernel, first.max_scatterers,
                        (c[:2] for c in chunks()), meta,
                        layout=layout)
