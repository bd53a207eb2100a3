"""Benchmarking inverse methods: the metrics (:mod:`.metrics`, apart from everything
else) and the protocol that runs methods on a file and scores them (:mod:`.protocol`)."""

from .metrics import (DetectionScore, aggregate, kernel_nmse, match, nmse, psnr,
                      score_detections)
from .protocol import (BANDS, REFERENCES, band_name, markdown_table, oracle_positions,
                       reconstruct, run_benchmark, save_results, summarize_records)

__all__ = ["match", "DetectionScore", "score_detections", "aggregate", "nmse", "psnr",
           "kernel_nmse", "BANDS", "REFERENCES", "band_name", "reconstruct",
           "oracle_positions", "summarize_records", "run_benchmark", "markdown_table",
           "save_results"]
