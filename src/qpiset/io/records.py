"""JSON records the commands exchange: detections (``qpiset detect --out``), benchmark
results (``qpiset bench --out``) and a kernel family's index. Read with checks (a bad file
is a :class:`~qpiset.core.FormatError` naming it), written atomically."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from ..core.errors import FormatError
from .atomic import atomic_output

__all__ = ["load_json", "write_json", "predictions_record", "read_predictions",
           "load_predictions", "Predictions",
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


def predictions_record(method: str, positions, confidence=None, images=None) -> dict:
    """The detections file's record: ``{"method": M, "images": [i, ...], "positions":
    [[[x, y], ...], ...]}`` (one position list per image, Å to 1e-6, for the images
    ``images``: default ``0 .. len(positions) - 1``), with ``"confidence"`` (to 1e-4) when
    known.

    Examples
    --------
    >>> predictions_record("sparse", [np.array([[1.0, 2.0]])])
    {'method': 'sparse', 'images': [0], 'positions': [[[1.0, 2.0]]]}
    """
    images = list(range(len(positions))) if images is None else [int(i) for i in images]
    if len(images) != len(positions):
        raise ValueError(f"{len(positions)} position lists for {len(images)} image indices")
    record = {"method": method, "images": images,
              "positions": [np.asarray(p).round(6).tolist() for p in positions]}
    if confidence is not None:
        record["confidence"] = [np.round(c, 4).tolist() for c in confidence]
    return record


def _ranges(indices) -> str:
    """``0-99, 200, 300-301``: sorted indices as ranges (at most 4 shown)."""
    idx = sorted(int(i) for i in indices)
    runs: list[list[int]] = []
    for i in idx:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    shown = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:4]]
    return ", ".join(shown) + (", ..." if len(runs) > 4 else "")


@dataclass
class Predictions:
    """A detections file (``qpiset detect --out``): the images it covers and the
    positions found in each (:func:`load_predictions`).

    Examples
    --------
    >>> p = Predictions("p.json", "sparse", [3, 4], [np.zeros((0, 2)), np.ones((1, 2))])
    >>> p.covers(4), p.covers(0), p.get(4).tolist(), p.describe()
    (True, False, [[1.0, 1.0]], '2 images (3-4)')
    """

    path: str
    method: str | None
    images: list[int]
    positions: list[np.ndarray]
    confidence: list | None = None

    def __post_init__(self) -> None:
        self.images = [int(i) for i in self.images]
        self._where = {i: k for k, i in enumerate(self.images)}

    def __len__(self) -> int:
        return len(self.images)

    def covers(self, i: int) -> bool:
        """Whether the file has detections for image ``i``."""
        return int(i) in self._where

    def get(self, i: int) -> np.ndarray | None:
        """The positions ``(k, 2)`` found in image ``i``, or None when not covered."""
        k = self._where.get(int(i))
        return None if k is None else self.positions[k]

    def describe(self) -> str:
        """``"100 images (0-99)"``: how many images it covers, which."""
        n = len(self.images)
        return f"{n} image{'s' if n != 1 else ''}" + (f" ({_ranges(self.images)})" if n else "")


def load_predictions(path, n_images: int | None = None) -> Predictions:
    """A detections file, checked: ``[x, y]`` pairs, finite; the image indices it
    covers (``"images"``; a file without them covers images ``0 .. n - 1`` for its ``n``
    position lists), distinct, and within the ``n_images`` of the data when given. Any
    subset of the images is accepted."""
    record = load_json(path)
    positions = record.get("positions") if isinstance(record, dict) else None
    if not isinstance(positions, list):
        raise FormatError(path, None, None, 'expected {"images": [i, ...], "positions": '
                                            '[[[x, y], ...], ...]}')
    images = record.get("images")
    if images is None:  # files written before the indices were recorded: 0 .. n - 1
        if n_images is not None and len(positions) > n_images:
            raise FormatError(path, None, None, f"{len(positions)} position lists for "
                                                f"{n_images} images")
        images = list(range(len(positions)))
    if not isinstance(images, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in images):
        raise FormatError(path, None, None, '"images" must be a list of image indices')
    if len(images) != len(positions):
        raise FormatError(path, None, None, f"{len(positions)} position lists for "
                                            f"{len(images)} image indices")
    if len(set(images)) != len(images):
        raise FormatError(path, None, None, '"images" lists an image more than once')
    for i in images:
        if i < 0 or (n_images is not None and i >= n_images):
            raise FormatError(path, None, None, f"image {i} is not in the data "
                                                f"({n_images} images, 0..{n_images - 1})"
                              if n_images is not None else f"image {i}: negative index")
    out = []
    for i, p in zip(images, positions):
        try:
            arr = np.asarray(p, dtype=float).reshape(-1, 2)
        except (TypeError, ValueError):
            raise FormatError(path, None, None, f"image {i}: positions must be [x, y] pairs") from None
        if not np.all(np.isfinite(arr)):
            raise FormatError(path, None, None, f"image {i}: non-finite position")
        out.append(arr)
    confidence = record.get("confidence")
    return Predictions(str(path), record.get("method"), images, out,
                       confidence if isinstance(confidence, list) else None)


def read_predictions(path, n_images: int) -> list[np.ndarray]:
    """The position lists of a detections file that covers every image ``0 ..
    n_images - 1``, checked, one per image in order (:func:`load_predictions` takes any
    subset)."""
    pred = load_predictions(path, n_images)
    if sorted(pred.images) != list(range(n_images)):
        raise FormatError(path, None, None, f"covers {pred.describe()} of the {n_images} "
                                            "images, not all of them")
    return [pred.get(i) for i in range(n_images)]


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
