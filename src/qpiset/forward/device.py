"""Which torch device a command runs on: ``auto``, ``cpu``, ``cuda`` or ``mps``, resolved in
one place for the simulator's torch backend, the learned methods and the command line.

``auto`` is an available GPU (CUDA, then Apple's MPS), else the CPU. Asking for a device
that is absent is a :class:`DeviceUnavailable` (a ``ValueError``, one line: the command
line prints it and exits 1). torch (the extra ``ml``) is imported only here, when a
device is resolved. :func:`using_device` sets the device that learned methods made without
an explicit ``device`` use (the CPU unless set).
"""

from __future__ import annotations

import contextlib
import contextvars

__all__ = ["DEVICES", "DeviceUnavailable", "resolve_device", "using_device", "default_device",
           "autocast_dtype"]

#: The names ``--device`` takes.
DEVICES = ("auto", "cpu", "cuda", "mps")

_DEFAULT: contextvars.ContextVar[str] = contextvars.ContextVar("qpiset_device", default="cpu")


class DeviceUnavailable(ValueError):
    """A device was asked for that this machine (or this torch build) does not have."""


def _torch():
    try:
        import torch
    except ImportError:
        raise DeviceUnavailable("a torch device needs torch: pip install 'qpiset[ml]'") from None
    return torch


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name=None):
    """The ``torch.device`` for ``name`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
    ``"mps"``, a ``torch.device``; ``None``: :func:`default_device`).

    Raises
    ------
    DeviceUnavailable
        When the device is not on this machine, in one line naming it.

    Examples
    --------
    >>> str(resolve_device("cpu"))
    'cpu'
    """
    torch = _torch()
    if name is None:
        name = default_device()
    if isinstance(name, torch.device):
        name = str(name)
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available(torch) else torch.device("cpu")
    kind = text.split(":", 1)[0]
    if kind not in DEVICES[1:]:
        raise DeviceUnavailable(f"unknown device {name!r}; devices: {', '.join(DEVICES)}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "this torch build has no CUDA" if torch.version.cuda is None \
                else "no CUDA GPU is visible"
            raise DeviceUnavailable(f"device {name!r} asked for but not available ({build}); "
                                    f"use --device cpu or auto")
        index = torch.device(text).index
        if index is not None and index >= torch.cuda.device_count():
            raise DeviceUnavailable(f"device {name!r} asked for but this machine has "
                                    f"{torch.cuda.device_count()} CUDA GPU(s)")
    if kind == "mps" and not _mps_available(torch):
        raise DeviceUnavailable(f"device {name!r} asked for but not available (no Apple MPS "
                                f"GPU); use --device cpu or auto")
    return torch.device(text)


def default_device() -> str:
    """The device learned methods use when none is named (``"cpu"`` unless
    :func:`using_device` set another)."""
    return _DEFAULT.get()


@contextlib.contextmanager
def using_device(name):
    """Context: learned methods made inside it without a ``device`` run on ``name``
    (resolved first, so an absent device is refused before any work)."""
    token = _DEFAULT.set(str(resolve_device(name)))
    try:
        yield
    finally:
        _DEFAULT.reset(token)


def autocast_dtype(device):
    """The mixed-precision type for training on ``device``: ``torch.bfloat16`` on CUDA,
    ``None`` (full float32) elsewhere."""
    torch = _torch()
    return torch.bfloat16 if torch.device(device).type == "cuda" else None
