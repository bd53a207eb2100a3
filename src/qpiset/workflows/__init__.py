"""Workflows: jobs made of the layers below. Writing simulated datasets (:mod:`.generate`)
and kernel families (:mod:`.family`), generation on a dask cluster (:mod:`.distributed`),
the training loops of the learned methods (:mod:`.train_detector`, :mod:`.train_kernel`;
torch, imported only there) and the demo (:mod:`.demo`)."""

from .demo import DEMO_FILES, run_demo
from .family import generate_family
from .generate import generate_file

__all__ = ["generate_file", "generate_family", "run_demo", "DEMO_FILES"]
