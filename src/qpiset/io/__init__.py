"""Reading, validating, writing and converting dataset files, and the JSON records the
commands exchange.

Formats by suffix (:mod:`.formats`): ``.csv`` (and any other text name) and ``.csv.gz``
are the row format (:mod:`.rows`); ``.npz`` is the binary container (:mod:`.npz`);
``.zarr`` is the chunked store (:mod:`.store`, read lazily). Every write is atomic
(:mod:`.atomic`).
"""

from ..core.errors import FormatError
from .atomic import atomic_output, check_output
from .convert import convert
from .formats import file_format, read_sidecar, sidecar_path, write_sidecar
from .order import detect_order
from .reading import read, stream
from .records import (load_json, predictions_record, read_family_index, read_predictions,
                      read_results, write_json)
from .rows import RowIndex
from .summary import Summary, summarize, validate
from .writing import write, write_store, write_stream

__all__ = [
    "FormatError", "read", "write", "stream", "validate", "summarize", "Summary",
    "detect_order", "sidecar_path", "read_sidecar", "write_sidecar", "file_format", "convert",
    "write_stream", "write_store", "atomic_output", "check_output", "RowIndex", "load_json",
    "write_json", "predictions_record", "read_predictions", "read_results",
    "read_family_index",
]
