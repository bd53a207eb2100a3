"""The forward model: one operator that renders a kernel's images (:class:`Forward`, its
loops in :mod:`.backends`), the scattering theories, reproducible seeding, noise and
instrument models, the simulator and kernel families."""

from .families import (N_FOLDS, family_file_seed, family_split, n_fold_label, sample_family,
                       samplers, symmetry_record)
from .noise import SPEC_NAMES, NoiseModel, as_noise, noise_from_params, parse_noise
from .operator import Forward, StrengthFit
from .scattering import SCATTERING, check_scattering, image_renderer
from .seeding import BLOCK, block_generators, draw_scatterers, snap_to_lattice
from .simulate import as_recipe, simulate, simulate_blocks

__all__ = ["Forward", "StrengthFit", "SCATTERING", "SPEC_NAMES",
           "check_scattering", "image_renderer", "BLOCK", "block_generators",
           "draw_scatterers", "snap_to_lattice", "simulate", "simulate_blocks", "as_recipe",
           "NoiseModel", "as_noise", "noise_from_params", "parse_noise", "sample_family",
           "samplers", "family_file_seed", "family_split", "symmetry_record", "n_fold_label",
           "N_FOLDS"]
