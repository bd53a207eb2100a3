"""The setpoint effect of constant-current dI/dV maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import NoiseModel, _fmt, number

__all__ = ["Setpoint"]


@dataclass(frozen=True)
class Setpoint(NoiseModel):
    """The setpoint effect of constant-current dI/dV maps (single-energy model).

    Before each spectrum the feedback sets the current ``I_s`` at bias ``V_s``, which fixes
    the tip height so that the LDOS integrated up to the setpoint is the same everywhere;
    the measured conductance is then (Tersoff-Hamann)::

        g(r, E) = I_s rho(r, E) / integral_0^{eV_s} rho(r, e) de

    (see Kohsaka et al., Science 315, 1380 (2007); Macdonald et al., Nanotechnology 27,
    414004 (2016)). With ``rho(r, e) = rho0 (1 + delta(r, e))`` and the image
    ``img = delta(r, E)``, the window average ``<delta(r)>_s`` of the LDOS modulation is
    modelled as ``strength * delta(r, E)`` -- the integrated modulation has the same spatial
    pattern, scaled by ``c = strength`` (dimensionless). The normalised map
    ``g / g0 - 1`` (``g0``: the clean surface) is then::

        out = (1 + img) / (1 + c img) - 1 = (1 - c) img / (1 + c img)
            = (1 - c) img - c (1 - c) img^2 + O(img^3)

    ``c = 0``: no setpoint effect (out = img); ``0 < c < 1``: contrast reduced by ``1 - c``
    and made asymmetric (dips deepened relative to peaks); ``c = 1``: the LDOS modulation
    is the same over the whole window and cancels completely; ``c < 0``: the integrated
    modulation is in antiphase (contrast enhanced). The integrated LDOS must stay positive,
    ``1 + c img > 0`` at every pixel (guaranteed for ``0 <= c <= 1`` whenever the LDOS
    itself is positive, ``img > -1``); otherwise a ``ValueError`` names the image. A zero
    image stays zero. Deterministic (no draws).

    Examples
    --------
    >>> img = np.array([[0.0, 0.1], [-0.1, 0.5]])
    >>> Setpoint(0.5)(img)
    array([[ 0.        ,  0.04761905],
           [-0.05263158,  0.2       ]])
    """

    name: ClassVar[str] = "setpoint"
    specs: ClassVar[dict] = {"setpoint": (1, 1, "strength")}
    required: ClassVar[frozenset] = frozenset({"strength"})


    strength: float

    stochastic: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", number(self.strength, "setpoint strength",
                                                     minimum=None))

    def _apply(self, stack, rng, grid):
        c = self.strength
        denominator = 1.0 + c * stack
        bad = np.flatnonzero(~np.all(denominator > 0, axis=(1, 2)))
        if bad.size:
            i = int(bad[0])
            worst = float(stack[i].min() if c > 0 else stack[i].max())
            raise ValueError(
                f"Setpoint(strength={c!r}): the integrated LDOS 1 + strength*image must be "
                f"> 0, but image {i} reaches {worst:.4g} (|strength| must be < "
                f"{1 / abs(worst):.4g} for it); images with LDOS below zero (image < -1) "
                f"are unphysical")
        return (1.0 - c) * stack / denominator

    def params(self) -> dict:
        return {"model": "setpoint", "strength": self.strength}

    def spec(self) -> str:
        return f"setpoint:{_fmt(self.strength)}"
