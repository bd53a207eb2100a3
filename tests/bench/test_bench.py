"""Metrics on hand-made cases with known answers."""

import numpy as np
import pytest

from qpiset.bench import (aggregate, kernel_nmse, match, markdown_table, nmse, psnr,
                          run_benchmark, score_detections, summarize_records)
from qpiset.core import Grid

TRUTH = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [-20.0, 5.0]])


def test_perfect_detection():
    s = score_detections(TRUTH, TRUTH[::-1])
    assert (s.tp, s.precision, s.recall, s.f1, s.rmse, s.count_error) == (4, 1, 1, 1, 0, 0)


def test_shifted_within_and_beyond_tolerance():
    s = score_detections(TRUTH, TRUTH + [0.6, 0.8])  # 1.0 Å off
    assert s.tp == 4 and s.rmse == pytest.approx(1.0)
    s = score_detections(TRUTH, TRUTH + [1.2, 0.89], tol=1.5)  # 1.494 Å: still matched
    assert s.tp == 4
    s = score_detections(TRUTH, TRUTH + [1.2, 1.0], tol=1.5)  # 1.56 Å: not matched
    assert s.tp == 0 and s.f1 == 0 and np.isnan(s.rmse)


def test_missing_and_extra_detections():
    s = score_detections(TRUTH, TRUTH[:3])
    assert (s.precision, s.recall, s.count_error) == (1.0, 0.75, -1)
    assert s.f1 == pytest.approx(2 * 3 / 7)
    extra = np.vstack([TRUTH, [[30.0, 30.0], [0.3, 0.0]]])  # a far one and a duplicate
    s = score_detections(TRUTH, extra)
    assert (s.tp, s.precision, s.recall, s.count_error) == (4, 4 / 6, 1.0, 2)


def test_matching_is_one_to_one_and_globally_optimal():
    # greedy nearest-first would pair (0,0)-(0.9,0) and leave (1.8,0) unmatched
    truth = np.array([[0.0, 0.0], [1.8, 0.0]])
    pred = np.array([[0.9, 0.0], [3.2, 0.0]])
    i, j = match(truth, pred, 1.5)
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 0), (1, 1)]
    assert score_detections(truth, pred).tp == 2
    assert score_detections(np.zeros((0, 2)), np.zeros((0, 2))).f1 == 1.0
    assert score_detections(np.zeros((0, 2)), TRUTH).precision == 0.0


def test_aggregate_is_micro_average():
    a = score_detections(TRUTH, TRUTH)
    b = score_detections(TRUTH, np.zeros((0, 2)))
    agg = aggregate([a, b])
    assert (agg.n_true, agg.n_pred, agg.tp) == (8, 4, 4)
    assert agg.f1 == pytest.approx(2 * 4 / 12)


def test_image_and_kernel_errors():
    t = np.arange(16.0).reshape(4, 4)
    assert nmse(t, t) == 0 and psnr(t, t) == float("inf")
    assert nmse(t + 1, t) == pytest.approx(16 / np.sum(t**2))
    assert psnr(t + 1, t) == pytest.approx(10 * np.log10(15**2 / 1))
    assert kernel_nmse(-3.0 * t, t) == pytest.approx(0.0, abs=1e-15)  # scale and sign free
    assert kernel_nmse(np.ones((4, 4)), t) > 0.1


def test_summary_and_table():
    recs = [{"n_true": 4, "n_pred": 4, "tp": 4, "sq_err": 0.04, "seconds": 0.1, "nmse": 0.01,
             "psnr": 30.0}, {"n_true": 60, "n_pred": 58, "tp": 57, "sq_err": 0.57,
                             "seconds": 0.3, "nmse": 0.02, "psnr": 25.0}]
    s = summarize_records(recs)
    assert s["f1"] == pytest.approx(2 * 61 / 126) and s["rmse"] == pytest.approx(0.1)
    results = {"config": {"tol": 1.5, "images": 2}, "methods": {
        "m": {"overall": s, "bands": {"1-10": summarize_records(recs[:1]),
                                      "11-50": summarize_records([]),
                                      "51-100": summarize_records(recs[1:])}}}}
    table = markdown_table(results)
    assert "| m | 1-10 | 1 | 1.000 |" in table and "| m | all | 2 |" in table
    assert "11-50" not in table


def test_oracle_reference_is_marked_and_exact_without_noise():
    from qpiset.physics import FriedelKernel
    from qpiset.forward import simulate

    ds = simulate(FriedelKernel(), Grid(32, 50.0), n=3, seed=5, min_scatterers=3,
                  max_scatterers=12)
    res = run_benchmark(ds, ["oracle"])
    o = res["methods"]["oracle"]
    assert o["uses_truth"] is True and o["overall"]["f1"] == 1.0 and o["overall"]["rmse"] < 0.15
    assert "oracle (uses the truth)" in markdown_table(res)
