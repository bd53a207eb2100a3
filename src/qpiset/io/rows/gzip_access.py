"""Reading a gzipped file by (decompressed) byte offset in bounded memory.

A gzip stream can only be decompressed forward. :class:`GzipRanges` decompresses forward
from the start once, and on its way keeps a copy of the decompressor's state every
:data:`CHECKPOINT` bytes of output (about 40 kB each: zlib's 32 kB window and its
state). A later read further back starts from the nearest checkpoint before it instead
of from the beginning; nothing is ever held beyond one read's bytes, one piece of output
and the checkpoints (a 10 GB file: about 300 of them).
"""

from __future__ import annotations

import bisect
import zlib

from ...core.errors import FormatError

__all__ = ["GzipRanges", "CHECKPOINT"]

#: Decompressed bytes between two saved decompressor states.
CHECKPOINT = 32 << 20
_INPUT = 1 << 16  # compressed bytes read at a time
_PIECE = 4 << 20  # most decompressed bytes made at a time


class GzipRanges:
    """Byte ranges of a gzipped file's decompressed content (one or more gzip members).

    ``read(start, size)`` returns up to ``size`` bytes from decompressed offset ``start``
    (fewer at the end). Reading forward is as fast as decompressing the file once; a read
    behind the current position restarts from the nearest checkpoint. Not thread-safe:
    callers hold a lock.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._raw = open(path, "rb")
        except OSError as exc:
            raise FormatError(path, None, None, f"cannot open: {exc.strerror}") from None
        self._points: list[tuple[int, int, object]] = []  # (out offset, in offset, state)
        self._keys: list[int] = []  # the checkpoints' out offsets, for bisect
        self._next_point = CHECKPOINT
        self._restart(0, 0, None)

    # -- the live stream -------------------------------------------------------------
    def _restart(self, out_pos: int, in_pos: int, state) -> None:
        self._raw.seek(in_pos)
        self._in = in_pos  # compressed bytes handed to the decompressor so far
        self._d = zlib.decompressobj(31) if state is None else state.copy()
        self._tail = b""  # input the decompressor has not taken yet
        self._out = out_pos  # decompressed offset of self._buf[0]
        self._buf = bytearray()
        self._eof = False
        self._drain = False

    def _fail(self, why: str):
        raise FormatError(self.path, None, None, f"cannot read compressed data ({why})")

    def _read_raw(self) -> bytes:
        data = self._raw.read(_INPUT)
        self._in += len(data)
        return data

    def _more(self) -> bool:
        """Decompress one more piece onto the buffer; False at the end of the data."""
        while not self._eof:
            if self._d.eof:  # a member ended: another may follow (zero padding may too)
                rest = (self._tail or self._read_raw()).lstrip(b"\0")
                self._tail = b""
                if not rest:
                    if self._raw_done():
                        self._eof = True
                        return False
                    continue
                self._d, self._tail = zlib.decompressobj(31), rest
                continue
            if self._tail:
                data, self._tail = self._tail, b""
            elif self._drain:
                data = b""  # the last call stopped at its output limit: empty it first
            else:
                data = self._read_raw()
                if not data:
                    if self._in == 0:  # an empty file
                        self._eof = True
                        return False
                    self._fail("the file ends inside the compressed stream")
            try:
                piece = self._d.decompress(data, _PIECE)
            except zlib.error as exc:
                self._fail(str(exc))
            self._drain = len(piece) >= _PIECE
            self._tail = self._d.unused_data if self._d.eof else self._d.unconsumed_tail
            if piece:
                self._buf.extend(piece)
                self._checkpoint()
                return True
        return False

    def _raw_done(self) -> bool:
        data = self._read_raw()
        if data:
            self._tail = data
            return False
        return True

    def _checkpoint(self) -> None:
        end = self._out + len(self._buf)
        if end < self._next_point or self._tail or self._drain or self._d.eof:
            return
        self._points.append((end, self._in, self._d.copy()))
        self._keys.append(end)
        self._next_point = end + CHECKPOINT

    # -- reading -----------------------------------------------------------------------
    def read(self, start: int, size: int) -> bytes:
        """Up to ``size`` decompressed bytes from offset ``start``."""
        stop = start + size
        if start < self._out:  # behind the live stream: back to a checkpoint
            self._seek_back(start)
        else:
            k = bisect.bisect_right(self._keys, start) - 1
            if k >= 0 and self._keys[k] > self._out + len(self._buf):
                out, inp, state = self._points[k]  # a checkpoint ahead: skip the work
                self._restart(out, inp, state)
        while True:
            end = self._out + len(self._buf)
            if end <= start:  # all before the range: drop it
                self._out = end
                self._buf = bytearray()
            if end >= stop or not self._more():
                break
        cut = start - self._out
        if cut > 0:
            del self._buf[:cut]
            self._out = start
        return bytes(self._buf[: stop - start])

    def _seek_back(self, start: int) -> None:
        k = bisect.bisect_right(self._keys, start) - 1
        if k >= 0:
            out, inp, state = self._points[k]
            self._restart(out, inp, state)
        else:
            self._restart(0, 0, None)

    def close(self) -> None:
        self._raw.close()
        self._buf = bytearray()

    def __del__(self) -> None:
        raw = getattr(self, "_raw", None)
        if raw is not None:
            raw.close()
