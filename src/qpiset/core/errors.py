"""The one error type for bad input files: ``PATH:LINE[:COLUMN]: reason``."""

from __future__ import annotations

import os

__all__ = ["FormatError"]


class FormatError(ValueError):
    """A file is malformed. ``str(err)`` is ``PATH:LINE:COLUMN: reason``.

    ``line`` and ``column`` are 1-based (the column counts fields, not characters);
    either may be ``None`` when the fault is not tied to one place.

    Examples
    --------
    >>> str(FormatError("a.csv", 5, 4097, "x is NaN"))
    'a.csv:5:4097: x is NaN'
    >>> str(FormatError("a.csv", None, None, "empty file"))
    'a.csv: empty file'
    """

    def __init__(self, path, line: int | None, column: int | None, reason: str) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.column = column
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.reason}"
