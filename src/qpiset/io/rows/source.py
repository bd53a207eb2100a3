"""The bytes of a row-format file: plain or gzipped, as header lines and then blocks of
whole lines (CR/LF line ends and a UTF-8 byte-order mark accepted)."""

from __future__ import annotations

import gzip
import zlib
from typing import IO, Iterator

from ...core.errors import FormatError

__all__ = ["RowSource", "open_binary", "GZIP_MAGIC"]

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"


def open_binary(path: str) -> IO[bytes]:
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        raise FormatError(path, None, None, "no such file") from None
    except IsADirectoryError:
        raise FormatError(path, None, None, "is a directory, not a row-format file") from None
    except OSError as exc:
        raise FormatError(path, None, None, f"cannot open: {exc.strerror}") from None
    magic = raw.read(2)
    raw.seek(0)
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # RowSource.close closes raw too
    return raw


class RowSource:
    """A (possibly gzipped) file read as three header lines, then blocks of whole lines.

    CR/LF line ends and a UTF-8 byte-order mark are accepted.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.f = open_binary(path)
        self.lineno = 0  # lines handed out so far

    def position(self) -> int:
        """Bytes of the file on disk read so far (compressed bytes for gzip)."""
        raw = getattr(self.f, "fileobj", None) or self.f
        try:
            return int(raw.tell())
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        inner = getattr(self.f, "fileobj", None)
        self.f.close()
        if inner is not None:
            inner.close()

    def _read(self, fn, *args):
        try:
            return fn(*args)
        except (OSError, EOFError, zlib.error) as exc:
            raise FormatError(self.path, self.lineno + 1, None,
                              f"cannot read compressed data ({exc})") from None

    def read_all(self) -> bytes:
        """The rest of the (decompressed) file at once."""
        return self._read(self.f.read)

    def readline(self) -> bytes | None:
        raw = self._read(self.f.readline)
        if not raw:
            return None
        self.lineno += 1
        raw = raw.rstrip(b"\n").rstrip(b"\r") if raw.endswith(b"\n") else raw
        if self.lineno == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        return raw

    def blocks(self, block_bytes: int) -> Iterator[bytes]:
        """Yield the rest of the file as blocks of whole lines (no final newline)."""
        carry = b""
        while True:
            data = self._read(self.f.read, block_bytes)
            if not data:
                break
            if carry:
                data = carry + data
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1:]
            yield data[:cut]
        if carry:
            yield carry
