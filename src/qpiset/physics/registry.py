"""The kernel models by name: one registry for the simulator, the command line
(``qpiset generate --kernel NAME``, ``qpiset kernels``) and the file metadata.

A model is its module plus one line here (or a call of :func:`register_kernel` from
anywhere). Parameters that were renamed keep working under their old names with a
``FutureWarning`` (:func:`renamed_parameters`); metadata recorded under an old name is read
quietly (:func:`kernel_from_record`).
"""

from __future__ import annotations

import inspect
from typing import Any

from .base import Kernel
from .superconductor import BdGKernel
from .friedel import FriedelKernel
from .image import ImageKernel
from .lattice import LatticeKernel
from .materials import MATERIALS
from .sampled import SampledKernel, SampledKernel2D, SplineKernel

__all__ = ["KERNELS", "register_kernel", "make_kernel", "kernel_from_record",
           "describe_kernels"]

#: Kernel models by name.
KERNELS: dict[str, type[Kernel]] = {}


def register_kernel(cls: type[Kernel]) -> type[Kernel]:
    """Add a model to :data:`KERNELS` under ``cls.name`` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Kernel)) or not cls.name:
        raise TypeError(f"register a Kernel subclass with a name, got {cls!r}")
    KERNELS[cls.name] = cls
    return cls


for _cls in (FriedelKernel, LatticeKernel, BdGKernel, ImageKernel, SampledKernel,
             SampledKernel2D, SplineKernel):
    register_kernel(_cls)


def make_kernel(model: str = "friedel", **params: Any) -> Kernel:
    """Build a kernel model by name; ``make_kernel(**k.params())`` recreates ``k``.

    Examples
    --------
    >>> make_kernel("friedel", material="Ag(111)", energy=0.0).material
    'Ag(111)'
    """
    try:
        cls = KERNELS[model]
    except KeyError:
        raise ValueError(f"unknown kernel model {model!r}; models: {', '.join(KERNELS)}") from None
    return cls(**params)


def kernel_from_record(params: dict[str, Any]) -> Kernel:
    """The model that metadata records (``{"model": name, ...}``), reading parameters
    recorded under their old names without a warning, and a record made before a
    parameter existed as the model that made it (:attr:`Kernel.recorded_before`: a lattice
    record without ``projection`` is the site projection).

    Examples
    --------
    >>> kernel_from_record({"model": "friedel", "material": "Cu(111)", "gamma": 0.01}).eta
    0.01
    """
    params = dict(params)
    cls = KERNELS.get(params.get("model", "friedel"))
    for old, new in (cls.renamed if cls is not None else {}).items():
        if old in params and new not in params:
            params[new] = params.pop(old)
    for name, value in (cls.recorded_before if cls is not None else {}).items():
        params.setdefault(name, value)
    return make_kernel(**params)


def describe_kernels() -> dict[str, Any]:
    """The models (summary line, constructor parameters with defaults, renamed parameters)
    and the material presets, for ``qpiset kernels``.

    Examples
    --------
    >>> info = describe_kernels()
    >>> info["models"]["friedel"]["parameters"]["material"]
    'Cu(111)'
    """
    models = {}
    for name, cls in KERNELS.items():
        sig = inspect.signature(cls.__init__)
        given = [p for p in list(sig.parameters.values())[1:]
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        params = {p.name: (None if p.default is inspect.Parameter.empty else p.default)
                  for p in given}
        doc = inspect.getdoc(cls) or ""
        models[name] = {"summary": doc.splitlines()[0] if doc else "", "parameters": params,
                        "required": [p.name for p in given if p.default is inspect.Parameter.empty],
                        "renamed": dict(cls.renamed),
                        "scattering": list(cls.scattering)}
    materials = {m.name: {"mass": m.mass, "band_bottom": m.band_bottom}
                 for m in MATERIALS.values()}
    return {"models": models, "materials": materials}
