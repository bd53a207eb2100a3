"""The simulator's images on a torch device: the renderer and the noise of
:func:`qpiset.forward.simulate_blocks` when it is given a ``device``."""

from __future__ import annotations

import weakref
from typing import Callable

from .operator import Forward

__all__ = ["device_renderer", "renderer_of"]

#: Each operator's renderers by (device, compile): its tables stay on the device.
_RENDERERS: "weakref.WeakKeyDictionary[Forward, dict]" = weakref.WeakKeyDictionary()


def renderer_of(op: Forward, device, compile: bool | None = None):
    """The :class:`~.torch_backend.TorchRenderer` of ``op`` on ``device``, made once per
    operator and device (so a stream of batches uploads the tables once)."""
    from .device import resolve_device
    from .torch_backend import TorchRenderer

    device = resolve_device(device)
    made = _RENDERERS.setdefault(op, {})
    key = (str(device), compile)
    if key not in made:
        made[key] = TorchRenderer(op, device, compile=compile)
    return made[key]


def device_renderer(op: Forward, scattering: str, noise, device,
                    compile: bool | None = None) -> tuple[Callable, Callable | None]:
    """``(render, noise)`` for :func:`~.simulate.simulate_blocks` on ``device``: ``render(
    positions, strengths, on_images=None)`` gives the images ``(N, R, R)`` (float64 on the
    device; float32 on MPS), ``noise(images, rng, grid=)`` applies ``noise`` there (None
    for none). Born scattering only: ``"full"`` multiple scattering runs on the CPU."""
    from .scattering import check_scattering
    from .torch_noise import apply_noise

    check_scattering(op.kernel, scattering)
    if scattering != "born":
        raise ValueError(f"{scattering} multiple scattering renders on the CPU only; "
                         f"leave the device out")
    renderer = renderer_of(op, device, compile)

    def render(positions, strengths, on_images=None):
        images = renderer.render_batch(positions, strengths)
        images = images.to(renderer.dtype)
        if on_images:
            on_images(len(images))
        return images

    if noise is None:
        return render, None

    def add_noise(images, rng, grid=None):
        return apply_noise(noise, images, rng, grid, check=False)

    return render, add_noise
