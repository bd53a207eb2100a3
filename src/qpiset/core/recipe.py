"""How a dataset is drawn: the :class:`Recipe` that the simulator, the file writers, the
distributed workers and the training stream share, and that the file metadata records."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .version import __version__

__all__ = ["Recipe"]


@dataclass(frozen=True)
class Recipe:
    """What to draw: how many images, from which seed, how many scatterers of what strength
    placed where, with what noise, under which scattering theory.

    Parameters
    ----------
    n : int
        Number of images.
    seed : int
        Run seed; the same recipe gives the same bytes.
    min_scatterers, max_scatterers : int
        Scatterer count drawn uniformly from ``[min, max]``; ``max`` is also the number of
        coordinate slots in the file.
    strength : float or (lo, hi)
        Fixed strength, or drawn uniformly from ``[lo, hi)`` per scatterer.
    noise : noise model or dict, optional
        A noise model of :mod:`qpiset.forward.noise` or its recorded parameters; ``None``
        for none (:func:`qpiset.forward.as_noise` makes a model of a number or a
        ``--noise`` spec, and ``qpiset.simulate(..., noise=0.1)`` does so itself).
    scattering : str
        ``"born"`` (superposition of single-scatterer kernels) or ``"full"`` (every
        multiple-scattering path), see :mod:`qpiset.forward.scattering`.
    placement : float, optional
        Full width (Å) of the square, centred on the image, in which the scatterers are
        placed: ``placement=200`` puts them within ±100 Å (half-width 100 Å). ``None``
        (default): the field of view, ``[-fov/2, fov/2)²`` (a placement equal to it is
        taken as the default). Recorded in the metadata only when given.

    Examples
    --------
    >>> r = Recipe(n=10, seed=3, strength=[0.5, 1.5])
    >>> r.strength
    (0.5, 1.5)
    >>> Recipe.from_meta(r.meta({"model": "friedel"})) == r
    True
    >>> Recipe(min_scatterers=5, max_scatterers=2)
    Traceback (most recent call last):
    ...
    ValueError: need 0 <= min_scatterers <= max_scatterers, >= 1; got 5, 2
    """

    n: int = 1000
    seed: int = 0
    min_scatterers: int = 1
    max_scatterers: int = 100
    strength: float | tuple[float, float] = 1.0
    noise: Any = None
    scattering: str = "born"
    placement: float | None = None

    def __post_init__(self) -> None:
        n, lo, hi = self.n, self.min_scatterers, self.max_scatterers
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if not 0 <= lo <= hi or hi < 1:
            raise ValueError(f"need 0 <= min_scatterers <= max_scatterers, >= 1; got {lo}, {hi}")
        strength = self.strength
        if isinstance(strength, (list, tuple)):
            if len(strength) != 2 or not all(math.isfinite(float(v)) for v in strength) \
                    or not float(strength[0]) < float(strength[1]):
                raise ValueError(f"strength must be a number or (lo, hi) with lo < hi, got "
                                 f"{strength!r}")
            strength = (float(strength[0]), float(strength[1]))
        else:
            strength = float(strength)
            if not math.isfinite(strength):
                raise ValueError(f"strength must be finite, got {strength!r}")
        noise = self.noise  # a model is anything with params() (core does not import forward)
        if not (noise is None or isinstance(noise, dict)
                or callable(getattr(noise, "params", None))):
            raise ValueError(f"noise must be a noise model (qpiset.forward.noise), its recorded "
                             f"parameters or None, got {noise!r}; qpiset.forward.as_noise makes "
                             "a model of a number or a --noise spec")
        if not isinstance(self.scattering, str):
            raise ValueError(f"scattering must be a name, got {self.scattering!r}")
        placement = self.placement
        if placement is not None:
            try:
                placement = float(placement)
            except (TypeError, ValueError):
                placement = math.nan
            if isinstance(self.placement, bool) or not (math.isfinite(placement)
                                                        and placement > 0):
                raise ValueError(f"placement must be a width > 0 (Å) or None, got "
                                 f"{self.placement!r}")
            object.__setattr__(self, "placement", placement)
        for name, value in (("n", n), ("seed", self.seed), ("min_scatterers", lo),
                            ("max_scatterers", hi)):
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "strength", strength)

    def replace(self, **changes) -> "Recipe":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def noise_params(self) -> dict | None:
        """The noise as recorded parameters (``None`` for none)."""
        if self.noise is None or isinstance(self.noise, dict):
            return self.noise
        return self.noise.params()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what a worker process receives): the noise as its parameters, a
        strength range as a list."""
        s = self.strength
        out = {"n": self.n, "seed": self.seed, "min_scatterers": self.min_scatterers,
               "max_scatterers": self.max_scatterers,
               "strength": list(s) if isinstance(s, tuple) else float(s),
               "noise": self.noise_params(), "scattering": self.scattering}
        if self.placement is not None:
            out["placement"] = self.placement
        return out

    def meta(self, kernel_params: dict) -> dict[str, Any]:
        """The record of how a dataset was made (stored beside or inside the file)."""
        d = self.to_dict()
        out = {"generator": f"qpiset {__version__}", "kernel": kernel_params, "n": d["n"],
               "seed": d["seed"], "min_scatterers": d["min_scatterers"],
               "max_scatterers": d["max_scatterers"], "strength": d["strength"],
               "noise": d["noise"], "scattering": d["scattering"]}
        if "placement" in d:  # only when given: the metadata of every other run is as before
            out["placement"] = d["placement"]
        return out

    @classmethod
    def from_meta(cls, meta: dict) -> "Recipe":
        """The recipe a file's metadata records (its noise as recorded parameters)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in meta.items() if k in fields})
