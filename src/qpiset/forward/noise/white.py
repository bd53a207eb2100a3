"""Additive white Gaussian noise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import NoiseModel, _fmt, _image_std, number

__all__ = ["White"]


@dataclass(frozen=True)
class White(NoiseModel):
    """Additive white Gaussian noise, sized relative to each clean image.

    ``out = img + sigma_n * z``, ``z ~ N(0, 1)`` independent per pixel, with

    * ``reference="std"``: ``sigma_n = level * std(img)`` (``level`` is a dimensionless
      fraction; the meaning of ``qpiset generate --noise``);
    * ``reference="snr"``: ``sigma_n = std(img) / level``, where the signal-to-noise ratio
      is the amplitude ratio ``SNR = std(clean image) / std(noise)`` (not a power ratio,
      not in dB). So ``White(10, "snr")`` is ``White(0.1)``, to the last bit; ``SNR = inf``
      means no noise.

    ``std(img)`` is the standard deviation over the image's pixels, image by image, so
    ``sigma_n`` is the *expected* noise std; the sample std of one realisation scatters by
    about ``1/sqrt(2 R^2)`` relative. Units: those of the image.

    Draws ``rng.standard_normal(images.shape)`` (one value per pixel, images in order, then
    rows, then columns).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.normal(size=(2, 64, 64))
    >>> noisy = White(0.5)(clean, rng)
    >>> round(float(np.std(noisy - clean) / np.std(clean)), 1)
    0.5
    >>> White(10, reference="snr").params()
    {'model': 'white', 'snr': 10.0}
    """

    name: ClassVar[str] = "white"
    specs: ClassVar[dict] = {"white": (1, 1, "fraction of the image std"),
                             "snr": (1, 1, "signal-to-noise ratio")}

    @classmethod
    def from_spec(cls, name, values):
        return cls(values[0], reference="snr") if name == "snr" else cls(*values)

    @classmethod
    def from_params(cls, rest):
        if set(rest) == {"fraction"}:
            return cls(rest["fraction"])
        if set(rest) == {"snr"}:
            return cls(rest["snr"], reference="snr")
        raise ValueError(f"white noise parameters need exactly one of 'fraction' or 'snr', "
                         f"got {dict(model='white', **rest)!r}")


    level: float
    reference: str = "std"

    def __post_init__(self) -> None:
        if self.reference not in ("std", "snr"):
            raise ValueError(f"White reference must be 'std' or 'snr', got {self.reference!r}")
        if self.reference == "std":
            level = number(self.level, "white noise level (fraction of the image std)")
        else:
            level = number(self.level, "signal-to-noise ratio", allow_inf=True)
            if level <= 0:
                raise ValueError(f"signal-to-noise ratio must be > 0, got {self.level!r}")
        object.__setattr__(self, "level", level)

    @property
    def fraction(self) -> float:
        """Noise std as a fraction of the image std (``1/SNR`` for ``reference="snr"``)."""
        return self.level if self.reference == "std" else 1.0 / self.level

    def _apply(self, stack, rng, grid):
        z = rng.standard_normal(stack.shape)
        out = np.empty_like(stack)
        fraction = self.fraction
        for i, std in enumerate(_image_std(stack)):
            out[i] = stack[i] + fraction * std * z[i]
        return out

    def params(self) -> dict:
        key = "fraction" if self.reference == "std" else "snr"
        return {"model": "white", key: self.level}

    def spec(self) -> str:
        return f"white:{_fmt(self.level)}" if self.reference == "std" else f"snr:{_fmt(self.level)}"
