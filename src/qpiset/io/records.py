"""JSON records the commands exchange: detections (``qpiset detect --out``), benchmark
results (``qpiset bench --out``) and a kernel family's index. Read with checks (a bad file
is a :class:`~qpiset.core.FormatError` naming it), written atomically."""

from __future__ import annotations

import json

import numpy as np

from ..core.errors import FormatError
from .atomic import atomic_output

__all__ = ["load_json", "write_json", "predictions_record", "read_predictions",
           "read_results", "read_family_index", "FAMILY_FORMAT"]

#: The format tag of a kernel family's ``index.json``.
FAMILY_FORMAT = "qpiset-family/1"


def load_json(path):
    """A JSON file's content; a missing file or bad JSON is a FormatError naming the place."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FormatError(path, None, None, "no such file") from None
    except IsADirectoryError:
        raise FormatError(path, None, None, "is a directory, not a JSON file") from None
    except json.JSONDecodeError as exc:
        raise FormatError(path, exc.lineno, exc.colno, f"not JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise FormatError(path, None, None, "not JSON: not UTF-8 text") from None


def write_json(path, record, indent: int = 1, sort_keys: bool = False) -> None:
    """Write ``record`` as JSON (one trailing newline), atomically."""
    with atomic_output(path, compress=False) as f:
        f.write((json.dumps(record, indent=indent, sort_keys=sort_keys) + "\n").encode())


def predictions_record(method: str, positions, confidence=None) -> dict:
    """The detections file's record: ``{"method": M, "positions": [[[x, y], ...], ...]}``
    (one list per image, Å to 1e-6), with ``"confidence"`` (to 1e-4) when known.

    Examples
    --------
    >>> predictions_record("sparse", [np.array([[1.0, 2.0]])])
    {'method': 'sparse', 'positions': [[[1.0, 2.0]]]}
    """
    record = {"method": method,
              "positions": [np.asarray(p).round(6).tolist() for p in positions]}
    if confidence is not None:
        record["confidence"] = [np.round(c, 4).tolist() for c in confidence]
    return record


def read_predictions(path, n_images: int) -> list[np.ndarray]:
    """The position lists of a detections file, checked: one per image, ``[x, y]`` pairs,
    finite."""
    record = load_json(path)
    positions = record.get("positions") if isinstance(record, dict) else None
    if not isinstance(positions, list):
        raise FormatError(path, None, None, 'expected {"positions": [[[x, y], ...], ...]}')
    if len(positions) != n_images:
        raise FormatError(path, None, None, f"{len(positions)} position lists for "
                                            f"{n_images} images")
    out = []
    for i, p in enumerate(positions):
        try:
            arr = np.asarray(p, dtype=float).reshape(-1, 2)
        except (TypeError, ValueError):
            raise FormatError(path, None, None, f"image {i}: positions must be [x, y] pairs") from None
        if not np.all(np.isfinite(arr)):
            raise FormatError(path, None, None, f"image {i}: non-finite position")
        out.append(arr)
    return out


def read_results(path) -> dict:
    """A benchmark results file, checked for its shape."""
    record = load_json(path)
    methods = record.get("methods") if isinstance(record, dict) else None
    if not isinstance(methods, dict) or not all(
            isinstance(m, dict) and isinstance(m.get("bands"), dict) for m in methods.values()):
        raise FormatError(path, None, None, 'expected qpiset bench results: {"methods": '
                                            '{name: {"bands": ..., "overall": ...}}}')
    return record


def read_family_index(path) -> dict:
    """A kernel family's ``index.json``, checked for its format tag and kernel list."""
    record = load_json(path)
    if not isinstance(record, dict) or record.get("format") != FAMILY_FORMAT \
            or not isinstance(record.get("kernels"), list):
        raise FormatError(path, None, None, f"not a kernel family index ({FAMILY_FORMAT})")
    return record
