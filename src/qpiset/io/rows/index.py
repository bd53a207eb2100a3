"""Random access to a row-format file: one pass over the line offsets, then any image row
read, parsed and checked on its own (bounded memory; safe in DataLoader worker processes,
which each open the file themselves, and in threads, which share one handle under a lock)."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ...core.dataset import SENTINEL
from .parse import file_header, images_from_rows, parse_line
from .source import GZIP_MAGIC, RowSource

__all__ = ["RowIndex"]


class RowIndex:
    """The image rows of a row-format file by index.

    Opening reads lines 1-3 (:attr:`header`, :attr:`grid`, :attr:`kernel`) and scans the
    file once for line offsets; :meth:`values` then reads, parses and checks one line, so
    a bad line raises :class:`~qpiset.core.FormatError` naming file, line and column. A
    gzipped file is decompressed into memory first (no random access into gzip).

    Examples
    --------
    >>> import tempfile, os, qpiset
    >>> from qpiset.physics import FriedelKernel
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
    >>> qpiset.write(path, qpiset.simulate(FriedelKernel(), qpiset.Grid(16, 30.0), n=4,
    ...                                    max_scatterers=3))
    >>> rows = RowIndex(path)
    >>> len(rows), rows.image(2).shape, rows.positions(2).shape[1]
    (4, (16, 16), 2)
    """

    def __init__(self, path, order: str = "F") -> None:
        self.path = os.fspath(path)
        self.order = order
        self.header = file_header(self.path)
        self.grid = self.header.grid
        self.max_scatterers = self.header.max_scatterers
        R = self.grid.resolution
        self.kernel = images_from_rows(self.header.kernel_pixels[None], R, order)[0]
        self._memory: bytes | None = None
        self._handle: tuple[int, Any] | None = None
        self._lock = threading.Lock()
        with open(self.path, "rb") as f:
            if f.read(2) == GZIP_MAGIC:
                src = RowSource(self.path)
                try:
                    self._memory = src.read_all()
                finally:
                    src.close()
        self.offsets = self._scan()

    def _blocks(self):
        if self._memory is not None:
            yield self._memory
            return
        with open(self.path, "rb") as f:
            while True:
                block = f.read(1 << 24)
                if not block:
                    break
                yield block

    def _bytes(self, start: int, stop: int) -> bytes:
        if self._memory is not None:
            return self._memory[start:stop]
        with self._lock:  # one handle per process, one seek-and-read at a time
            pid = os.getpid()
            if self._handle is None or self._handle[0] != pid:
                self._handle = (pid, open(self.path, "rb"))
            f = self._handle[1]
            f.seek(start)
            return f.read(stop - start)

    def _scan(self) -> np.ndarray:
        """Byte offsets of the image lines (line 4 on) and of the end."""
        starts = []
        pos = 0
        for block in self._blocks():
            starts.append(np.flatnonzero(np.frombuffer(block, np.uint8) == 10) + pos + 1)
            pos += len(block)
        ends = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        if len(ends) < 3:
            return np.zeros(1, np.int64)
        offsets = ends[2:]  # line 4 starts after the third newline
        if offsets[-1] < pos:  # no newline after the last line
            offsets = np.append(offsets, pos + 1)
        # blank lines at the end are not images (as for qpiset.read)
        while len(offsets) > 1 and not self._bytes(int(offsets[-2]), int(offsets[-1])).strip():
            offsets = offsets[:-1]
        return offsets.astype(np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def values(self, i: int) -> np.ndarray:
        """Image row ``i`` (0 = line 4) as its ``(width,)`` checked values, file order."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image {i} of {n}")
        i %= n
        line = self._bytes(int(self.offsets[i]), int(self.offsets[i + 1])).rstrip(b"\r\n")
        return parse_line(self.path, i + 4, line, self.header)[0]

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as ``(R, R)`` indexed ``[iy, ix]``."""
        R = self.grid.resolution
        return images_from_rows(self.values(i)[None, : R * R], R, self.order)[0]

    def positions(self, i: int) -> np.ndarray:
        """The scatterers ``(k, 2)`` (Å) of image ``i``."""
        return self.item(i)[1]

    def item(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(image (R, R), positions (k, 2))`` of image ``i``, from one read."""
        R = self.grid.resolution
        values = self.values(i)
        xy = values[R * R:].reshape(-1, 2)
        return (images_from_rows(values[None, : R * R], R, self.order)[0],
                xy[~np.all(xy == SENTINEL, axis=1)])

    def close(self) -> None:
        """Close this process's file handle (a later read opens it again)."""
        with self._lock:
            if self._handle is not None:
                self._handle[1].close()
                self._handle = None

    def __enter__(self) -> "RowIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None and self._handle[0] == os.getpid():
            self._handle[1].close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handle"] = None  # each process opens its own
        state["_lock"] = None
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
