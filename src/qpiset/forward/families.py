"""Kernel families: many distinct physical kernels drawn from one seed.

For training kernel extractors and for held-out-kernel evaluation (a published follow-up
of the seed dataset released 100 kernels x 500 images over a 400 Å field, up to 20
scatterers). :func:`sample_family` draws models x parameters x energies from physically
sensible ranges: each model with a sampler declares it
(:meth:`~qpiset.physics.Kernel.family_parameters`). Kernel ``i`` is drawn from
``SeedSequence(seed, spawn_key=(0, i))``; :func:`family_file_seed` is the seed its images
get (``SeedSequence(seed, spawn_key=(1, i))``) and :func:`family_split` the held-out
kernels (``SeedSequence(seed, spawn_key=(2,))``).

Each kernel's rotational symmetry (declared by its model,
:attr:`~qpiset.physics.Kernel.rotational_symmetry`) is recorded as :func:`symmetry_record`
gives it, and for the published dataset's training code as :func:`n_fold_label`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..physics import KERNELS, Kernel

__all__ = ["samplers", "sample_family", "family_file_seed", "family_split", "symmetry_record",
           "n_fold_label", "N_FOLDS"]

#: The n-fold classes of the published 100-kernel dataset's labels (``nfold_generate.py``):
#: 1 is isotropic (its stage-1 symmetry loss compares rotations by ±90° and 180°), 2, 3, 4
#: and 6 are ``C_n`` (rotations by 180°; 120°; 90°; 60°, 120° and 180°). A label outside
#: these (0, the value of unlabelled kernels) gets no symmetry loss.
N_FOLDS = (1, 2, 3, 4, 6)


def samplers() -> list[str]:
    """The registered models that declare a family sampler, in registry order."""
    base = Kernel.family_parameters.__func__
    return [name for name, cls in KERNELS.items() if cls.family_parameters.__func__ is not base]


def sample_family(n_kernels: int, seed: int = 0, models=None,
                  fov: float = 400.0) -> list[dict[str, Any]]:
    """``n_kernels`` distinct kernel parameter sets (each recreates its kernel through
    ``make_kernel(**params)``) for images of field ``fov`` (Å), models taken in turn from
    ``models`` (default: every model with a sampler).

    Examples
    --------
    >>> family = sample_family(3, seed=1, models=["friedel"])
    >>> len({json.dumps(p, sort_keys=True) for p in family})
    3
    """
    able = samplers()
    models = list(models or able)
    unknown = [m for m in models if m not in able]
    if unknown or not models:
        raise ValueError(f"no sampler for {unknown or models}; samplers: {', '.join(able)}")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in range(n_kernels):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, i)))
        cls = KERNELS[models[i % len(models)]]
        for _ in range(100):
            params = cls.family_parameters(rng, fov)
            key = json.dumps(params, sort_keys=True)
            if key not in seen:
                break
        else:  # pragma: no cover - ranges are continuous
            raise RuntimeError("could not draw a distinct kernel")
        seen.add(key)
        out.append(params)
    return out


def family_file_seed(seed: int, i: int) -> int:
    """The image seed of kernel ``i`` of the family drawn from ``seed``."""
    return int(np.random.SeedSequence(seed, spawn_key=(1, i)).generate_state(1)[0])


def family_split(seed: int, n_kernels: int, test_fraction: float) -> set[int]:
    """The held-out kernels: ``round(test_fraction * n_kernels)`` of them, by the seed."""
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,))).permutation(
        n_kernels)
    return set(order[: round(test_fraction * n_kernels)].tolist())


def symmetry_record(symmetry) -> int | str | None:
    """A kernel's rotational symmetry as ``index.json`` records it: ``"isotropic"``, the
    order ``n`` of ``C_n`` (1: none), or ``None`` when the model cannot say.

    Examples
    --------
    >>> symmetry_record(math.inf), symmetry_record(4), symmetry_record(None)
    ('isotropic', 4, None)
    """
    if symmetry is None:
        return None
    if math.isinf(symmetry):
        return "isotropic"
    return int(symmetry)


def n_fold_label(symmetry) -> int:
    """The label of the published dataset's n-fold array for a kernel of rotational
    symmetry ``symmetry`` (as :attr:`~qpiset.physics.Kernel.rotational_symmetry` or
    :func:`symmetry_record`): 1 for isotropic; 2, 3, 4, 6 for ``C_n``; a higher order by its
    largest subgroup among those (``C_12`` -> 6, ``C_8`` -> 4); 0 (no symmetry loss) for no
    symmetry, an order with none of them, or unknown.

    Examples
    --------
    >>> [n_fold_label(s) for s in (math.inf, "isotropic", 6, 3, 12, 8, 5, 1, None)]
    [1, 1, 6, 3, 6, 4, 0, 0, 0]
    """
    if symmetry is None:
        return 0
    if symmetry == "isotropic" or math.isinf(symmetry):
        return 1
    for n in (6, 4, 3, 2):
        if int(symmetry) % n == 0:
            return n
    return 0
