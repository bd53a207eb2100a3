"""Composable noise and instrument models for simulated QPI images.

Each model is a small object that maps a stack of clean images to a new, distorted stack::

    out = model(images, rng, grid=None)     # images: (n, R, R) or (R, R), indexed [iy, ix]
    model.params()                          # JSON-serialisable dict with a "model" key
    noise_from_params(model.params())       # the same model again (metadata -> model)

and models compose with :class:`Chain`, applied left to right. :func:`parse_noise` reads the
command-line form, e.g. ``"setpoint:0.3,blur:1.5,lines:0.05:0.2,white:0.1"``.

One module per model; a new model is its module plus one line in :mod:`.registry` (its
class declares its ``name``, its ``--noise`` spec names and how it reads them).

Conventions
-----------
* Images are ``img[iy, ix]``. Rows are **scan lines**: the tip moves along ``x`` (the fast
  axis, increasing ``ix``) and steps in ``y`` between lines (the slow axis). Time therefore
  runs in raster order ``t = iy * R + ix``; retrace/flyback time is neglected.
* Images are the relative LDOS change ``delta rho / rho0`` (dimensionless), as made by
  :mod:`qpiset.forward`.
* Noise amplitudes are fractions of the standard deviation of each image handed to the model
  (``np.std`` over its pixels). In a :class:`Chain` that is the output of the previous step,
  so put the instrument distortions (:class:`Setpoint`, :class:`TipBlur`) before the noise
  terms when the noise should refer to the measured signal.
* Lengths (blur width, line jitter) are in Å and need ``grid`` (a :class:`qpiset.core.Grid`)
  for the pixel pitch.
* Randomness comes only from the ``numpy.random.Generator`` passed in. The number and order
  of the draws depend only on the image shape, never on the parameter values (a level of 0
  draws the same variates as 0.1), so a sweep over a level rescales one noise realisation.
  Each model's docstring states its draws; they are part of the reproducibility contract.
"""

from .base import NoiseModel
from .blur import TipBlur
from .chain import Chain
from .lines import ScanLines
from .pink import PinkNoise
from .registry import NOISE_MODELS, SPEC_NAMES, as_noise, noise_from_params, parse_noise, register_noise
from .setpoint import Setpoint
from .white import White

__all__ = ["NoiseModel", "White", "PinkNoise", "ScanLines", "TipBlur", "Setpoint", "Chain",
           "parse_noise", "noise_from_params", "as_noise", "register_noise", "NOISE_MODELS",
           "SPEC_NAMES"]
