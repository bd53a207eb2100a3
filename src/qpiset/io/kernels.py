"""Kernel models as files: ``.npz`` holding a model's parameters, arrays as arrays.

A calibrated kernel is finer than the file's grid (a radial spline, or an image several
times finer than the pixels), so its kernel row alone would lose what calibration found.
:func:`save_kernel_model` keeps the model itself: ``make_kernel(**params)`` recreates it
(:func:`load_kernel_model`). Array-valued parameters are stored as arrays (bit-exact), the
rest as one JSON string.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.errors import FormatError
from .atomic import atomic_output

__all__ = ["save_kernel_model", "load_kernel_model"]

_FORMAT = "qpiset-kernel-model-1"


def save_kernel_model(path, kernel) -> None:
    """Write ``kernel`` (any registered model) to ``path`` (``.npz``), atomically.

    Examples
    --------
    >>> import tempfile, os
    >>> from qpiset.physics import FriedelKernel
    >>> p = os.path.join(tempfile.mkdtemp(), "k.npz")
    >>> save_kernel_model(p, FriedelKernel(tip_sigma=0.3))
    >>> load_kernel_model(p) == FriedelKernel(tip_sigma=0.3)
    True
    """
    params = kernel.params()
    arrays, rest = {}, {}
    for key, value in params.items():
        if isinstance(value, (list, tuple, np.ndarray)) and np.asarray(value).dtype.kind in "fi" \
                and np.asarray(value).size > 8:
            arrays[key] = np.asarray(value, dtype=np.float64)
        else:
            rest[key] = value
    record = json.dumps({"format": _FORMAT, "params": rest, "arrays": sorted(arrays)})
    with atomic_output(path, compress=False) as f:
        np.savez(f, __record__=np.array(record), **arrays)


def load_kernel_model(path):
    """The kernel model saved in ``path`` by :func:`save_kernel_model`; a
    :class:`~qpiset.core.errors.FormatError` naming the file when it is not one."""
    from ..physics import kernel_from_record

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            record = json.loads(str(z["__record__"]))
            if record.get("format") != _FORMAT:
                raise ValueError("not a qpiset kernel model")
            params = dict(record["params"])
            for key in record["arrays"]:
                params[key] = z[key]
    except FileNotFoundError:
        raise FormatError(path, None, None, "no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FormatError(path, None, None, f"not a qpiset kernel model ({exc})") from None
    try:
        return kernel_from_record(params)
    except (TypeError, ValueError) as exc:
        raise FormatError(path, None, None, f"bad kernel model: {exc}") from None
