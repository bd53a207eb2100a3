"""Reading, validating, writing and converting dataset files, and the JSON records the
commands exchange.

Formats by suffix (:mod:`.formats`): ``.csv`` (and any other text name) and ``.csv.gz``
are the row format (:mod:`.rows`); ``.npz`` is the binary container (:mod:`.npz`);
``.zarr`` is the chunked store (:mod:`.store`, read lazily). Every write is atomic
(:mod:`.atomic`). :func:`open_dataset` opens any of them without reading the images
(:mod:`.lazy`): what looks at part of a file costs the same for any size of file.
"""

from ..core.errors import FormatError
from .atomic import atomic_output, check_output
from .convert import convert
from .formats import file_format, read_sidecar, sidecar_path, write_sidecar
from .kernels import load_kernel_model, save_kernel_model
from .lazy import RowDataset, count, head, open_dataset
from .measured import MEASURED_SUFFIXES, MeasurementWarning, is_measurement, read_measurement
from .order import OrderWarning, detect_order
from .prepare import crop, keep_good_rows, level_lines, level_plane, resample, spoiled_rows
from .reading import read, stream
from .records import (Predictions, load_json, load_predictions, predictions_record,
                      read_family_index, read_predictions, read_results, write_json)
from .rows import RowIndex
from .summary import Summary, summarize, validate
from .writing import write, write_store, write_stream

__all__ = ["crop", "keep_good_rows", "level_lines", "level_plane", "resample",
           "spoiled_rows", "MEASURED_SUFFIXES", "MeasurementWarning", "is_measurement", "read_measurement",
           
    "FormatError", "read", "write", "stream", "validate", "summarize", "Summary",
    "detect_order", "sidecar_path", "read_sidecar", "write_sidecar", "file_format", "convert",
    "write_stream", "write_store", "atomic_output", "check_output", "RowIndex", "load_json",
    "write_json", "predictions_record", "read_predictions", "read_results",
    "read_family_index", "open_dataset", "RowDataset", "head", "count", "OrderWarning",
    "Predictions", "load_predictions", "save_kernel_model", "load_kernel_model",
]
