"""The dataset's row format: the file's bytes (:mod:`.source`), parsing and checking
(:mod:`.parse`), writing (:mod:`.write`) and random access by line (:mod:`.index`)."""

from .index import RowIndex
from .parse import (Header, RowChunk, block_values, check_kernel_row, check_values, file_header,
                    images_from_rows, open_rows, read_all_fast, read_header, rows_from_images)
from .source import RowSource
from .write import write_rows

__all__ = ["RowIndex", "Header", "RowChunk", "RowSource", "open_rows", "file_header", "read_header",
           "read_all_fast", "check_values", "images_from_rows", "rows_from_images", "write_rows",
           "block_values", "check_kernel_row"]
