"""The tip's finite lateral resolution: a Gaussian blur."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from scipy import ndimage

from .base import NoiseModel, _fmt, _pitch, number

__all__ = ["TipBlur"]


@dataclass(frozen=True)
class TipBlur(NoiseModel):
    """Finite lateral resolution of the tip: Gaussian blur of width ``sigma`` (Å).

    ``out = img * G_sigma`` (2D convolution) with the normalised Gaussian
    ``G_sigma(r) = exp(-r^2 / 2 sigma^2) / (2 pi sigma^2)``; ``sigma`` is the standard
    deviation in Å (FWHM = 2.355 sigma). A feature of width ``s`` comes out with width
    ``sqrt(s^2 + sigma^2)``; a constant image is unchanged. Implemented by
    ``scipy.ndimage.gaussian_filter`` with ``sigma / pitch`` pixels along x and y, the
    kernel cut at 4 sigma, and mode ``"reflect"`` at the edges (the image continued by its
    mirror image about the outer pixel edge). Needs ``grid`` for the pitch. Below about
    half a pixel the sampled kernel is no longer a good Gaussian.

    :class:`qpiset.physics.FriedelKernel` already includes a tip width (``tip_sigma``);
    this adds to it in quadrature. Deterministic (no draws).

    Examples
    --------
    >>> from qpiset.core import Grid
    >>> import numpy as np
    >>> flat = np.full((16, 16), 2.0)
    >>> bool(np.allclose(TipBlur(3.0)(flat, grid=Grid(16, 30.0)), 2.0))
    True
    """

    name: ClassVar[str] = "blur"
    specs: ClassVar[dict] = {"blur": (1, 1, "sigma in Å")}
    required: ClassVar[frozenset] = frozenset({"sigma"})


    sigma: float

    stochastic: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", number(self.sigma, "tip blur sigma (Å)"))

    def _apply(self, stack, rng, grid):
        pixels = self.sigma / _pitch(grid, stack.shape, "TipBlur")
        if pixels == 0:
            return stack.copy()
        return ndimage.gaussian_filter(stack, sigma=(0.0, pixels, pixels), mode="reflect",
                                       truncate=4.0)

    def params(self) -> dict:
        return {"model": "blur", "sigma": self.sigma}

    def spec(self) -> str:
        return f"blur:{_fmt(self.sigma)}"
