"""The core: the pixel grid, the dataset, the generation recipe, the input checks and the
error type for bad files, and a measured map. Everything else builds on these; they need numpy only."""

from .checks import as_image_stack, as_positions
from .dataset import SENTINEL, Dataset, Sample, image_index, pad_rows
from .errors import FormatError
from .grid import Grid
from .measurement import Measurement
from .recipe import Recipe
from .version import __version__

__all__ = ["Grid", "Dataset", "Sample", "image_index", "SENTINEL", "pad_rows", "FormatError", "Recipe",
           "Measurement",
           "as_image_stack", "as_positions", "__version__"]
