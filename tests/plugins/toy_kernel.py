"""A kernel model from outside qpiset, in one file: a Gaussian bump (registering it is the
one line at the bottom)."""

import numpy as np

from qpiset.physics import RadialKernel, register_kernel


class GaussianBump(RadialKernel):
    """A Gaussian bump of width ``width`` (Å) and height ``height``: a toy model."""

    name = "toy-bump"

    def __init__(self, width: float = 1.5, height: float = 1.0) -> None:
        if not width > 0:
            raise ValueError(f"width must be > 0 Å, got {width!r}")
        self.width, self.height = float(width), float(height)

    def radial(self, r):
        r = np.asarray(r, float)
        return self.height * np.exp(-0.5 * (r / self.width) ** 2)

    def params(self):
        return {"model": self.name, "width": self.width, "height": self.height}


register_kernel(GaussianBump)
