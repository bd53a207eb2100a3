"""Scatterer positions <-> network targets on a grid of cells finer than the pixels.

Each image pixel (pitch ``h``) is cut into ``upsample x upsample`` cells of size
``h / upsample``; cell ``(j, i)`` covers ``x0 - h/2 + [i, i+1) h/upsample`` in x (the same
in y, ``x0`` the first pixel centre). A scatterer sets its cell's occupancy to 1 and the
cell's offset to its position relative to the cell centre, in cell units (``[-0.5, 0.5)``):
the localisation targets of dense-emitter networks in microscopy (DECODE, Deep-STORM).
Decoding reads positions back exactly (:func:`decode` of :func:`encode` returns the input
positions when no two share a cell).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ...core.grid import Grid

__all__ = ["cell_size", "encode", "encode_tensor", "decode"]


def cell_size(grid: Grid, upsample: int) -> float:
    """Cell edge in Å: the pixel pitch over ``upsample``."""
    return grid.pitch / upsample


def _origin(grid: Grid) -> float:
    return float(grid.x[0]) - grid.pitch / 2  # left edge of the first pixel


def encode(positions, grid: Grid, upsample: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy ``(N, U, U)`` and offsets ``(N, 2, U, U)`` (x then y, cell units) for a
    list of ``(k_i, 2)`` position arrays in Å; ``U = resolution * upsample``, maps indexed
    ``[iy, ix]``. Scatterers outside the cells are left out; of two in one cell the
    later one's offset is kept.

    Examples
    --------
    >>> g = Grid(4, 3.0)
    >>> occ, off = encode([np.array([[0.1, -0.2]])], g, upsample=2)
    >>> occ.shape, int(occ.sum())
    ((1, 8, 8), 1)
    >>> decode(occ, off, g, upsample=2)[0][0].round(6).tolist()
    [[0.1, -0.2]]
    """
    size = cell_size(grid, upsample)
    U = grid.resolution * upsample
    occ = np.zeros((len(positions), U, U), np.float32)
    off = np.zeros((len(positions), 2, U, U), np.float32)
    x0 = _origin(grid)
    for n, p in enumerate(positions):
        p = np.asarray(p, float).reshape(-1, 2)
        u = (p - x0) / size  # continuous cell coordinates
        idx = np.floor(u).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < U), axis=1)
        u, idx = u[ok], idx[ok]
        ix, iy = idx[:, 0], idx[:, 1]
        occ[n, iy, ix] = 1.0
        off[n, 0, iy, ix] = u[:, 0] - ix - 0.5
        off[n, 1, iy, ix] = u[:, 1] - iy - 0.5
    return occ, off


def encode_tensor(positions, grid: Grid, upsample: int = 2):
    """:func:`encode` of a batch's padded positions ``(N, M, 2)`` (Å, NaN for no scatterer; a
    torch tensor on any device): occupancy ``(N, U, U)`` and offsets ``(N, 2, U, U)``,
    float32 on that device, without a round trip to the CPU. The same rule and the same
    numbers as :func:`encode` (float64 arithmetic; float32 on MPS), the later scatterer of
    two in one cell kept.

    Examples
    --------
    >>> import torch
    >>> g = Grid(4, 3.0)
    >>> pos = torch.tensor([[[0.1, -0.2], [float("nan"), float("nan")]]])
    >>> occ, off = encode_tensor(pos, g)
    >>> ref = encode([pos[0, :1].double().numpy()], g)
    >>> bool(np.array_equal(occ.numpy(), ref[0]) and np.array_equal(off.numpy(), ref[1]))
    True
    """
    import torch

    dtype = torch.float32 if positions.device.type == "mps" else torch.float64
    n, m = positions.shape[:2]
    U = grid.resolution * upsample
    cells = n * U * U  # one more slot: where the scatterers that set no cell go
    u = (positions.to(dtype) - _origin(grid)) / cell_size(grid, upsample)
    valid = ~torch.isnan(u).any(dim=-1)
    idx = torch.where(valid[..., None], u, torch.full_like(u, -1.0)).floor()
    ok = valid & ((idx >= 0) & (idx < U)).all(dim=-1)
    ix, iy = idx[..., 0].to(torch.int64), idx[..., 1].to(torch.int64)
    image = torch.arange(n, device=u.device)[:, None]
    flat = torch.where(ok, (image * U + iy) * U + ix, cells).reshape(-1)
    order = torch.arange(n * m, device=u.device)
    last = torch.full((cells + 1,), -1, dtype=torch.int64, device=u.device)
    last.scatter_reduce_(0, flat, torch.where(ok.reshape(-1), order, -1), reduce="amax")
    target = torch.where(ok.reshape(-1) & (last[flat] == order), flat, cells)
    occ = torch.zeros(cells + 1, dtype=torch.float32, device=u.device)
    occ.scatter_(0, target, torch.ones_like(target, dtype=torch.float32))
    offsets = []
    for axis, i in ((0, ix), (1, iy)):
        d = (u[..., axis] - i - 0.5).to(torch.float32).reshape(-1)
        plane = torch.zeros(cells + 1, dtype=torch.float32, device=u.device)
        offsets.append(plane.scatter_(0, target, torch.where(target < cells, d, 0.0))[:cells])
    return (occ[:cells].reshape(n, U, U),
            torch.stack(offsets).reshape(2, n, U, U).transpose(0, 1).contiguous())


def decode(prob, offsets, grid: Grid, upsample: int = 2, threshold: float = 0.3,
           high: float = 0.7) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Positions (Å) and confidences from occupancy probabilities ``(N, U, U)`` and offsets
    ``(N, 2, U, U)``.

    A cell is a scatterer when its probability is a local maximum (3x3) and the
    probability summed over its 3x3 neighbourhood reaches ``threshold`` (a scatterer near
    a cell edge shares its probability with the neighbour: the sum is its probability of
    being there, as in DECODE), or when the cell alone reaches ``high`` even beside a
    stronger cell (two scatterers closer than a pixel are then both kept). The position
    is the cell's centre plus its offset; the confidence is the neighbourhood's sum,
    capped at 1.
    """
    prob = np.asarray(prob, np.float32)
    offsets = np.asarray(offsets, np.float32)
    size = cell_size(grid, upsample)
    x0 = _origin(grid)
    out, conf = [], []
    for p, o in zip(prob, offsets):
        mass = ndimage.uniform_filter(p, size=3, mode="constant") * 9.0
        peak = (p == ndimage.maximum_filter(p, size=3, mode="constant")) & (mass >= threshold)
        keep = (peak | (p >= high)) & (p > 0)
        iy, ix = np.nonzero(keep)
        dx = np.clip(o[0, iy, ix], -0.5, 0.5)
        dy = np.clip(o[1, iy, ix], -0.5, 0.5)
        xy = np.stack([x0 + (ix + 0.5 + dx) * size, x0 + (iy + 0.5 + dy) * size], axis=1)
        out.append(xy.astype(np.float64))
        conf.append(np.minimum(np.where(peak[iy, ix], mass[iy, ix], p[iy, ix]), 1.0
                               ).astype(np.float64))
    return out, conf
