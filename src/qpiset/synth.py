"""Forward model: kernel + positions (+ strengths) -> image; noise; reproducible seeding.

``image(r) = sum_i s_i K(r - r_i)`` on the pixel grid (Born superposition of
single-scatterer patterns), plus optional noise and instrument effects (:mod:`qpiset.noise`).

Speed: an isotropic kernel is tabulated once on a fine radial grid
(:meth:`qpiset.physics.Kernel.radial_table`) and a compiled loop (numba) adds each
scatterer's contribution with linear interpolation in the table: continuous positions,
no pixel snapping, maximum error ~1e-5 of the kernel's peak (``benchmarks/`` and
``tests/test_synth.py`` measure it against exact evaluation). An anisotropic kernel
(lattice models, image kernels) is tabulated once on a square 2D grid
(:meth:`~qpiset.physics.Kernel.grid_table`, step ``kernel.default_step()``) and
interpolated by cubic convolution (Keys 1981; third-order accurate). Scatterers of a
kernel with a crystal ``lattice`` are placed on lattice sites (:func:`snap_to_lattice`).

Reproducibility: image ``i`` belongs to block ``i // BLOCK``; each block draws from its own
``numpy.random.SeedSequence(seed, spawn_key=(block,))``, geometry and noise from separate
children. So the same seed gives the same bytes whatever the number of threads or workers,
the first ``n`` images of a longer run equal a run of ``n``, and switching noise on or off
keeps the positions.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numba
import numpy as np

from .dataset import Dataset
from .grid import Grid
from .noise import NoiseModel, White
from .physics import Kernel

__all__ = ["render", "render_batch", "simulate", "simulate_blocks", "WhiteNoise", "BLOCK",
           "snap_to_lattice", "SCATTERING"]

#: Images per seeding block (fixed: part of the reproducibility contract).
BLOCK = 256


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _accumulate(img, x, pos, strength, count, table, slope, inv_step):  # pragma: no cover - jit
    """img[ix, iy] += s_j K(|(x[ix], x[iy]) - pos_j|) for j < count (table lerp)."""
    res = x.shape[0]
    dy2 = np.empty(res, np.float32)
    last = table.shape[0] - 2
    for j in range(count):
        px = np.float32(pos[j, 0])
        py = np.float32(pos[j, 1])
        s = np.float32(strength[j])
        for iy in range(res):
            d = (x[iy] - py) * inv_step
            dy2[iy] = d * d
        for ix in range(res):
            d = (x[ix] - px) * inv_step
            dx2 = d * d
            for iy in range(res):
                t = np.sqrt(dx2 + dy2[iy])
                i = min(np.int32(t), last)
                f = t - np.float32(i)
                img[ix, iy] += s * (table[i] + f * slope[i])


@numba.njit(cache=True, parallel=True)
def _accumulate_batch(out, x, pos, strength, counts, table, slope, inv_step):  # pragma: no cover
    for n in numba.prange(out.shape[0]):
        _accumulate(out[n], x, pos[n], strength[n], counts[n], table, slope, inv_step)


@numba.njit(cache=True, inline="always")
def _cubic_weights(f):  # pragma: no cover - jit
    """Keys' cubic convolution weights (a = -1/2) of the 4 samples around a point at
    fraction ``f`` in [0, 1) past the second one: third-order accurate."""
    f2 = f * f
    f3 = f2 * f
    return (-0.5 * f3 + f2 - 0.5 * f, 1.5 * f3 - 2.5 * f2 + 1.0,
            -1.5 * f3 + 2.0 * f2 + 0.5 * f, 0.5 * f3 - 0.5 * f2)


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _accumulate_2d(img, x, pos, strength, count, table, inv_step, centre):  # pragma: no cover
    """img[ix, iy] += s_j K(x[ix] - x_j, x[iy] - y_j) by cubic convolution in a 2D table
    [iy, ix] whose sample (centre, centre) is K(0, 0); zero outside the table."""
    res = x.shape[0]
    last = table.shape[0] - 2
    wu = np.empty((res, 4))
    iu = np.empty(res, np.int64)
    for j in range(count):
        px = pos[j, 0]
        py = pos[j, 1]
        s = strength[j]
        for ix in range(res):
            u = (x[ix] - px) * inv_step + centre
            iu[ix] = -1
            if u >= 1.0 and u < last:
                i = np.int64(u)
                iu[ix] = i
                w0, w1, w2, w3 = _cubic_weights(u - i)
                wu[ix, 0], wu[ix, 1], wu[ix, 2], wu[ix, 3] = w0, w1, w2, w3
        for iy in range(res):
            v = (x[iy] - py) * inv_step + centre
            if v < 1.0 or v >= last:
                continue
            k = np.int64(v)
            v0, v1, v2, v3 = _cubic_weights(v - k)
            for ix in range(res):
                i = iu[ix]
                if i < 0:
                    continue
                acc = 0.0
                for dv in range(4):
                    row = k - 1 + dv
                    r = (wu[ix, 0] * table[row, i - 1] + wu[ix, 1] * table[row, i]
                         + wu[ix, 2] * table[row, i + 1] + wu[ix, 3] * table[row, i + 2])
                    acc += (v0 if dv == 0 else v1 if dv == 1 else v2 if dv == 2 else v3) * r
                img[ix, iy] += np.float32(s * acc)


@numba.njit(cache=True, parallel=True)
def _accumulate_batch_2d(out, x, pos, strength, counts, table, inv_step, centre):  # pragma: no cover
    for n in numba.prange(out.shape[0]):
        _accumulate_2d(out[n], x, pos[n], strength[n], counts[n], table, inv_step, centre)


#: Largest 2D kernel table (samples per side) before its step is coarsened.
MAX_GRID_TABLE = 4001


def _grid_table_for(kernel: Kernel, reach: float):
    step = kernel.default_step()
    step = max(step, 2 * reach / (MAX_GRID_TABLE - 1))
    table = kernel.grid_table(reach, step)
    return (table.values.astype(np.float32), np.float64(1.0 / table.step),
            np.float64(table.half_width / table.step))


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


def _table_for(kernel: Kernel, grid: Grid, reach: float):
    table = kernel.radial_table(reach)
    values = table.values.astype(np.float32)
    slope = np.empty_like(values)
    slope[:-1] = np.diff(values)
    slope[-1] = 0.0
    return values, slope, np.float32(1.0 / table.step)


def render_batch(
    kernel: Kernel,
    grid: Grid,
    positions: Sequence[np.ndarray],
    strengths: Sequence[np.ndarray] | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Clean images for many scatterer sets at once, shape ``(N, R, R)`` indexed ``[iy, ix]``.

    Parameters
    ----------
    kernel : Kernel
        Single-scatterer model.
    grid : Grid
        Pixel grid.
    positions : sequence of (k_i, 2) arrays
        Scatterer ``(x, y)`` in Å, continuous; may lie outside the field of view.
    strengths : sequence of (k_i,) arrays, optional
        Scale of each scatterer's pattern (default 1).
    threads : int, optional
        Threads for the compiled loop (default: numba's; at most NUMBA_NUM_THREADS).
        Results do not depend on it. Pixels are accumulated in float32 (the result is
        returned as float64); that keeps the error ~1e-5 of the peak, like the table.

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> img = render_batch(FriedelKernel(), Grid(16, 20.0), [np.array([[0.3, -1.2]])])
    >>> img.shape
    (1, 16, 16)
    """
    n = len(positions)
    counts = np.array([len(p) for p in positions], dtype=np.int64)
    width = max(1, int(counts.max(initial=0)))
    pos = np.zeros((n, width, 2), dtype=np.float64)
    amp = np.zeros((n, width), dtype=np.float64)
    far = 0.0
    for i, p in enumerate(positions):
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        pos[i, : len(p)] = p
        amp[i, : len(p)] = 1.0 if strengths is None else np.asarray(strengths[i], float)
        if len(p):
            far = max(far, float(np.abs(p).max()))
    if not np.all(np.isfinite(pos)) or not np.all(np.isfinite(amp)):
        raise ValueError("positions and strengths must be finite")
    reach = np.sqrt(2.0) * (grid.fov / 2 + far) + 1.0
    out = np.zeros((n, grid.resolution, grid.resolution), dtype=np.float32)
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    previous = numba.get_num_threads()
    if threads:  # numba's thread count is per calling thread; restored below
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        if kernel.isotropic:
            table, slope, inv_step = _table_for(kernel, grid, reach)
            _accumulate_batch(out, grid.x.astype(np.float32), pos, amp, counts, table, slope,
                              inv_step)
        else:  # 2D table, cubic convolution; reach along the axes suffices for a square table
            reach = grid.fov / 2 + far + 1.0
            extent = getattr(kernel, "extent", None)
            if extent is not None and extent < reach - 1.0:
                import warnings

                hint = " (raise the model's reach)" if hasattr(kernel, "reach") else ""
                warnings.warn(f"kernel {kernel.name!r} is known to {extent:g} Å from its "
                              f"scatterer, the images need {reach - 1.0:.0f} Å: patterns are "
                              f"cut there{hint}", stacklevel=2)
            table, inv_step, centre = _grid_table_for(kernel, reach)
            _accumulate_batch_2d(out, grid.x.astype(np.float64), pos, amp, counts, table,
                                 inv_step, centre)
    finally:
        numba.set_num_threads(previous)
    # the loop fills [ix, iy] (the file's column-major order); memory order is [iy, ix]
    return np.ascontiguousarray(out.transpose(0, 2, 1), dtype=np.float64)


def render(kernel: Kernel, grid: Grid, positions: np.ndarray, strengths=None) -> np.ndarray:
    """Clean image ``sum_i s_i K(r - r_i)`` of one scatterer set, ``(R, R)`` ``[iy, ix]``.

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> K, g = FriedelKernel(), Grid(32, 50.0)
    >>> a = render(K, g, [[1.0, 2.0]]); b = render(K, g, [[-7.5, 3.3]])
    >>> bool(np.allclose(render(K, g, [[1.0, 2.0], [-7.5, 3.3]]), a + b))
    True
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    s = None if strengths is None else [np.asarray(strengths, float).reshape(-1)]
    return render_batch(kernel, grid, [positions], s)[0]


#: The additive white noise of ``--noise F`` (kept under its old name; see :mod:`qpiset.noise`).
WhiteNoise = White


def _strength_draw(strength, count: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(strength, tuple):
        lo, hi = strength
        return rng.uniform(lo, hi, count)
    return np.full(count, float(strength))


def simulate_blocks(
    kernel: Kernel,
    grid: Grid,
    n: int,
    *,
    seed: int = 0,
    min_scatterers: int = 1,
    max_scatterers: int = 100,
    strength: float | tuple[float, float] = 1.0,
    noise: NoiseModel | None = None,
    threads: int | None = None,
    blocks: Sequence[int] | None = None,
    scattering: str = "born",
) -> Iterator[tuple[int, np.ndarray, list[np.ndarray], list[np.ndarray]]]:
    """Yield ``(start, images, positions, strengths)`` for consecutive blocks of images.

    Each block is independent (its own seed), so blocks can be made in any order or on
    any worker; ``blocks`` selects which block numbers to make (default: all, in order).
    ``scattering="full"`` renders each image with every multiple-scattering path
    (:mod:`qpiset.physics.multiple` for friedel kernels,
    :mod:`qpiset.physics.lattice_multiple` for lattice and bdg kernels; a strength scales
    a site's t-matrix, so the image is the Born one plus terms of second order), instead
    of the Born superposition.
    """
    _check_counts(n, min_scatterers, max_scatterers)
    render_images = _renderer(kernel, grid, scattering, threads)
    nblocks = -(-n // BLOCK)
    half = grid.fov / 2
    for b in range(nblocks) if blocks is None else blocks:
        start, stop = b * BLOCK, min(n, (b + 1) * BLOCK)
        geometry_ss, noise_ss = np.random.SeedSequence(seed, spawn_key=(b,)).spawn(2)
        rng = np.random.default_rng(geometry_ss)
        positions, strengths = [], []
        for _ in range(start, stop):
            k = int(rng.integers(min_scatterers, max_scatterers + 1))
            p = rng.uniform(-half, half, (k, 2))
            if kernel.lattice is not None:
                p = snap_to_lattice(p, kernel.lattice)
            positions.append(p)
            strengths.append(_strength_draw(strength, k, rng))
        images = render_images(positions, strengths)
        if noise is not None:
            images = noise(images, np.random.default_rng(noise_ss), grid=grid)
        yield start, images, positions, strengths


#: Scattering theories of the simulator.
SCATTERING = ("born", "full")


def _renderer(kernel: Kernel, grid: Grid, scattering: str, threads: int | None):
    """``f(positions, strengths) -> images`` for the chosen scattering theory."""
    if scattering == "born":
        return lambda pos, amp: render_batch(kernel, grid, pos, amp, threads=threads)
    if scattering != "full":
        raise ValueError(f"scattering must be one of {', '.join(SCATTERING)}, got {scattering!r}")
    from .physics import BdGKernel, FriedelKernel, LatticeKernel
    from .physics.multiple import multiple_scattering_image, propagator_table

    if isinstance(kernel, (LatticeKernel, BdGKernel)):
        from .physics.lattice_multiple import (lattice_multiple_scattering_image,
                                               lattice_propagator)

        g0 = lattice_propagator(kernel)  # clean G(R), once for the run

        def full_lattice(pos, amp):
            # strengths scale each site's t-matrix, as for the gas: Born + O(s²)
            return np.array([lattice_multiple_scattering_image(
                kernel, grid, p, a, scaling="t_matrix", propagator=g0)
                for p, a in zip(pos, amp)]).reshape(-1, grid.resolution, grid.resolution)

        return full_lattice
    if not isinstance(kernel, FriedelKernel):
        raise ValueError(f"full multiple scattering is implemented for the friedel, lattice "
                         f"and bdg models, not {kernel.name!r}")
    # one propagator table for the whole run: scatterers up to half a field outside
    order = 8
    reach = np.sqrt(2.0) * grid.fov * 1.5 + 2.0 * kernel.tip_sigma * float(
        np.polynomial.hermite.hermgauss(order)[0].max()) + 2.0
    table = propagator_table(kernel, reach)

    def full(pos, amp):
        return np.array([multiple_scattering_image(kernel, grid, p, a, order=order, table=table)
                         for p, a in zip(pos, amp)]).reshape(-1, grid.resolution, grid.resolution)

    return full


def _check_counts(n: int, lo: int, hi: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0 <= lo <= hi or hi < 1:
        raise ValueError(f"need 0 <= min_scatterers <= max_scatterers, >= 1; got {lo}, {hi}")


def kernel_image(kernel: Kernel, grid: Grid) -> np.ndarray:
    """The dataset's kernel row: one scatterer of strength 1 at (0, 0), no noise."""
    return render(kernel, grid, np.zeros((1, 2)))


def simulate(
    kernel: Kernel,
    grid: Grid | None = None,
    n: int = 1000,
    *,
    seed: int = 0,
    min_scatterers: int = 1,
    max_scatterers: int = 100,
    strength: float | tuple[float, float] = 1.0,
    noise: NoiseModel | float | None = None,
    threads: int | None = None,
    scattering: str = "born",
) -> Dataset:
    """Simulate a dataset: ``n`` images with uniform scatterer counts and positions.

    Parameters
    ----------
    kernel : Kernel
        Single-scatterer model (e.g. ``FriedelKernel("Cu(111)", energy=0.0)``).
    grid : Grid, optional
        Default ``Grid(64, 100.0)``.
    n : int
        Number of images.
    seed : int
        Run seed; the same seed gives the same bytes.
    min_scatterers, max_scatterers : int
        Scatterer count drawn uniformly from ``[min, max]``; ``max`` is also the
        number of coordinate slots in the file.
    strength : float or (lo, hi)
        Fixed strength, or drawn uniformly from ``[lo, hi)`` per scatterer.
    noise : NoiseModel or float, optional
        Noise and instrument model (:mod:`qpiset.noise`; a float is white noise of that
        fraction of each clean image's std), applied to each block of images with the
        block's own noise generator.
    threads : int, optional
        Threads for rendering; the result does not depend on it.
    scattering : {"born", "full"}
        Born superposition of single-scatterer kernels (the seed dataset's), or full
        multiple scattering (every scatterer sees the others; friedel, lattice and bdg
        kernels).

    Examples
    --------
    >>> from qpiset.physics import FriedelKernel
    >>> ds = simulate(FriedelKernel(), Grid(32, 50.0), n=3, seed=1, max_scatterers=5)
    >>> ds.images.shape, ds.max_scatterers
    ((3, 32, 32), 5)
    """
    grid = grid or Grid()
    if isinstance(noise, (int, float)):
        noise = White(float(noise)) if noise > 0 else None
    images = np.empty((n, grid.resolution, grid.resolution))
    positions: list[np.ndarray] = []
    strengths: list[np.ndarray] = []
    for start, imgs, pos, amp in simulate_blocks(
        kernel, grid, n, seed=seed, min_scatterers=min_scatterers,
        max_scatterers=max_scatterers, strength=strength, noise=noise, threads=threads,
        scattering=scattering,
    ):
        images[start:start + len(imgs)] = imgs
        positions.extend(pos)
        strengths.extend(amp)
    meta = generation_meta(kernel, n, seed, min_scatterers, max_scatterers, strength, noise,
                           scattering)
    return Dataset(grid, kernel_image(kernel, grid), images, positions, max_scatterers,
                   strengths=strengths, meta=meta)


def generation_meta(kernel, n, seed, min_scatterers, max_scatterers, strength, noise,
                    scattering: str = "born") -> dict:
    """The record of how a dataset was made (stored beside/inside the file)."""
    from . import __version__

    return {
        "generator": f"qpiset {__version__}",
        "kernel": kernel.params(),
        "n": int(n),
        "seed": int(seed),
        "min_scatterers": int(min_scatterers),
        "max_scatterers": int(max_scatterers),
        "strength": list(strength) if isinstance(strength, tuple) else float(strength),
        "noise": None if noise is None else noise.params(),
        "scattering": scattering,
    }
