"""Kernel families: many distinct physical kernels, one dataset file each, with an index.

For training kernel extractors and for held-out-kernel evaluation (a published follow-up
of the seed dataset released 100 kernels x 500 images over a 400 Å field, up to 20
scatterers). :func:`sample_family` draws models x parameters x energies from physically
sensible ranges; :func:`generate_family` writes ``kernel_000.csv`` ... and ``index.json``
(kernel id -> file, model and parameters, seed, train/test split), all from one seed:
kernel ``i`` is drawn from ``SeedSequence(seed, spawn_key=(0, i))`` and its images are
generated with the seed drawn from ``SeedSequence(seed, spawn_key=(1, i))``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .grid import Grid
from .physics import KERNELS, MATERIALS, make_kernel

__all__ = ["SAMPLERS", "sample_family", "generate_family"]


def _friedel(rng: np.random.Generator, fov: float) -> dict[str, Any]:
    """A surface state (Cu/Ag/Au(111)) at an energy in its band, with a phase shift,
    a lifetime and a tip width drawn from ranges seen in experiments."""
    name = str(rng.choice(sorted(MATERIALS)))
    e0 = MATERIALS[name].band_bottom
    energy = float(rng.uniform(max(e0 + 0.05, -0.3), 0.5))
    return {"model": "friedel", "material": name, "energy": round(energy, 4),
            "phase_shift": round(float(rng.uniform(0.25, 0.5)) * math.pi, 4),
            "gamma": round(float(rng.uniform(0.0, 0.02)), 4),
            "tip_sigma": round(float(rng.uniform(0.5, 1.5)), 3)}


def _lattice(rng: np.random.Generator, fov: float) -> dict[str, Any]:
    """A square lattice (t = 1 eV, t' and filling drawn; cuprate- to free-electron-like
    Fermi surfaces) or a honeycomb lattice away from its Dirac point, lattice constant
    and orbital width drawn; reach covers the field (scatterer-pixel offsets up to fov)."""
    common = {"model": "lattice", "reach": float(np.ceil(fov + 5.0)),
              "orbital_sigma": round(float(rng.uniform(0.6, 1.2)), 3),
              "eta": round(float(rng.uniform(0.02, 0.06)), 4)}
    if rng.random() < 0.7:
        return {**common, "structure": "square", "t": 1.0,
                "tp": round(float(rng.uniform(-0.35, 0.0)), 4),
                "mu": round(float(rng.uniform(-3.0, 0.0)), 4),
                "energy": round(float(rng.uniform(-0.3, 0.3)), 4),
                "a": round(float(rng.uniform(2.5, 4.0)), 3)}
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return {**common, "structure": "honeycomb", "t": 2.7, "a": 2.46,
            "energy": round(sign * float(rng.uniform(0.3, 1.0)), 4)}


def _bdg(rng: np.random.Generator, fov: float) -> dict[str, Any]:
    """A cuprate-like d-wave superconductor (or an s-wave one) at an energy inside the
    gap, potential or magnetic scatterer, band filling drawn; reach covers the field."""
    pairing = "d" if rng.random() < 0.75 else "s"
    delta0 = round(float(rng.uniform(0.025, 0.05)), 4)
    return {"model": "bdg", "pairing": pairing, "delta0": delta0,
            "energy": round(float(rng.uniform(0.2, 0.8)) * delta0, 4),
            "scatterer": "potential" if rng.random() < 0.7 else "magnetic",
            "potential": round(float(rng.uniform(0.05, 0.5)), 3),
            "mu": round(float(rng.uniform(-0.2, -0.1)), 4),
            "reach": float(np.ceil(fov + 5.0))}


#: Parameter samplers by model name, ``f(rng, fov) -> params`` (a model absent from
#: :data:`KERNELS` is skipped).
SAMPLERS: dict[str, Callable[[np.random.Generator, float], dict[str, Any]]] = {
    "friedel": _friedel, "lattice": _lattice, "bdg": _bdg}


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
    models = [m for m in (models or SAMPLERS) if m in KERNELS]
    unknown = [m for m in (models or []) if m not in SAMPLERS]
    if unknown or not models:
        raise ValueError(f"no sampler for {unknown or models}; samplers: {', '.join(SAMPLERS)}")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in range(n_kernels):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, i)))
        for _ in range(100):
            params = SAMPLERS[models[i % len(models)]](rng, fov)
            key = json.dumps(params, sort_keys=True)
            if key not in seen:
                break
        else:  # pragma: no cover - ranges are continuous
            raise RuntimeError("could not draw a distinct kernel")
        seen.add(key)
        out.append(params)
    return out


def generate_family(outdir, n_kernels: int = 100, n: int = 500, *, seed: int = 0,
                    grid: Grid | None = None, min_scatterers: int = 1, max_scatterers: int = 20,
                    noise=None, models=None, test_fraction: float = 0.2, suffix: str = ".csv",
                    on_images: Callable[[int], object] | None = None) -> dict[str, Any]:
    """Write one dataset file per kernel into ``outdir`` and ``index.json``; returns the
    index. ``grid`` defaults to 64 px over 400 Å. The test split holds
    ``round(test_fraction * n_kernels)`` kernels, chosen by the seed."""
    from .io import atomic_output
    from .pipeline import generate_file

    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    grid = grid or Grid(64, 400.0)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    family = sample_family(n_kernels, seed, models, fov=grid.fov)
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,))).permutation(
        n_kernels)
    test = set(order[: round(test_fraction * n_kernels)].tolist())
    entries = []
    for i, params in enumerate(family):
        file_seed = int(np.random.SeedSequence(seed, spawn_key=(1, i)).generate_state(1)[0])
        name = f"kernel_{i:03d}{suffix}"
        kernel = make_kernel(**params)
        generate_file(outdir / name, kernel, grid, n, seed=file_seed,
                      min_scatterers=min_scatterers, max_scatterers=max_scatterers,
                      noise=noise, on_block=on_images)
        entries.append({"id": i, "file": name, "split": "test" if i in test else "train",
                        "seed": file_seed, "kernel": kernel.params()})
    index = {
        "format": "qpiset-family/1", "seed": seed, "n_kernels": n_kernels,
        "images_per_kernel": n, "resolution": grid.resolution, "fov": grid.fov,
        "min_scatterers": min_scatterers, "max_scatterers": max_scatterers,
        "noise": None if noise is None else noise.params(),
        "split": {"train": [e["id"] for e in entries if e["split"] == "train"],
                  "test": [e["id"] for e in entries if e["split"] == "test"]},
        "kernels": entries,
    }
    with atomic_output(outdir / "index.json", compress=False) as f:
        f.write((json.dumps(index, indent=1) + "\n").encode())
    return index
