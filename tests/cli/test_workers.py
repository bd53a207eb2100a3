"""``--workers``: detect and bench fit images in several processes, with the same results."""

import json

import pytest

from qpiset.inverse import worker_count


def test_detect_and_bench_give_the_same_answer_on_two_workers(tmp_path, run):
    data = tmp_path / "d.csv"
    run("generate", data, "--n", 3, "--seed", 4, "--resolution", 32, "--fov", 50,
        "--min-scatterers", 5, "--max-scatterers", 12, "--noise", 0.1)
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    run("detect", data, "--out", one)
    run("detect", data, "--out", two, "--workers", 2)
    assert one.read_bytes() == two.read_bytes()
    b1, b2 = tmp_path / "b1.json", tmp_path / "b2.json"
    run("bench", data, "--methods", "sparse", "--out", b1)
    run("bench", data, "--methods", "sparse", "--out", b2, "--workers", 2)
    r1, r2 = (json.loads(p.read_text()) for p in (b1, b2))
    assert r2["config"]["workers"] == 2
    m1, m2 = r1["methods"]["sparse"], r2["methods"]["sparse"]
    assert [r["positions"] for r in m1["images"]] == [r["positions"] for r in m2["images"]]
    assert m2["wall_seconds"] > 0 and m1["overall"]["f1"] == m2["overall"]["f1"]
    run("detect", data, "--out", tmp_path / "x.json", "--workers", 0, code=2)


def test_a_learned_detector_runs_in_one_process_whatever_the_workers(tmp_path, run):
    pytest.importorskip("torch")
    data = tmp_path / "d.csv"
    run("generate", data, "--n", 4, "--seed", 3, "--max-scatterers", 20)
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    run("detect", data, "--method", "unet", "--out", one)
    run("detect", data, "--method", "unet", "--out", two, "--workers", 2)
    # a batch of one in each of two processes would round the network's sums otherwise
    assert one.read_bytes() == two.read_bytes()
    assert worker_count("unet", 2) == 1 and worker_count("sparse", 2) == 2
