"""The noise and instrument models (:mod:`.noise`) applied to torch tensors on any device.

:func:`apply_noise` ``(model, images, rng, grid)`` is the model's ``__call__`` for a stack of
images ``(n, R, R)`` ``[iy, ix]`` held on a device: the variates are drawn from the
``numpy.random.Generator`` exactly as the CPU model draws them (same calls, same order,
same shapes; :mod:`.noise` documents each), moved to the device, and the model's
arithmetic runs there in float64 (float32 on MPS). So a seed gives the same noise
realisation on every device, equal to the CPU's to float rounding. A model this module
does not know (a plugin's) runs on the CPU: the stack goes there and back.
"""

from __future__ import annotations

import numpy as np

from .noise import Chain, NoiseModel, PinkNoise, ScanLines, Setpoint, TipBlur, White
from .noise.base import _check_rng, _pitch

__all__ = ["apply_noise"]


def _torch():
    import torch

    return torch


def _work(images):
    """``images`` in the working precision: float64, float32 on MPS."""
    torch = _torch()
    dtype = torch.float32 if images.device.type == "mps" else torch.float64
    return images.to(dtype)


def _draw(rng, shape, like):
    """``rng.standard_normal(shape)`` as a tensor on ``like``'s device and type."""
    return _torch().as_tensor(rng.standard_normal(shape), dtype=like.dtype, device=like.device)


def _std(stack):
    """Each image's standard deviation over its pixels (as ``np.std``), ``(n,)``."""
    return stack.flatten(1).std(dim=1, correction=0)


def _white(model: White, stack, rng, grid):
    z = _draw(rng, tuple(stack.shape), stack)
    return stack + (model.fraction * _std(stack))[:, None, None] * z


def _pink(model: PinkNoise, stack, rng, grid):
    torch = _torch()
    n, ny, nx = stack.shape
    samples = ny * nx
    length = 2 * samples
    freq = torch.fft.rfftfreq(length, dtype=stack.dtype, device=stack.device)
    gain = torch.zeros_like(freq)
    gain[1:] = freq[1:] ** (-model.exponent / 2)
    stds = _std(stack)
    parts = []
    for start in range(0, n, model._CHUNK):  # the CPU model's draws, chunk by chunk
        w = _draw(rng, (min(n, start + model._CHUNK) - start, length), stack)
        series = torch.fft.irfft(torch.fft.rfft(w, dim=-1) * gain, n=length, dim=-1)
        series = series[:, :samples]
        series = series - series.mean(dim=-1, keepdim=True)
        spread = series.std(dim=-1, keepdim=True, correction=0)
        parts.append(torch.where(spread > 0, series / torch.where(spread > 0, spread, 1.0),
                                 torch.zeros_like(series)))
    if not parts:
        return stack.clone()
    series = torch.cat(parts).reshape(n, ny, nx)
    return stack + (model.level * stds)[:, None, None] * series


def _bspline_prefilter(nx: int, pad: int, like):
    """The matrix ``P`` with ``coefficients = P @ row`` of a row padded by ``pad`` edge
    values (scipy's cubic spline prefilter, mirror boundary: what
    ``map_coordinates(order=3, mode="nearest")`` does)."""
    from scipy import ndimage

    eye = np.eye(nx + 2 * pad)
    rows = ndimage.spline_filter1d(eye, order=3, axis=0, mode="mirror")
    return _torch().as_tensor(rows, dtype=like.dtype, device=like.device)


def _shift_rows(stack, pixels):
    """Each row ``r`` of ``stack`` read at ``x - pixels[r]`` by cubic-spline interpolation,
    edge values continued beyond the image (scipy's ``map_coordinates``, order 3, mode
    ``"nearest"``)."""
    torch = _torch()
    n, ny, nx = stack.shape
    pad = 12  # scipy pads this much for mode "nearest" before prefiltering
    rows = stack.reshape(n * ny, nx)
    padded = torch.cat([rows[:, :1].expand(-1, pad), rows, rows[:, -1:].expand(-1, pad)], 1)
    coef = padded @ _bspline_prefilter(nx, pad, stack).T
    u = torch.arange(nx, dtype=stack.dtype, device=stack.device) - pixels.reshape(-1, 1)
    u = u.clamp(-pad, nx - 1 + pad) + pad  # beyond the padding: the edge value, as scipy
    base = u.floor()
    t = u - base
    weights = torch.stack(((1 - t) ** 3 / 6, (4 - 6 * t**2 + 3 * t**3) / 6,
                           (1 + 3 * t + 3 * t**2 - 3 * t**3) / 6, t**3 / 6), dim=-1)
    index = base.to(torch.int64)[..., None] - 1 + torch.arange(4, device=stack.device)
    size = coef.shape[1]
    period = 2 * size - 2  # mirror: -1 -> 1, size -> size - 2
    index = index.remainder(period)
    index = torch.where(index >= size, period - index, index)
    taps = torch.gather(coef, 1, index.reshape(n * ny, -1)).reshape(index.shape)
    return (taps * weights).sum(-1).reshape(n, ny, nx)


def _lines(model: ScanLines, stack, rng, grid):
    n, ny, nx = stack.shape
    z_offset = _draw(rng, (n, ny), stack)
    z_shift = _draw(rng, (n, ny), stack)
    shifted = stack
    if model.jitter > 0 and stack.numel():
        pixels = model.jitter / _pitch(grid, tuple(stack.shape), "ScanLines jitter") * z_shift
        shifted = _shift_rows(stack, pixels)
    return shifted + ((model.offset * _std(stack))[:, None] * z_offset)[:, :, None]


def _reflect(index, size: int):
    """``index`` folded into ``[0, size)`` by half-sample symmetry (scipy's ``reflect``)."""
    torch = _torch()
    index = index.remainder(2 * size)
    return torch.where(index >= size, 2 * size - 1 - index, index)


def _blur(model: TipBlur, stack, rng, grid):
    torch = _torch()
    sigma = model.sigma / _pitch(grid, tuple(stack.shape), "TipBlur")
    if sigma == 0:
        return stack.clone()
    radius = int(4.0 * sigma + 0.5)  # scipy's truncate=4
    offsets = torch.arange(-radius, radius + 1, device=stack.device)
    weights = torch.exp(-0.5 * (offsets.to(stack.dtype) / sigma) ** 2)
    weights = weights / weights.sum()
    out = stack
    for axis in (2, 1):  # scipy filters the last axis first
        size = stack.shape[axis]
        index = _reflect(torch.arange(size, device=stack.device)[:, None] + offsets, size)
        taps = out.index_select(axis, index.reshape(-1))
        shape = list(out.shape)
        shape[axis:axis + 1] = [size, len(offsets)]
        out = (taps.reshape(shape) * weights.reshape([-1] + [1] * (len(shape) - axis - 2))
               ).sum(axis + 1)
    return out


def _setpoint(model: Setpoint, stack, rng, grid):
    c = model.strength
    denominator = 1.0 + c * stack
    if not bool((denominator > 0).all()):  # the CPU model names the image: let it say so
        model._apply(stack.cpu().numpy(), rng, grid)
    return (1.0 - c) * stack / denominator


def _chain(model: Chain, stack, rng, grid):
    out = stack.clone() if not model.models else stack
    for m in model.models:
        out = _apply(m, out, rng, grid)
    return out


_MODELS = {White: _white, PinkNoise: _pink, ScanLines: _lines, TipBlur: _blur,
           Setpoint: _setpoint, Chain: _chain}


def _apply(model: NoiseModel, stack, rng, grid):
    rule = _MODELS.get(type(model))
    if rule is not None:
        return rule(model, stack, rng, grid)
    torch = _torch()  # a model of a plugin: on the CPU, there and back
    out = model._apply(stack.detach().cpu().numpy().astype(np.float64), rng, grid)
    return torch.as_tensor(out, dtype=stack.dtype, device=stack.device)


def apply_noise(model: NoiseModel, images, rng: np.random.Generator | None = None, grid=None,
                check: bool = True):
    """``model(images, rng, grid)`` for a tensor ``(n, R, R)`` or ``(R, R)`` on any device:
    a new tensor on that device in the working precision (float64; float32 on MPS).

    ``check=False`` skips the test that the images are finite (which waits for the device):
    for images the renderer just made from finite inputs.

    Examples
    --------
    >>> import torch
    >>> from qpiset.core import Grid
    >>> x = torch.ones(2, 8, 8)
    >>> out = apply_noise(White(0.1), x, np.random.default_rng(0))
    >>> ref = White(0.1)(np.ones((2, 8, 8)), np.random.default_rng(0))
    >>> bool(np.allclose(out.numpy(), ref))
    True
    """
    if not isinstance(model, NoiseModel):
        raise TypeError(f"expected a noise model, got {model!r}")
    if model.stochastic:
        _check_rng(rng, type(model).__name__)
    stack = _work(images)
    if stack.ndim not in (2, 3):
        raise ValueError(f"images must have shape (n, R, R) or (R, R), got {tuple(stack.shape)}")
    if check and not bool(stack.isfinite().all()):
        raise ValueError("images must be finite (found NaN or inf)")
    single = stack.ndim == 2
    out = _apply(model, stack[None] if single else stack, rng, grid)
    return out[0] if single else out
