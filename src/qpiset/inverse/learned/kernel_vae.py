"""Kernel extraction by latent alignment (Ji et al., "Seeing the Invisible: Machine
learning-based QPI kernel extraction via latent alignment", arXiv:2506.05325, 2025),
and the direct one-step baseline.

Two steps:

1. a variational autoencoder (:class:`KernelVAE`) learns a latent space of kernels
   (images of one scatterer at the centre);
2. an observation encoder (:class:`ObservationEncoder`) maps a multi-scatterer image into
   that space, trained to land on the VAE's latent mean of the image's kernel (latent
   alignment) with the VAE frozen; the VAE's decoder turns its output into a kernel.

The one-step baseline (:class:`DirectKernelNet`) is the same observation encoder and the
same decoder trained end to end from images to kernels.

Conventions: kernels are compared and learned in a canonical form
(:func:`canonical_kernel`: unit RMS, sign such that the largest |value| is positive); the
observation is the standardised image and its log power spectrum
(:func:`observation_channels`; the power spectrum ``|K(q)|² |Σ e^{iq·r_i}|²`` carries the
kernel's q-structure whatever the positions). Every kernel of the physics engine is
inversion symmetric, ``K(r) = K(-r)``; decoders impose it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from ...core.grid import Grid
from ...physics import ImageKernel
from . import WEIGHTS
from .nets import load_checkpoint, save_checkpoint

__all__ = ["canonical_kernel", "observation_channels", "KernelVAE", "ObservationEncoder",
           "DirectKernelNet", "KernelExtractor", "LearnedKernel", "load_kernel_extractor",
           "DEFAULT_KERNEL_MODEL"]

#: The shipped kernel extractor (two-step model and one-step baseline in one file).
DEFAULT_KERNEL_MODEL = WEIGHTS / "kernel_vae.pt"


def canonical_kernel(kernel: np.ndarray) -> np.ndarray:
    """``kernel`` scaled to unit RMS, with the sign that makes its largest-magnitude pixel
    positive (kernel NMSE is taken after the best scale and sign, so nothing is lost).

    Examples
    --------
    >>> k = canonical_kernel(-3.0 * np.eye(4))
    >>> float(k.max()), round(float(np.sqrt(np.mean(k**2))), 6)
    (2.0, 1.0)
    """
    k = np.asarray(kernel, np.float64)
    rms = np.sqrt(np.mean(k**2))
    if rms == 0:
        raise ValueError("the kernel is zero everywhere")
    flat = k.ravel()
    sign = 1.0 if flat[np.argmax(np.abs(flat))] >= 0 else -1.0
    return sign * k / rms


def observation_channels(images: torch.Tensor) -> torch.Tensor:
    """``(B, 2, R, R)``: the standardised images and their standardised log power spectra
    (zero frequency at the centre)."""
    y = images - images.flatten(1).median(dim=1).values[:, None, None]
    y = y / y.flatten(1).std(dim=1).clamp_min(1e-12)[:, None, None]
    power = torch.fft.fftshift(torch.fft.fft2(y).abs().square(), dim=(1, 2))
    s = torch.log1p(power)
    s = (s - s.flatten(1).mean(dim=1)[:, None, None]) / s.flatten(1).std(dim=1).clamp_min(
        1e-12)[:, None, None]
    return torch.stack([y, s], dim=1)


def _encoder(cin: int, width: int) -> nn.Sequential:
    chans = [cin, width, 2 * width, 4 * width, 4 * width]
    layers: list[nn.Module] = []
    for a, b in zip(chans[:-1], chans[1:]):
        layers += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.SiLU(),
                   nn.Conv2d(b, b, 3, padding=1), nn.SiLU()]
    return nn.Sequential(*layers, nn.Flatten())


class Decoder(nn.Module):
    """Latent ``(B, z)`` -> kernel ``(B, R, R)``, inversion symmetric."""

    def __init__(self, latent: int, width: int, resolution: int) -> None:
        super().__init__()
        self.side = resolution // 16
        self.width = width
        self.fc = nn.Sequential(nn.Linear(latent, 4 * width * self.side**2), nn.SiLU())
        chans = [4 * width, 4 * width, 2 * width, width, width]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.SiLU()]
            if i < 3:  # no extra convolution at full resolution (cost)
                layers += [nn.Conv2d(b, b, 3, padding=1), nn.SiLU()]
        self.body = nn.Sequential(*layers, nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(len(z), 4 * self.width, self.side, self.side)
        k = self.body(h)[:, 0]
        return 0.5 * (k + torch.flip(k, dims=(1, 2)))  # K(r) = K(-r)


class KernelVAE(nn.Module):
    """Variational autoencoder of canonical kernels ``(B, R, R)``."""

    def __init__(self, latent: int = 32, width: int = 16, resolution: int = 64) -> None:
        super().__init__()
        self.config = {"latent": latent, "width": width, "resolution": resolution}
        self.encoder = _encoder(1, width)
        n = 4 * width * (resolution // 16) ** 2
        self.mu = nn.Linear(n, latent)
        self.logvar = nn.Linear(n, latent)
        self.decoder = Decoder(latent, width, resolution)

    def encode(self, kernels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(kernels.unsqueeze(1))
        return self.mu(h), self.logvar(h).clamp(-12, 8)

    def forward(self, kernels: torch.Tensor):
        mu, logvar = self.encode(kernels)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar


class ObservationEncoder(nn.Module):
    """Image ``(B, R, R)`` -> a point of the kernel VAE's latent space."""

    def __init__(self, latent: int = 32, width: int = 16, resolution: int = 64) -> None:
        super().__init__()
        self.config = {"latent": latent, "width": width, "resolution": resolution}
        n = 4 * width * (resolution // 16) ** 2
        self.body = nn.Sequential(_encoder(2, width), nn.Linear(n, 256), nn.SiLU(),
                                  nn.Linear(256, latent))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(observation_channels(images))


class DirectKernelNet(nn.Module):
    """The one-step baseline: the observation encoder's architecture feeding the VAE
    decoder's architecture, trained end to end on kernel error."""

    def __init__(self, latent: int = 32, width: int = 16, resolution: int = 64) -> None:
        super().__init__()
        self.config = {"latent": latent, "width": width, "resolution": resolution}
        self.encoder = ObservationEncoder(latent, width, resolution)
        self.decoder = Decoder(latent, width, resolution)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(images))


class KernelExtractor:
    """Kernel from images: ``method="vae"`` (two-step: observation encoder, then the VAE's
    decoder; the latents of several images are averaged) or ``"direct"`` (the one-step
    baseline; the kernels of several images are averaged). Returns a canonical kernel
    ``(R, R)`` ``[iy, ix]``. The networks run on the device of the VAE's weights."""

    def __init__(self, vae: KernelVAE, observer: ObservationEncoder,
                 direct: DirectKernelNet | None = None) -> None:
        self.vae, self.observer, self.direct = vae.eval(), observer.eval(), direct
        if direct is not None:
            direct.eval()
        self.device = next(vae.parameters()).device

    def __call__(self, images: np.ndarray, method: str = "vae") -> np.ndarray:
        x = torch.from_numpy(np.asarray(images, np.float32).reshape(
            -1, *np.shape(images)[-2:])).to(self.device)
        if x.shape[-1] != self.vae.config["resolution"] or x.shape[-2] != x.shape[-1]:
            raise ValueError(f"images are {tuple(x.shape[-2:])}, the model takes "
                             f"{self.vae.config['resolution']}x{self.vae.config['resolution']}")
        with torch.no_grad():
            if method == "vae":
                z = self.observer(x).mean(dim=0, keepdim=True)
                k = self.vae.decoder(z)[0]
            elif method == "direct":
                if self.direct is None:
                    raise ValueError("this checkpoint has no one-step baseline")
                k = self.direct(x).mean(dim=0)
            else:
                raise ValueError(f"method must be 'vae' or 'direct', got {method!r}")
        return canonical_kernel(k.float().cpu().numpy().astype(np.float64))


def save_kernel_models(path, vae: KernelVAE, observer: ObservationEncoder,
                       direct: DirectKernelNet | None, grid, **info: Any) -> None:
    """One checkpoint with the VAE, the observation encoder and the baseline."""
    save_checkpoint(path, {
        "kind": "kernel-vae", "config": vae.config, "grid": [grid.resolution, grid.fov],
        "vae": vae.state_dict(), "observer": observer.state_dict(),
        "direct": None if direct is None else direct.state_dict(), "info": info})


def load_kernel_extractor(path=None, device=None) -> tuple[KernelExtractor, dict[str, Any]]:
    """The extractor, on ``device`` (default :func:`~qpiset.forward.device.default_device`),
    and its checkpoint record; ``path=None`` loads the shipped weights."""
    from ...forward.device import resolve_device

    device = resolve_device(device)
    state = load_checkpoint(DEFAULT_KERNEL_MODEL if path is None else path, "kernel-vae")
    vae = KernelVAE(**state["config"])
    vae.load_state_dict(state["vae"])
    observer = ObservationEncoder(**state["config"])
    observer.load_state_dict(state["observer"])
    direct = None
    if state.get("direct") is not None:
        direct = DirectKernelNet(**state["config"])
        direct.load_state_dict(state["direct"])
        direct.to(device)
    return KernelExtractor(vae.to(device), observer.to(device), direct), state


class LearnedKernel:
    """Kernel estimators ``vae`` (two-step, latent alignment) and ``direct`` (its one-step
    baseline): the kernel of the images, in canonical form (unit RMS: its scale is not
    known), as an image kernel on the images' grid.

    Parameters
    ----------
    method : {"vae", "direct"}
    weights : path, optional
        Checkpoint (default: the shipped kernel model); a bad one is a ``ValueError``.
    device : str, optional
        Torch device of the networks (default :func:`~qpiset.forward.device.default_device`).
    """

    def __init__(self, method: str = "vae", weights=None, device=None) -> None:
        if method not in ("vae", "direct"):
            raise ValueError(f"method must be 'vae' or 'direct', got {method!r}")
        self.method = method
        self.extractor, state = load_kernel_extractor(weights, device)
        self.trained = Grid(int(state["grid"][0]), float(state["grid"][1]))
        if method == "direct" and self.extractor.direct is None:
            raise ValueError(f"{weights or 'the shipped kernel model'}: this checkpoint has "
                             "no one-step baseline")

    def steps(self, n_images: int) -> int:
        return 1

    def estimate(self, images, grid: Grid, positions=None, on_step=None) -> ImageKernel:
        if grid.resolution != self.trained.resolution:
            raise ValueError(f"the kernel model takes {self.trained.resolution} px images, "
                             f"these have {grid.resolution}")
        if abs(grid.fov / self.trained.fov - 1) > 0.1:
            warnings.warn(f"the kernel model was trained on a {self.trained.fov:g} Å field, "
                          f"these images cover {grid.fov:g} Å", stacklevel=2)
        image = self.extractor(images, self.method)
        if on_step:
            on_step(1)
        return ImageKernel(image=image, fov=grid.fov, taper=0.0)
