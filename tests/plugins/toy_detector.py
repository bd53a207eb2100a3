"""A detector from outside qpiset, in one file: the local maxima of the image above half
its peak, refined by a parabola (registering it is the one line at the bottom)."""

import numpy as np
from scipy import ndimage

from qpiset.inverse import Detections, register_detector


class LocalMaxima:
    """Scatterers at the 3x3 local maxima that reach ``fraction`` of the image's peak."""

    def __init__(self, fraction: float = 0.5) -> None:
        self.fraction = float(fraction)

    def detect(self, images, op) -> Detections:
        grid = op.grid
        found = []
        for img in np.asarray(images, float).reshape(-1, *grid.shape):
            y = img - np.median(img)
            peaks = (y == ndimage.maximum_filter(y, size=3)) & (y >= self.fraction * y.max())
            iy, ix = np.nonzero(peaks)
            found.append(np.stack([grid.x[ix], grid.x[iy]], axis=1))
        return Detections(found)


register_detector("toy-maxima", LocalMaxima, "the image's local maxima (a test's toy)")
