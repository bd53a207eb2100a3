"""Learned inverse methods (optional extra ``ml``: ``pip install 'qpiset[ml]'``, torch).

The data flow is the same as the classical stages': images + the file's kernel row in,
positions (Å) or a kernel image out. Modules, one job each:

- :mod:`.data`: torch datasets over a row-format file and over the chunked store (lazy,
  safe in DataLoader worker processes), and :class:`.data.SimulatedStream`, an endless
  stream of simulated batches (the generator of ``qpiset generate``, one seed per batch,
  so the stream is the same for any number of workers);
- :mod:`.targets`: scatterer positions <-> per-cell occupancy and sub-pixel offsets on a
  grid twice as fine as the image's;
- :mod:`.detector`: the kernel-conditioned detector network, :class:`.detector.UNetDetector`
  (``qpiset detect --method unet``) and :class:`.detector.HybridDetector` (``hybrid``);
- :mod:`.kernel_vae`: the kernel extractor by latent alignment (a VAE of kernels plus an
  observation encoder) and the one-step baseline (``qpiset kernel --method vae|direct``);
- :mod:`.nets`: network building blocks and checkpoint files;
- ``weights/``: the shipped models (``models/README.md`` in the repository is their card).

The training loops are in :mod:`qpiset.workflows` (``qpiset train``). Nothing outside this
package imports torch, and the registry (:mod:`qpiset.inverse.registry`) imports it only
when a learned method is asked for.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("qpiset.inverse.learned needs torch: pip install 'qpiset[ml]'") from exc

from pathlib import Path

#: Where the shipped weights live (package data).
WEIGHTS = Path(__file__).with_name("weights")

__all__ = ["WEIGHTS"]
