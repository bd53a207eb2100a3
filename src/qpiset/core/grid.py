"""The pixel grid: coordinates of the pixel centres in Å.

Conventions (README, "The row format"): pixel centres ``x = linspace(-fov/2, fov/2, resolution)``,
the same for ``y``; the pitch is ``fov / (resolution - 1)``; an image in memory is
``img[iy, ix]`` (row = y, column = x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Grid"]


@dataclass(frozen=True)
class Grid:
    """Square pixel grid centred on (0, 0).

    Parameters
    ----------
    resolution : int
        Pixels along each axis (>= 2).
    fov : float
        Field of view in Å, from the first to the last pixel centre.

    Examples
    --------
    >>> g = Grid(64, 100.0)
    >>> round(g.pitch, 4)
    1.5873
    >>> float(g.x[0]), float(g.x[-1])
    (-50.0, 50.0)
    """

    resolution: int = 64
    fov: float = 100.0
    #: The exact coordinates read from a file (kept so that a rewrite is bit-exact);
    #: ``None`` means ``linspace(-fov/2, fov/2, resolution)``.
    coords: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if int(self.resolution) != self.resolution or self.resolution < 2:
            raise ValueError(f"resolution must be an integer >= 2, got {self.resolution!r}")
        if not np.isfinite(self.fov) or self.fov <= 0:
            raise ValueError(f"fov must be a positive number of Å, got {self.fov!r}")
        object.__setattr__(self, "resolution", int(self.resolution))
        object.__setattr__(self, "fov", float(self.fov))

    @property
    def x(self) -> np.ndarray:
        """Pixel-centre x coordinates (Å), shape ``(resolution,)``."""
        if self.coords is not None:
            return self.coords.copy()
        return np.linspace(-self.fov / 2, self.fov / 2, self.resolution)

    @property
    def y(self) -> np.ndarray:
        """Pixel-centre y coordinates (Å); identical to :attr:`x`."""
        return self.x

    @property
    def pitch(self) -> float:
        """Distance between neighbouring pixel centres (Å)."""
        return self.fov / (self.resolution - 1)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.resolution, self.resolution)

    def meshgrid(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, Y)`` arrays of shape ``(R, R)`` indexed ``[iy, ix]``."""
        return np.meshgrid(self.x, self.y, indexing="xy")

    @classmethod
    def from_x(cls, x: np.ndarray, rtol: float = 1e-6) -> "Grid":
        """The grid whose pixel centres are ``x`` (a file's row 2).

        Raises ``ValueError`` unless ``x`` is uniform and centred on 0, as the
        convention requires.
        """
        x = np.asarray(x, dtype=float)
        if x.ndim != 1 or x.size < 2:
            raise ValueError("need at least two x coordinates")
        fov = float(x[-1] - x[0])
        if not fov > 0:
            raise ValueError("x coordinates must increase")
        grid = cls(x.size, fov)
        tol = rtol * fov + 1e-9
        bad = np.flatnonzero(~(np.abs(x - grid.x) <= tol))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"x coordinate {i + 1} is {float(x[i])!r}, expected {float(grid.x[i])!r} for a "
                f"uniform grid "
                f"from {-fov / 2!r} to {fov / 2!r} Å"
            )
        if np.array_equal(x, grid.x):
            return grid
        coords = x.copy()
        coords.setflags(write=False)
        return cls(x.size, fov, coords)
