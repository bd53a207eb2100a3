"""Look at the data: figures (matplotlib, no display needed) and the HTML report.

- :func:`figure_show`: an image with true (and detected) scatterers, the kernel, its
  radial profile, and q-space with the ``2 k_F`` ring;
- :func:`figure_contributions`: each scatterer's term, their sum, and what is left;
- :func:`build_report`: one self-contained HTML page.
"""

from .figures import (MARKERS, contributions, figure_contributions, figure_show, image_panel,
                      kernel_panel, power_spectrum, profile_panel, qspace_panel, ring_of)
from .report import FORMATS, build_report, figure_bytes, png_bytes

__all__ = ["MARKERS", "contributions", "figure_contributions", "figure_show", "image_panel",
           "kernel_panel", "power_spectrum", "profile_panel", "qspace_panel", "ring_of",
           "build_report", "figure_bytes", "png_bytes", "FORMATS"]
