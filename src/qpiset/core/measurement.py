"""A measured STM map: one channel of a scan or a grid, with its coordinates and units."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Measurement"]


@dataclass
class Measurement:
    """One channel of a measured STM file (a scan, or a grid with an energy axis); no truth.

    Attributes
    ----------
    data : ndarray
        ``(ny, nx)`` for a scan, ``(n_energies, ny, nx)`` for a grid, indexed ``[.., iy, ix]``
        in the order the file stores its lines (row 0 first recorded).
    x, y : ndarray
        Pixel positions in Å in the map's own frame: ``x = ix * pitch_x`` (0 at the first
        pixel of a line), ``y = iy * pitch_y``.
    channel : str
        The channel read (``channels`` lists the file's).
    units : str
        Units of ``data`` as the file states them (``"DAC"`` for raw Createc counts).
    bias : float or None
        Sample bias of a scan, as an energy (eV: the bias in volts times e).
    energies : ndarray or None
        ``(n_energies,)`` eV: the swept bias of a grid.
    channels : tuple of str
        Every channel the file holds.
    angle : float
        Scan rotation (degrees) as the file states it; ``x``/``y`` are along the scan.
    header : dict
        The file's header, as its reader gives it (values kept as text or numbers).
    path : str
    cropped : tuple of int or None
        ``(first, stop)`` rows kept when a scan stopped early (rows never measured).

    Examples
    --------
    >>> m = Measurement(np.zeros((4, 8)), np.arange(8) * 2.0, np.arange(4) * 2.0, "Z", "m")
    >>> m.shape, m.pitch, m.size
    ((4, 8), (2.0, 2.0), (16.0, 8.0))
    """

    data: np.ndarray
    x: np.ndarray
    y: np.ndarray
    channel: str
    units: str
    bias: float | None = None
    energies: np.ndarray | None = None
    channels: tuple[str, ...] = ()
    angle: float = 0.0
    header: dict = field(default_factory=dict, repr=False)
    path: str = ""
    cropped: tuple[int, int] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def is_grid(self) -> bool:
        """Whether the map has an energy axis."""
        return self.data.ndim == 3

    @property
    def pitch(self) -> tuple[float, float]:
        """``(x, y)`` pixel spacing in Å."""
        px = float(self.x[1] - self.x[0]) if len(self.x) > 1 else 0.0
        py = float(self.y[1] - self.y[0]) if len(self.y) > 1 else px
        return px, py

    @property
    def size(self) -> tuple[float, float]:
        """``(x, y)`` extent in Å: pixels times pitch."""
        px, py = self.pitch
        return len(self.x) * px, len(self.y) * py
