"""Reproducible draws: which scatterers each image gets, from which seed.

Image ``i`` belongs to block ``i // BLOCK``; each block draws from its own
``numpy.random.SeedSequence(seed, spawn_key=(block,))``, geometry and noise from separate
children. So the same seed gives the same bytes whatever the number of threads or
workers, the first ``n`` images of a longer run equal a run of ``n``, and switching noise
on or off keeps the positions. Scatterers of a kernel with a crystal ``lattice`` are placed
on lattice sites (:func:`snap_to_lattice`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BLOCK", "block_generators", "draw_scatterers", "snap_to_lattice"]

#: Images per seeding block (fixed: part of the reproducibility contract).
BLOCK = 256


def block_generators(seed: int, block: int) -> tuple[np.random.Generator, np.random.SeedSequence]:
    """``(geometry generator, noise seed sequence)`` of image block ``block``."""
    geometry, noise = np.random.SeedSequence(seed, spawn_key=(block,)).spawn(2)
    return np.random.default_rng(geometry), noise


def snap_to_lattice(positions: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Move positions (k, 2) Å to the nearest lattice translation ``n1 a1 + n2 a2`` (rows
    of ``lattice``): scatterers of a crystal sit on sites equivalent to the kernel's own.

    Examples
    --------
    >>> snap_to_lattice(np.array([[1.1, -2.6]]), 2.5 * np.eye(2)).tolist()
    [[0.0, -2.5]]
    """
    lattice = np.asarray(lattice, float)
    frac = np.linalg.solve(lattice.T, np.asarray(positions, float).reshape(-1, 2).T)
    return (np.rint(frac).T @ lattice) + 0.0


def draw_scatterers(rng: np.random.Generator, count: int, recipe, half: float,
                    lattice=None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Positions and strengths of ``count`` images: per image a count uniform in
    ``[recipe.min_scatterers, recipe.max_scatterers]``, positions uniform in
    ``[-half, half)²`` (``half``: the placement window's half-width, by default half the
    field of view; snapped to ``lattice`` sites when given), strengths fixed or uniform in
    ``recipe.strength``. The order of the draws is part of the contract."""
    positions, strengths = [], []
    for _ in range(count):
        k = int(rng.integers(recipe.min_scatterers, recipe.max_scatterers + 1))
        p = rng.uniform(-half, half, (k, 2))
        if lattice is not None:
            p = snap_to_lattice(p, lattice)
        positions.append(p)
        if isinstance(recipe.strength, tuple):
            lo, hi = recipe.strength
            strengths.append(rng.uniform(lo, hi, k))
        else:
            strengths.append(np.full(k, float(recipe.strength)))
    return positions, strengths
