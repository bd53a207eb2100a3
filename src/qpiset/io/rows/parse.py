"""The dataset's row format: one record per text line (see README "The row format").

=====  ==================================================================================
line   fields
=====  ==================================================================================
1      ``resolution, max_scatterers``
2      the ``resolution`` pixel-centre x coordinates in Å (y uses the same)
3      kernel image (``R²`` values), then ``2 max_scatterers`` coordinates: ``0, 0`` first,
       the rest the sentinel ``1000``
4...   image (``R²`` values), then its scatterers' ``x1, y1, x2, y2, ...``, unused = 1000
=====  ==================================================================================

Pixels are flattened column-major (MATLAB style): flat index ``iy + R * ix``.

Parsing: a columnar CSV engine (polars) parses blocks of lines; if it refuses one, an
exact line-by-line parser finds the first bad field and reports
``PATH:LINE:COLUMN: reason``. :func:`parse_line` parses one line with numpy alone (safe in
forked worker processes, unlike a thread-pooled parser), falling back on the exact one.
Every value is checked (:func:`check_values`) before it is handed out.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ...core.dataset import SENTINEL
from ...core.errors import FormatError
from ...core.grid import Grid
from ..measured import is_measurement
from .source import GZIP_MAGIC, RowSource

__all__ = ["Header", "RowChunk", "open_rows", "file_header", "read_header", "read_all_fast",
           "parse_line", "check_kernel_row", "block_values",
           "parse_row_exact", "fields_of", "check_values", "images_from_rows",
           "rows_from_images"]

_NUMBER = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)\Z", re.IGNORECASE
)


@dataclass(frozen=True)
class Header:
    """What lines 1-3 of a row-format file say."""

    path: str
    grid: Grid
    max_scatterers: int
    delimiter: bytes | None  # b",", b"\t", or None for runs of white space
    kernel_pixels: np.ndarray  # (R²,) in file order
    layout: str  # "padded" or "ragged" (from lines 1-2)

    @property
    def width(self) -> int:
        return self.grid.resolution**2 + 2 * self.max_scatterers


@dataclass
class RowChunk:
    """Consecutive image rows: ``pixels (n, R²)`` in file order and ``coords (n, 2 max)``."""

    first_line: int
    pixels: np.ndarray
    coords: np.ndarray
    #: how far into the file (bytes on disk: compressed for gzip) the reader had come
    position: int = 0


def _sniff_delimiter(line: bytes) -> bytes | None:
    if b"," in line:
        return b","
    if b"\t" in line:
        return b"\t"
    return None


def fields_of(line: bytes, delimiter: bytes | None) -> list[bytes]:
    if delimiter is None:
        return line.split()
    return [f.strip() for f in line.split(delimiter)]


def _number(path: str, lineno: int, col: int, token: bytes) -> float:
    text = token.decode("ascii", errors="replace")
    if not _NUMBER.match(text):
        shown = text if len(text) <= 24 else text[:21] + "..."
        what = "empty field" if not text else f"non-numeric token {shown!r}"
        raise FormatError(path, lineno, col, what)
    return float(text)


def _is_pad(token: bytes) -> bool:
    if not token:
        return True
    try:
        v = float(token)
    except ValueError:
        return False
    return v == 0 or v != v


def _parse_header_line1(path: str, line: bytes, delimiter) -> tuple[int, int, int]:
    fields = fields_of(line, delimiter)
    if not line.strip():
        raise FormatError(path, 1, None, "line 1 is empty; expected 'resolution, max_scatterers'")
    if len(fields) < 2:
        raise FormatError(path, 1, None,
                          f"line 1 has {len(fields)} field; expected 'resolution, max_scatterers'")
    values = []
    for col, (name, token) in enumerate(zip(("resolution", "max_scatterers"), fields), 1):
        v = _number(path, 1, col, token)
        if not (np.isfinite(v) and v == int(v) and v >= (2 if col == 1 else 1)):
            raise FormatError(path, 1, col, f"{name} must be a whole number >= {2 if col == 1 else 1}, "
                                            f"got {token.decode(errors='replace')!r}")
        values.append(int(v))
    res, slots = values
    if res > 4096:
        raise FormatError(path, 1, 1, f"resolution {res} is larger than qpiset supports (4096)")
    for col, token in enumerate(fields[2:], 3):
        if not _is_pad(token):
            raise FormatError(path, 1, col, "line 1 has data after 'resolution, max_scatterers' "
                                            "(padding must be 0, NaN or empty)")
    return res, slots, len(fields)


def _parse_header_line2(path: str, line: bytes, delimiter, res: int, width: int):
    fields = fields_of(line, delimiter)
    if len(fields) < res:
        raise FormatError(path, 2, None, f"line 2 has {len(fields)} x coordinates; "
                                         f"line 1 says resolution {res}")
    if len(fields) > width:
        raise FormatError(path, 2, width + 1, f"line 2 has {len(fields)} fields, more than the "
                                              f"{width} of a full row")
    x = np.array([_number(path, 2, c, t) for c, t in enumerate(fields[:res], 1)])
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise FormatError(path, 2, int(bad[0]) + 1, "x coordinate is not finite")
    for col, token in enumerate(fields[res:], res + 1):
        if not _is_pad(token):
            raise FormatError(path, 2, col, f"line 2 has more than {res} x coordinates "
                                            "(padding must be 0, NaN or empty)")
    try:
        grid = Grid.from_x(x)
    except ValueError as exc:
        m = re.match(r"x coordinate (\d+)", str(exc))
        raise FormatError(path, 2, int(m.group(1)) if m else None, str(exc)) from None
    if grid.fov / 2 >= SENTINEL:
        raise FormatError(path, 2, res, f"field of view {grid.fov:g} Å is too large for the "
                                        f"sentinel {SENTINEL:g} to mark absent scatterers")
    return grid, len(fields)


def parse_row_exact(path: str, lineno: int, line: bytes, delimiter, width: int) -> np.ndarray:
    """The exact (slow) parser: one line to ``width`` floats or a precise FormatError."""
    if not line.strip():
        raise FormatError(path, lineno, None, "empty line")
    fields = fields_of(line, delimiter)
    if len(fields) != width:
        raise FormatError(path, lineno, None if len(fields) < width else width + 1,
                          f"line has {len(fields)} fields, expected {width} "
                          f"(resolution² + 2·max_scatterers from line 1)")
    return np.array([_number(path, lineno, c, t) for c, t in enumerate(fields, 1)])


_WS_EDGES = re.compile(rb"(?m)^[ \t]+|[ \t]+$")
_WS_RUNS = re.compile(rb"[ \t]+")
_PADDED_DELIM = re.compile(rb"[ \t]*([,\t])[ \t]*")


def _parse_rows_fast(block: bytes, nlines: int, delimiter, width: int) -> np.ndarray | None:
    """Parse a block of lines with polars; ``None`` if anything is off (then the exact
    parser finds and reports the first bad field)."""
    import polars as pl

    if delimiter is None:
        data = _WS_RUNS.sub(b",", _WS_EDGES.sub(b"", block))
        sep = b","
    else:
        sep, data = delimiter, block
        if b" " in data:
            data = _PADDED_DELIM.sub(rb"\1", _WS_EDGES.sub(b"", data))
    if data.count(sep) != nlines * (width - 1):  # also catches empty lines
        return None
    try:
        frame = pl.read_csv(
            io.BytesIO(data), has_header=False, separator=sep.decode(),
            schema={f"c{i}": pl.Float64 for i in range(width)}, quote_char=None,
        )
    except pl.exceptions.PolarsError:  # a refusal: the exact parser says precisely what
        return None
    values = frame.to_numpy()
    if values.shape != (nlines, width) or np.isnan(values).any():
        return None  # empty fields read as null/NaN: find and report them exactly
    return values


def read_all_fast(header: Header) -> np.ndarray | None:
    """All image rows of a comma- or tab-separated file in one polars call (memory-mapped,
    multi-threaded), or ``None`` if polars refuses anything (the streaming reader then
    finds the first bad field and reports it). Values are not yet checked."""
    import polars as pl

    if header.delimiter is None:
        return None
    source = header.path
    with open(source, "rb") as f:
        if f.read(2) == GZIP_MAGIC:
            f.seek(0)
            try:
                source = io.BytesIO(gzip.GzipFile(fileobj=f).read())
            except (OSError, EOFError, zlib.error):
                return None
    try:
        frame = pl.read_csv(
            source, has_header=False, skip_rows=3, separator=header.delimiter.decode(),
            schema={f"c{i}": pl.Float64 for i in range(header.width)}, quote_char=None,
        )
    except pl.exceptions.PolarsError:
        return None
    values = frame.to_numpy()
    if np.isnan(values).any():
        return None  # empty fields, blank lines or NaN tokens: the exact reader decides
    return values


def check_values(header: Header, first_line: int, values: np.ndarray, kernel: bool = False) -> None:
    """Pixels finite; coordinates paired, finite, sentinel on both or neither, in range."""
    path, r2 = header.path, header.grid.resolution**2
    pixels, coords = values[:, :r2], values[:, r2:]
    bad = ~np.isfinite(pixels)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise FormatError(path, first_line + int(row), int(col) + 1,
                          f"pixel value is {float(pixels[row, col])!r}")
    xy = coords.reshape(len(values), coords.shape[1] // 2, 2)
    bad = ~np.isfinite(xy)
    if bad.any():
        row, slot, k = np.argwhere(bad)[0]
        raise FormatError(path, first_line + int(row), r2 + 2 * int(slot) + int(k) + 1,
                          f"coordinate is {float(xy[row, slot, k])!r}")
    is_sent = xy == SENTINEL
    half = is_sent[..., 0] != is_sent[..., 1]
    if half.any():
        row, slot = np.argwhere(half)[0]
        k = 1 if is_sent[row, slot, 0] else 0  # the one that is not the sentinel
        raise FormatError(path, first_line + int(row), r2 + 2 * int(slot) + k + 1,
                          f"scatterer {int(slot) + 1} has only one coordinate equal to the "
                          f"sentinel {SENTINEL:g} (absent slots need both)")
    limit = header.grid.fov
    wild = (np.abs(xy) > limit) & ~is_sent
    if wild.any():
        row, slot, k = np.argwhere(wild)[0]
        raise FormatError(path, first_line + int(row), r2 + 2 * int(slot) + int(k) + 1,
                          f"coordinate {float(xy[row, slot, k])!r} Å is outside the sane range "
                          f"|x|, |y| <= fov = {limit:g} Å (and is not the sentinel {SENTINEL:g})")
    if kernel:
        expected = np.full(xy.shape[1:], SENTINEL)
        expected[0] = 0.0
        if not np.array_equal(xy[0], expected):
            raise FormatError(path, first_line, r2 + 1,
                              "kernel row (line 3) must place one scatterer at (0, 0) "
                              f"and fill the other slots with {SENTINEL:g}")


def file_header(path) -> Header:
    """Lines 1-3 of a row-format file, checked (the file is closed again)."""
    path = os.fspath(path)
    src = RowSource(path)
    try:
        return read_header(path, src)
    finally:
        src.close()


def open_rows(path, chunk_rows: int = 1024,
              block_bytes: int = 64 << 20) -> tuple[Header, Iterator[RowChunk]]:
    """Read lines 1-3 and return the header and an iterator over image-row chunks.

    The iterator validates every row. Memory stays bounded: the file is parsed in blocks
    of about ``block_bytes`` of text, handed out ``chunk_rows`` rows at a time.
    """
    path = os.fspath(path)
    src = RowSource(path)
    try:
        header = read_header(path, src)
    except BaseException:
        src.close()
        raise
    return header, _iter_chunks(header, src, chunk_rows, block_bytes)


def read_header(path: str, src: RowSource) -> Header:
    if is_measurement(path):
        raise FormatError(path, None, None, "a measured STM map, not a dataset of images "
                          "with positions: qpiset.read(path) reads it (a Measurement); no "
                          "command analyses measured maps yet")
    line1 = src.readline()
    if line1 is None:
        raise FormatError(path, None, None, "empty file")
    delimiter = _sniff_delimiter(line1)
    res, slots, n1 = _parse_header_line1(path, line1, delimiter)
    width = res * res + 2 * slots
    if n1 > width:
        raise FormatError(path, 1, width + 1, f"line 1 has {n1} fields, more than the "
                                              f"{width} of a full row")
    line2 = src.readline()
    if line2 is None:
        raise FormatError(path, 2, None, "missing line 2 (the x coordinates)")
    grid, n2 = _parse_header_line2(path, line2, delimiter, res, width)
    line3 = src.readline()
    if line3 is None or not line3.strip():
        raise FormatError(path, 3, None, "missing kernel row (line 3)")
    values = parse_row_exact(path, 3, line3, delimiter, width)[None, :]
    layout = "padded" if n1 == width and n2 == width else "ragged"
    header = Header(path, grid, slots, delimiter, values[0, : res * res].copy(), layout)
    check_values(header, 3, values, kernel=True)
    check_kernel_row(path, header.kernel_pixels)
    return header


def check_kernel_row(path: str, pixels: np.ndarray, line: int | None = 3,
                     what: str = "kernel row (line 3)") -> None:
    """A usable kernel: not all zeros, not constant, and its values (finite, as
    :func:`check_values` made sure) still finite when scaled to their peak and squared
    (every use of a kernel normalises or fits it). Raises a one-line FormatError naming
    ``path`` and ``line``."""
    k = np.asarray(pixels, dtype=np.float64).ravel()
    if not np.all(np.isfinite(k)):
        raise FormatError(path, line, None, f"{what} has values that are not finite")
    peak = float(np.max(np.abs(k))) if k.size else 0.0
    if peak == 0.0:
        raise FormatError(path, line, None, f"{what} is all zeros: no kernel to use")
    if float(k.max()) == float(k.min()):
        raise FormatError(path, line, None, f"{what} is constant (every pixel {k[0]!r}): "
                                            "no kernel to use")
    with np.errstate(all="ignore"):
        scaled = k / peak
        centred = k - k.mean()
        energy = float(np.sum(centred * centred))
        ok = (np.all(np.isfinite(scaled)) and np.isfinite(energy) and energy > 0.0
              and np.isfinite(float(np.sum(k * k))))
    if not ok:
        size = "large" if peak > 1.0 else "small"
        raise FormatError(path, line, None,
                          f"{what} values are too {size} to use (largest |value| {peak:.3g}): "
                          "scaled or squared they are not finite numbers")


def _iter_chunks(header: Header, src: RowSource, chunk_rows: int, block_bytes: int):
    r2 = header.grid.resolution ** 2
    first = src.lineno + 1  # line number of the block's first line
    pending_blank = None  # first blank line seen; an error if data follows it
    held: list[np.ndarray] = []  # parsed rows not yet handed out
    held_first = first
    count = 0
    try:
        for block in src.blocks(block_bytes):
            nlines = block.count(b"\n") + 1
            if b"\r" in block:
                block = block.replace(b"\r\n", b"\n")
                if block.endswith(b"\r"):
                    block = block[:-1]
            data = block.rstrip(b" \t\n")
            if pending_blank is not None and data.strip():
                raise FormatError(header.path, pending_blank, None, "empty line inside the data")
            if not data:
                pending_blank = pending_blank or first
            else:
                if b"\n" in block[len(data):]:
                    pending_blank = first + data.count(b"\n") + 1
                values = _block_values(header, first, data)
                check_values(header, first, values)
                if not held:
                    held_first = first
                held.append(values)
                count += len(values)
                while count >= chunk_rows:  # hand out exactly chunk_rows rows at a time
                    values = np.concatenate(held) if len(held) > 1 else held[0]
                    yield RowChunk(held_first, values[:chunk_rows, :r2], values[:chunk_rows, r2:],
                                   src.position())
                    held, count = [values[chunk_rows:]], count - chunk_rows
                    held_first += chunk_rows
            first += nlines
        if count:
            values = np.concatenate(held) if len(held) > 1 else held[0]
            yield RowChunk(held_first, values[:, :r2], values[:, r2:], src.position())
    finally:
        src.close()


def block_values(header: Header, first: int, block: bytes) -> np.ndarray:
    """Lines ``first, first + 1, ...`` (``block``: their text joined by newlines, no final
    newline) as ``(n, width)`` values, parsed (not yet checked: :func:`check_values`)."""
    return _block_values(header, first, block)


def _block_values(header: Header, first: int, block: bytes) -> np.ndarray:
    values = _parse_rows_fast(block, block.count(b"\n") + 1, header.delimiter, header.width)
    if values is None:
        lines = block.split(b"\n")
        values = np.stack([parse_row_exact(header.path, first + i, ln, header.delimiter,
                                            header.width) for i, ln in enumerate(lines)])
    return values


def parse_line(path: str, lineno: int, line: bytes, header: "Header") -> np.ndarray:
    """One image line to ``(1, width)`` values, checked: numpy alone (fork-safe), the exact
    parser naming the first bad field when numpy refuses."""
    if not line.strip():
        raise FormatError(path, lineno, None, "empty line inside the data")
    fields = fields_of(line, header.delimiter)
    values = None
    if len(fields) == header.width and b"_" not in line:  # numpy would take 1_000 as 1000
        try:
            values = np.asarray(fields, dtype=np.float64)[None]
        except ValueError:
            values = None
    if values is None:
        values = parse_row_exact(path, lineno, line, header.delimiter, header.width)[None]
    check_values(header, lineno, values)
    return values


def images_from_rows(pixels: np.ndarray, resolution: int, order: str) -> np.ndarray:
    """File-order pixel rows ``(n, R²)`` -> images ``(n, R, R)`` indexed ``[iy, ix]``.

    ``order="F"``: flat index ``iy + R ix`` (the published, MATLAB column-major order);
    ``order="C"``: flat index ``ix + R iy``.
    """
    cube = pixels.reshape(len(pixels), resolution, resolution)
    if order == "F":
        return np.ascontiguousarray(cube.transpose(0, 2, 1))
    if order == "C":
        return np.ascontiguousarray(cube)
    raise ValueError(f"order must be 'F' or 'C', got {order!r}")


def rows_from_images(images: np.ndarray) -> np.ndarray:
    """Images ``(n, R, R)`` ``[iy, ix]`` -> rows ``(n, R²)`` in the file's column-major order."""
    n, r, _ = images.shape
    return images.transpose(0, 2, 1).reshape(n, r * r)
