"""Random access to a row-format file: image rows by index, each read, parsed and checked
on its own, in bounded memory. The line offsets are found lazily, only as far as the
rows asked for (``len()`` scans to the end). A gzipped file is decompressed forward, with
checkpoints for going back (:mod:`.gzip_access`), never held whole. Safe in DataLoader
worker processes, which each open the file themselves, and in threads, which share one
handle under a lock."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from ...core.dataset import SENTINEL
from .gzip_access import GzipRanges
from .parse import file_header, images_from_rows, parse_line
from .source import GZIP_MAGIC

__all__ = ["RowIndex"]

#: Bytes read at a time while looking for line ends.
SCAN_BLOCK = 16 << 20


class _Offsets:
    """A growing int64 array."""

    def __init__(self) -> None:
        self.data = np.zeros(1024, np.int64)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.data):
            grown = np.zeros(max(need, 2 * len(self.data)), np.int64)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n:need] = values
        self.n = need

    def pop(self) -> None:
        self.n -= 1

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        if i < 0:
            i += self.n
        return int(self.data[i])

    def array(self) -> np.ndarray:
        return self.data[: self.n].copy()


class RowIndex:
    """The image rows of a row-format file by index.

    Opening reads lines 1-3 (:attr:`header`, :attr:`grid`, :attr:`kernel`); the line
    offsets are found as rows are asked for (:meth:`values` of row ``i`` scans only to
    its end; ``len()`` scans the whole file once). :meth:`values` reads, parses and checks
    one line, so a bad line raises :class:`~qpiset.core.FormatError` naming file, line and
    column. A gzipped file is decompressed forward as far as needed (bounded memory).

    Examples
    --------
    >>> import tempfile, os, qpiset
    >>> from qpiset.physics import FriedelKernel
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
    >>> qpiset.write(path, qpiset.simulate(FriedelKernel(), qpiset.Grid(16, 30.0), n=4,
    ...                                    max_scatterers=3))
    >>> rows = RowIndex(path)
    >>> rows.image(2).shape, rows.positions(2).shape[1], len(rows)
    ((16, 16), 2, 4)
    """

    def __init__(self, path, order: str = "F") -> None:
        self.path = os.fspath(path)
        self.header = file_header(self.path)
        self.grid = self.header.grid
        self.max_scatterers = self.header.max_scatterers
        self._kernel: tuple[str, np.ndarray] | None = None
        self.order = order
        with open(self.path, "rb") as f:
            self._gzip = f.read(2) == GZIP_MAGIC
        self._handle: tuple[int, Any] | None = None
        self._lock = threading.Lock()
        self._reset_scan()

    # -- the kernel row, in the order in use --------------------------------------------
    @property
    def kernel(self) -> np.ndarray:
        """The kernel row as an image ``(R, R)`` ``[iy, ix]`` (in :attr:`order`)."""
        if self._kernel is None or self._kernel[0] != self.order:
            R = self.grid.resolution
            self._kernel = (self.order,
                            images_from_rows(self.header.kernel_pixels[None], R, self.order)[0])
        return self._kernel[1]

    # -- bytes ---------------------------------------------------------------------------
    def _reader(self):
        """This process's open file (a plain file, or a gzip reader); caller holds the lock."""
        pid = os.getpid()
        if self._handle is None or self._handle[0] != pid:
            self._handle = (pid, GzipRanges(self.path) if self._gzip else open(self.path, "rb"))
        return self._handle[1]

    def _read(self, start: int, size: int) -> bytes:
        f = self._reader()
        if self._gzip:
            return f.read(start, size)
        f.seek(start)
        return f.read(size)

    def _bytes(self, start: int, stop: int) -> bytes:
        with self._lock:  # one handle per process, one seek-and-read at a time
            return self._read(start, stop - start)

    # -- line offsets, found lazily -------------------------------------------------------
    def _reset_scan(self) -> None:
        self._offsets = _Offsets()  # starts of image lines, then of the next line
        self._newlines = 0  # line ends seen so far
        self._scanned = 0  # bytes scanned so far
        self._complete = False

    def _scan_block(self) -> None:
        """Find the line ends in the next block; at the end of the file, close the list
        (a last line without a newline; blank lines at the end are not images)."""
        block = self._read(self._scanned, SCAN_BLOCK)
        ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10) + self._scanned + 1
        skip = max(0, 2 - self._newlines)  # line 4 starts after the third newline
        self._newlines += len(ends)
        self._offsets.extend(ends[skip:])
        self._scanned += len(block)
        if len(block) == SCAN_BLOCK:
            return
        self._complete = True
        size = self._scanned
        if self._newlines < 3:
            self._offsets = _Offsets()
            self._offsets.extend(np.zeros(1, np.int64))
            return
        if len(self._offsets) == 0 or self._offsets[-1] < size:  # no newline after the last line
            self._offsets.extend(np.array([size + 1]))
        # blank lines at the end are not images (as for qpiset.read)
        while len(self._offsets) > 1 and not self._read(
                self._offsets[-2], self._offsets[-1] - self._offsets[-2]).strip():
            self._offsets.pop()

    def _scan_to(self, i: int) -> None:
        """Scan until the end of image line ``i`` is known (or the file ends)."""
        while not self._complete and len(self._offsets) < i + 2:
            self._scan_block()

    def _scan_all(self) -> None:
        while not self._complete:
            self._scan_block()

    def __len__(self) -> int:
        with self._lock:
            self._scan_all()
            return len(self._offsets) - 1

    @property
    def offsets(self) -> np.ndarray:
        """Byte offsets of the image lines (line 4 on) and of the end (scans the file)."""
        with self._lock:
            self._scan_all()
            return self._offsets.array()

    def count(self, limit: int | None = None) -> int:
        """The number of images, or ``min(limit, number)`` found by scanning only as far
        as image ``limit`` (no further: the rest of the file is not read)."""
        if limit is None:
            return len(self)
        limit = int(limit)
        with self._lock:
            self._scan_to(limit)
            if self._complete:
                return min(limit, len(self._offsets) - 1)
            if limit > 0 and not self._read(self._offsets[limit - 1],
                                            self._offsets[limit] - self._offsets[limit - 1]
                                            ).strip():
                self._scan_all()  # a blank line: images end there if only blanks follow
                return min(limit, len(self._offsets) - 1)
            return limit

    def span(self, start: int, stop: int) -> bytes:
        """The text of image lines ``start .. stop - 1`` (0 = line 4), their line ends
        included; ``stop`` must be at most :meth:`count`."""
        with self._lock:
            self._scan_to(stop - 1)
            a, b = self._offsets[start], self._offsets[stop]
            return self._read(a, b - a)

    def _line(self, i: int) -> bytes:
        with self._lock:
            if i < 0:
                self._scan_all()
            else:
                self._scan_to(i)
            n = len(self._offsets) - 1
            if not -n <= i < n:
                if not self._complete:
                    self._scan_all()
                    n = len(self._offsets) - 1
                raise IndexError(f"image {i} of {n}")
            i %= n
            a, b = self._offsets[i], self._offsets[i + 1]
            line = self._read(a, b - a).rstrip(b"\r\n")
            if not line.strip() and not self._complete:
                self._scan_all()  # blank: an error inside the data, the end if only blanks follow
                n = len(self._offsets) - 1
                if i >= n:
                    raise IndexError(f"image {i} of {n}")
            return i, line

    # -- rows ----------------------------------------------------------------------------
    def values(self, i: int) -> np.ndarray:
        """Image row ``i`` (0 = line 4) as its ``(width,)`` checked values, file order."""
        i, line = self._line(i)
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
                if self._handle[0] == os.getpid():
                    self._handle[1].close()
                self._handle = None

    def __enter__(self) -> "RowIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle[0] == os.getpid():
            try:
                handle[1].close()
            except Exception:  # pragma: no cover - interpreter shutdown
                pass

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_handle"] = None  # each process opens its own
        state["_lock"] = None
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
