"""Atomic writing: every file qpiset writes (datasets, sidecars, records, figures,
checkpoints) appears under its name only when complete."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_output"]


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw:
            if compress:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                   compresslevel=1) as gz:
                    yield gz
            else:
                yield raw
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
