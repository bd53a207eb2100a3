"""Noise models applied one after another."""

from __future__ import annotations

from .base import NoiseModel

__all__ = ["Chain"]


class Chain(NoiseModel):
    """Apply models in order: ``Chain(a, b)(x, rng) == b(a(x, rng), rng)``.

    The models share ``rng`` and ``grid``: each draws its variates after the previous one's,
    so ``Chain(White(0.1))`` gives the same bytes as ``White(0.1)``. An empty chain returns
    a copy. :meth:`params` lists the models' parameters in order.

    Examples
    --------
    >>> from qpiset.core import Grid
    >>> import numpy as np
    >>> from qpiset.forward.noise import TipBlur, White
    >>> chain = Chain(TipBlur(1.0), White(0.1))
    >>> chain.params()
    {'model': 'chain', 'models': [{'model': 'blur', 'sigma': 1.0},
                                  {'model': 'white', 'fraction': 0.1}]}
    >>> chain(np.ones((2, 8, 8)), np.random.default_rng(0), grid=Grid(8, 10.0)).shape
    (2, 8, 8)
    """

    def __init__(self, *models: NoiseModel) -> None:
        for m in models:
            if not isinstance(m, NoiseModel):
                raise TypeError(f"Chain takes noise models, got {m!r}")
        self.models: tuple[NoiseModel, ...] = tuple(models)

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return any(m.stochastic for m in self.models)

    def _apply(self, stack, rng, grid):
        out = stack.copy() if not self.models else stack
        for m in self.models:
            out = m._apply(out, rng, grid)
        return out

    def params(self) -> dict:
        return {"model": "chain", "models": [m.params() for m in self.models]}

    def spec(self) -> str:
        return ",".join(m.spec() for m in self.models)

    def __len__(self) -> int:
        return len(self.models)

    def __iter__(self):
        return iter(self.models)

    def __eq__(self, other) -> bool:
        return isinstance(other, Chain) and self.models == other.models

    def __hash__(self) -> int:
        return hash(self.models)

    def __repr__(self) -> str:
        return f"Chain({', '.join(repr(m) for m in self.models)})"
