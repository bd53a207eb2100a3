"""Atomic writing: every file qpiset writes (datasets, sidecars, records, figures,
checkpoints) appears under its name only when complete, and :func:`check_output` says
before any work whether an output can be written at all."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from pathlib import Path

from ..core.errors import FormatError

__all__ = ["atomic_output", "check_output"]


def check_output(path, *, overwrite: bool = False, folder: bool = False) -> None:
    """``FormatError`` naming ``path`` unless an output can be written there: its folder
    exists and is writable, it is not a folder (a file output) or a file (``folder``), and
    it does not exist yet unless ``overwrite``. Commands call it before their work, so a
    bad output costs nothing."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FormatError(path, None, None, f"cannot write: no such directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FormatError(path, None, None, f"cannot write: permission denied in {parent}")
    if path.exists():
        if folder and not path.is_dir():
            raise FormatError(path, None, None, "exists and is not a folder")
        if not folder and path.is_dir() and path.suffix != ".zarr":
            raise FormatError(path, None, None, "is a directory, not a file name")
        if not overwrite:
            raise FormatError(path, None, None, "exists; give --overwrite to replace it")
        if not os.access(path, os.W_OK):
            raise FormatError(path, None, None, "cannot write: permission denied")


@contextlib.contextmanager
def atomic_output(path, compress: bool | None = None):
    """Binary file handle on a temporary file that replaces ``path`` only on success.

    ``compress`` (default: ``path`` ends in ``.gz``) wraps it in gzip with a fixed header
    (no time stamp, no name), so equal data gives equal bytes.
    """
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as exc:  # name the user's path, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as raw:
            if compress:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                   compresslevel=1) as gz:
                    yield gz
            else:
                yield raw
            try:
                raw.flush()
                os.fsync(raw.fileno())
            except OSError as exc:  # e.g. a full disk: name the user's path
                raise OSError(exc.errno, exc.strerror, str(path)) from None
        try:
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
