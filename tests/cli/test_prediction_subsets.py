"""Predictions name the images they cover, and every consumer takes a subset (issue 13,
item 5): detect --limit writes "images"; bench scores only the covered images and says so;
show draws the overlay of a covered image and refuses clearly for one not covered."""

import json

import numpy as np
import pytest

import qpiset
from qpiset.io import load_predictions


@pytest.fixture(scope="module")
def data(tmp_path_factory, cu):
    from qpiset.core import Grid
    from qpiset.forward import simulate

    path = tmp_path_factory.mktemp("subsets") / "d.csv"
    qpiset.write(path, simulate(cu, Grid(24, 40.0), n=8, seed=5, max_scatterers=4))
    return path


def test_detect_limit_then_bench_and_show(data, run, tmp_path):
    pred = tmp_path / "p.json"
    run("detect", data, "--method", "matched", "--limit", 3, "--out", pred)
    rec = json.loads(pred.read_text())
    assert rec["images"] == [0, 1, 2] and len(rec["positions"]) == 3
    out = tmp_path / "b.json"
    res = run("bench", data, "--methods", "matched", "--predictions", pred, "--out", out)
    assert "p: the predictions cover 3 of the 8 images; only those are scored" in res.output
    results = json.loads(out.read_text())
    p = results["methods"]["p"]
    assert p["scored"] == {"images": 3, "of": 8} and [r["image"] for r in p["images"]] == [0, 1, 2]
    assert results["methods"]["matched"]["scored"] == {"images": 8, "of": 8}
    # the covered images score as the detector did on them (positions to 1e-6 Å in a file)
    for mine, theirs in zip(p["images"], results["methods"]["matched"]["images"][:3]):
        assert np.allclose(mine["positions"], theirs["positions"], rtol=0, atol=1e-6)
        assert (mine["tp"], mine["n_pred"]) == (theirs["tp"], theirs["n_pred"])
    assert "Note: p: the predictions cover 3 of the 8 images" in out.with_suffix(".md").read_text()
    # show: a covered image gets its overlay, another a clear refusal (nothing written)
    res = run("show", data, "--index", 2, "--predictions", pred, "--out", tmp_path / "s.png")
    assert (tmp_path / "s.png").exists()
    res = run("show", data, "--index", 5, "--predictions", pred, "--out", tmp_path / "t.png",
              code=1)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{pred}: no detections for image 5")
    assert "covers 3 images (0-2)" in lines[0] and not (tmp_path / "t.png").exists()


def test_any_subset_and_old_files(data, run, tmp_path):
    ds = qpiset.read(data)
    some = tmp_path / "some.json"
    some.write_text(json.dumps({"method": "mine", "images": [6, 1],
                                "positions": [ds.positions[6].tolist(), []]}))
    out = tmp_path / "b.json"
    run("bench", data, "--methods", "", "--predictions", some, "--out", out)
    recs = json.loads(out.read_text())["methods"]["some"]["images"]
    assert [(r["image"], r["tp"], r["n_pred"]) for r in recs] == \
        [(1, 0, 0), (6, len(ds.positions[6]), len(ds.positions[6]))]
    # a file from before the indices were written: its lists are images 0, 1, ...
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"method": "x", "positions": [p.tolist() for p in ds.positions[:2]]}))
    run("bench", data, "--methods", "", "--predictions", old, "--out", out, "--overwrite")
    res = json.loads(out.read_text())["methods"]["old"]
    assert res["scored"] == {"images": 2, "of": 8} and res["overall"]["f1"] == 1.0
    run("show", data, "--index", 1, "--predictions", old, "--out", tmp_path / "o.png")
    # with --limit, predictions beyond it are not scored
    run("bench", data, "--methods", "", "--predictions", some, "--limit", 4, "--out", out,
        "--overwrite")
    assert json.loads(out.read_text())["methods"]["some"]["scored"] == {"images": 1, "of": 4}


def test_bad_indices_are_named(data, run, tmp_path):
    ds = qpiset.read(data)
    cases = {
        '{"images": [0, 0], "positions": [[], []]}': "more than once",
        '{"images": [0], "positions": [[], []]}': "2 position lists for 1 image indices",
        '{"images": ["a"], "positions": [[]]}': "image indices",
        '{"images": [-1], "positions": [[]]}': "negative",
    }
    for i, (text, why) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}.json"
        bad.write_text(text)
        res = run("bench", data, "--methods", "", "--predictions", bad, "--out",
                  tmp_path / "b.json", code=1)
        assert res.output.startswith(f"{bad}: ") and why in res.output, res.output
    beyond = tmp_path / "beyond.json"
    beyond.write_text(json.dumps({"images": [3, 8], "positions": [[], []]}))
    res = run("bench", data, "--methods", "", "--predictions", beyond, "--out",
              tmp_path / "b.json", code=1)
    assert "image 8 is not in" in res.output and "8 images" in res.output
    with pytest.raises(qpiset.io.FormatError, match="image 8 is not in the data"):
        load_predictions(beyond, n_images=ds.n_images)
