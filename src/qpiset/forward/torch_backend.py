"""The forward operator's loops in torch, on any device (CPU, CUDA, MPS).

The same rules as the numba backend (:mod:`.backends`), vectorised over images, scatterers
and pixels (a gather from the kernel's table), so a batch renders in a few kernel launches:

- :func:`radial_images`: isotropic kernel, the radial table, linear interpolation, float32;
- :func:`grid_images`: any kernel, the 2D table, Keys' cubic convolution (a = -1/2), the
  table coordinates in float64 (float32 on MPS, which has no float64), zero outside it.

:class:`TorchBackend` is the backend of the seam (``Forward(kernel, grid,
backend=TorchBackend("cuda"))``: numpy in, numpy out, images equal to numba's within
~1e-6 of the peak, float32 summation order apart); the fitting model (float64, with its
Jacobian) stays on the numba loops, a CPU job. :class:`TorchRenderer` keeps a forward
operator's tables on the device and renders tensors to tensors (the simulated training
stream, :func:`qpiset.forward.simulate_blocks` with ``device``). ``torch.compile`` fuses
the gather and the sum (on CUDA by default); where compiling is missing or fails, the
eager code runs, with one warning.

torch is the optional extra ``ml``: this module imports it only when a function runs.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

__all__ = ["radial_images", "grid_images", "TorchBackend", "TorchRenderer", "compiled"]

#: Elements of the largest temporary (images x scatterers x pixels) per chunk, by device.
_CHUNK = {"cuda": 2**27, "mps": 2**25}
_CHUNK_CPU = 2**22


def radial_images(x, pos, amp, values, slope, inv_step: float):
    """``sum_j amp[n, j] K(|r - pos[n, j]|)`` on the grid ``x`` (R,), ``(N, R, R)``
    ``[iy, ix]``, by linear interpolation in the radial table ``values`` with ``slope``
    (``values[i + 1] - values[i]``, 0 last); all float32 tensors on one device."""
    last = values.shape[0] - 2
    dx = (x - pos[..., 0:1]) * inv_step  # (N, K, R)
    dy = (x - pos[..., 1:2]) * inv_step
    t = (dx.square()[:, :, None, :] + dy.square()[:, :, :, None]).sqrt()  # (N, K, Ry, Rx)
    i = t.int().clamp_max(last)  # t >= 0: truncation is the floor
    f = t - i
    k = values[i] + f * slope[i]
    return (amp[:, :, None, None] * k).sum(dim=1)


def _cubic_weights(f):
    """Keys' weights ``(..., 4)`` of the 4 samples around fraction ``f`` (the numba rule)."""
    torch = _torch()
    f2 = f * f
    f3 = f2 * f
    return torch.stack((-0.5 * f3 + f2 - 0.5 * f, 1.5 * f3 - 2.5 * f2 + 1.0,
                        -1.5 * f3 + 2.0 * f2 + 0.5 * f, 0.5 * f3 - 0.5 * f2), dim=-1)


def _axis(x, p, inv_step: float, centre: float, last: int):
    """Table coordinate of every sample for every scatterer along one axis: first of the
    4 table samples ``(N, K, R, 4)`` (clamped into the table), weights and inside mask."""
    torch = _torch()
    u = (x - p) * inv_step + centre  # (N, K, R)
    inside = (u >= 1.0) & (u < last)
    k = torch.where(inside, u, torch.ones_like(u)).floor()
    weights = _cubic_weights(u - k)
    index = k.to(torch.int64)[..., None] - 1 + torch.arange(4, device=u.device)
    return index, weights, inside


def grid_images(x, pos, amp, values, inv_step: float, centre: float):
    """``sum_j amp[n, j] K(r - pos[n, j])`` on the grid ``x`` (R,), ``(N, R, R)``
    ``[iy, ix]`` (float32), by cubic convolution in the 2D table ``values`` ``[iy, ix]``
    (float32) whose sample ``(centre, centre)`` is ``K(0, 0)``; ``x``, ``pos`` and ``amp``
    in the working precision (float64, or float32 on MPS)."""
    torch = _torch()
    n = values.shape[1]
    last = values.shape[0] - 2
    iu, wu, in_u = _axis(x, pos[..., 0:1], inv_step, centre, last)  # columns
    iv, wv, in_v = _axis(x, pos[..., 1:2], inv_step, centre, last)  # rows
    flat = iv[:, :, :, :, None, None] * n + iu[:, :, None, None, :, :]  # (N, K, Ry, 4, Rx, 4)
    taps = values.reshape(-1)[flat].to(wu.dtype)
    val = torch.einsum("nkyaxb,nkya,nkxb->nkyx", taps, wv, wu)
    val = val * (in_v[:, :, :, None] & in_u[:, :, None, :])
    return (amp[:, :, None, None] * val).to(torch.float32).sum(dim=1)


def _torch():
    import torch

    return torch


def _work_dtype(device):
    """float64 where the device has it, float32 on MPS."""
    torch = _torch()
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


class compiled:
    """``fn`` under ``torch.compile`` when ``enabled``, falling back to the eager ``fn``
    (with one warning) where compiling is missing or fails on the first call."""

    def __init__(self, fn, enabled: bool) -> None:
        self.fn = fn
        self.active = None
        if enabled:
            try:
                # static shapes: the stream's batches all have one shape (images, padded
                # scatterers, table), so one kernel specialised to it serves them all (a
                # second shape would otherwise switch on generic, dynamic-shape code)
                self.active = _torch().compile(fn, dynamic=False)
            except Exception as exc:  # no compiler backend on this platform
                self._fallback(exc)

    def _fallback(self, exc: Exception) -> None:
        warnings.warn(f"torch.compile is not usable here ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0] if str(exc) else ''}); rendering eagerly",
                      RuntimeWarning, stacklevel=3)
        self.active = None

    def __call__(self, *args):
        if self.active is not None:
            try:
                return self.active(*args)
            except Exception as exc:  # the compiler failed on this machine
                self._fallback(exc)
        return self.fn(*args)


def _chunks(n: int, per_item: int, device, fused: bool = False) -> tuple[range, int]:
    """Starts and size of image chunks whose temporaries stay under the device's budget
    (``fused``: compiled code, which makes no such temporaries: larger chunks, so that a
    large batch is a few calls of one shape)."""
    budget = _CHUNK.get(_torch().device(device).type, _CHUNK_CPU) * (16 if fused else 1)
    size = max(1, budget // max(1, per_item))
    size = -(-n // -(-n // size)) if n else size  # equal chunks: one shape, one compilation
    return range(0, n, size), size


class TorchRenderer:
    """A forward operator's images rendered on a torch device, tensors in and out.

    Parameters
    ----------
    op : Forward
        The operator (kernel, grid, and the table rule of :meth:`Forward.render_table`).
    device : str or torch.device
        Where to render (``"auto"`` and the rest as :func:`qpiset.forward.device.resolve_device`).
    compile : bool, optional
        ``torch.compile`` the loops (default: on CUDA only; the eager code where it fails).

    Examples
    --------
    >>> from qpiset.core import Grid
    >>> from qpiset.forward import Forward
    >>> from qpiset.physics import FriedelKernel
    >>> op = Forward(FriedelKernel(), Grid(16, 30.0))
    >>> img = TorchRenderer(op, "cpu").render_batch([[[1.0, 2.0]]]).numpy()
    >>> bool(np.abs(img[0] - op.render([[1.0, 2.0]])).max() < 1e-6)
    True
    """

    def __init__(self, op, device="cpu", compile: bool | None = None) -> None:
        from .device import resolve_device

        self.op = op
        self.device = resolve_device(device)
        if compile is None:
            compile = self.device.type == "cuda"
        self.compile = bool(compile)
        self._radial = compiled(radial_images, self.compile)
        self._grid = compiled(grid_images, self.compile)
        self._tables: dict = {}
        self.dtype = _work_dtype(self.device)
        self._x: dict = {}
        # a radial table is the kernel sampled at fixed steps, so a longer one gives the
        # same images: ask for one reaching at least half the field of view beyond the
        # image (the default placement), and never a shorter one than before, so that a
        # stream of batches uploads one table and compiles once
        self._far = float(op.grid.fov) / 2 if op.kernel.isotropic else 0.0

    def _grid_x(self, dtype):
        torch = _torch()
        if dtype not in self._x:
            self._x[dtype] = torch.as_tensor(self.op.grid.x, dtype=dtype, device=self.device)
        return self._x[dtype]

    def tables(self, far: float):
        """``(kind, tensors...)``: the operator's table for scatterers up to ``far`` Å, on
        the device (uploaded once per table)."""
        torch = _torch()
        if self.op.kernel.isotropic:
            far = self._far = max(float(far), self._far)
        kind, table = self.op.render_table(far)
        key = id(table)
        if key not in self._tables:
            values = np.asarray(table.values, np.float32)
            if kind == "radial":
                slope = np.zeros_like(values)
                slope[:-1] = np.diff(values)
                entry = ("radial", torch.as_tensor(values, device=self.device),
                         torch.as_tensor(slope, device=self.device),
                         float(np.float32(1.0 / table.step)))
            else:
                entry = ("grid", torch.as_tensor(values, device=self.device),
                         float(1.0 / table.step), float(table.half_width / table.step))
            self._tables = {key: (table, entry)}  # the table's id stays valid while kept
        return self._tables[key][1]

    def render(self, pos, amp, far: float | None = None):
        """Images ``(N, R, R)`` ``[iy, ix]`` float32 on the device of scatterers at ``pos``
        ``(N, K, 2)`` Å with strengths ``amp`` ``(N, K)`` (padding: strength 0), tensors or
        arrays; ``far``: their largest coordinate (computed when not given)."""
        torch = _torch()
        pos = torch.as_tensor(pos, device=self.device)
        amp = torch.as_tensor(amp, device=self.device)
        if far is None:
            far = float(pos.abs().max()) if pos.numel() else 0.0
        entry = self.tables(far)
        n, k = amp.shape
        res = self.op.grid.resolution
        out = torch.empty((n, res, res), dtype=torch.float32, device=self.device)
        if entry[0] == "radial":
            _, values, slope, inv_step = entry
            x, p, a = (self._grid_x(torch.float32), pos.to(torch.float32),
                       amp.to(torch.float32))
            starts, size = _chunks(n, k * res * res, self.device,
                                   self._radial.active is not None)
            for s in starts:
                out[s:s + size] = self._radial(x, p[s:s + size], a[s:s + size], values, slope,
                                               inv_step)
        else:
            _, values, inv_step, centre = entry
            x, p, a = self._grid_x(self.dtype), pos.to(self.dtype), amp.to(self.dtype)
            starts, size = _chunks(n, 16 * k * res * res, self.device)
            for s in starts:
                out[s:s + size] = self._grid(x, p[s:s + size], a[s:s + size], values,
                                             inv_step, centre)
        return out

    def render_batch(self, positions: Sequence, strengths: Sequence | None = None):
        """As :meth:`Forward.render_batch` (lists of ``(k_i, 2)`` positions and ``(k_i,)``
        strengths), the images a float32 tensor on the device."""
        pos, amp, _, far = self.op.render_inputs(positions, strengths)
        return self.render(pos, amp, far)


class TorchBackend:
    """The torch backend of the seam (:data:`~.backends.BACKENDS`): numpy arrays in and
    out, the images rendered on ``device`` (default the CPU).

    The fitting model (:meth:`radial_model`, :meth:`grid_model`: float64, with the
    Jacobian, one image at a time) runs on the numba loops.
    """

    name = "torch"

    def __init__(self, device="cpu", compile: bool | None = None) -> None:
        self.device = device
        self.compile = compile
        self._fns: dict = {}

    def _fn(self, which):
        from .device import resolve_device

        device = resolve_device(self.device)
        if which not in self._fns:
            enabled = device.type == "cuda" if self.compile is None else self.compile
            self._fns[which] = compiled(radial_images if which == "radial" else grid_images,
                                        enabled)
        return device, self._fns[which]

    @staticmethod
    def _add(out, images) -> None:
        """``out[n, ix, iy] += images[n, iy, ix]`` (numba's memory order)."""
        out += images.cpu().numpy().transpose(0, 2, 1)

    def render_radial(self, out, x, pos, amp, counts, table, slope, inv_step,
                      threads=None) -> None:
        """As :meth:`~.backends.NumbaBackend.render_radial` (``counts`` unused: padded
        scatterers have strength 0)."""
        torch = _torch()
        device, fn = self._fn("radial")
        t = [torch.as_tensor(np.asarray(a, np.float32), device=device)
             for a in (x, pos, amp, table, slope)]
        if not len(out):
            return
        starts, size = _chunks(len(out), pos.shape[1] * len(x) ** 2, device)
        for s in starts:
            self._add(out[s:s + size], fn(t[0], t[1][s:s + size], t[2][s:s + size], t[3], t[4],
                                          float(inv_step)))

    def render_grid(self, out, x, pos, amp, counts, table, inv_step, centre,
                    threads=None) -> None:
        """As :meth:`~.backends.NumbaBackend.render_grid`."""
        torch = _torch()
        device, fn = self._fn("grid")
        dtype = _work_dtype(device)
        x, pos, amp = (torch.as_tensor(np.asarray(a), dtype=dtype, device=device)
                       for a in (x, pos, amp))
        values = torch.as_tensor(np.asarray(table, np.float32), device=device)
        if not len(out):
            return
        starts, size = _chunks(len(out), 16 * pos.shape[1] * len(x) ** 2, device)
        for s in starts:
            self._add(out[s:s + size], fn(x, pos[s:s + size], amp[s:s + size], values,
                                          float(inv_step), float(centre)))

    def radial_model(self, *args, **kwargs) -> None:
        """The numba backend's :meth:`~.backends.NumbaBackend.radial_model`."""
        from .backends import BACKENDS

        BACKENDS["numba"].radial_model(*args, **kwargs)

    def grid_model(self, *args, **kwargs) -> None:
        """The numba backend's :meth:`~.backends.NumbaBackend.grid_model`."""
        from .backends import BACKENDS

        BACKENDS["numba"].grid_model(*args, **kwargs)

    def __repr__(self) -> str:
        return f"TorchBackend({self.device!r})"
