"""Outputs: checked before any work, never replaced unasked (``--overwrite``), never two
outputs on one path, and errors that name the user's path."""

import pytest

import qpiset


@pytest.fixture()
def data(tmp_path, run):
    path = tmp_path / "d.csv"
    run("generate", path, "--n", 3, "--resolution", 16, "--fov", 30, "--max-scatterers", 4)
    return path


def test_existing_outputs_are_not_replaced_unasked(tmp_path, run, data):
    before = data.read_bytes()
    res = run("generate", data, "--n", 2, "--resolution", 16, code=1)
    assert f"{data}: exists; give --overwrite to replace it" in res.output
    assert data.read_bytes() == before
    run("generate", data, "--n", 2, "--resolution", 16, "--overwrite")
    assert qpiset.read(data).n_images == 2
    taken = tmp_path / "taken"
    taken.write_text("mine")
    for args in (("convert", data, taken), ("detect", data, "--out", taken),
                 ("kernel", data, "--out", taken), ("show", data, "--out", taken.with_suffix(".png")),
                 ("report", data, "--out", taken)):
        if str(args[-1]).endswith(".png"):
            args[-1].write_text("mine")
        res = run(*args, code=1)
        assert "exists; give --overwrite" in res.output, args
    assert taken.read_text() == "mine"


def test_bench_never_writes_two_outputs_on_one_path(tmp_path, run, data):
    notes = tmp_path / "notes.md"
    notes.write_text("my notes")
    res = run("bench", data, "--methods", "matched", "--out", tmp_path / "notes.json", code=1)
    assert f"{notes}: exists" in res.output and notes.read_text() == "my notes"
    res = run("bench", data, "--methods", "matched", "--out", tmp_path / "r.md", code=2)
    assert "name the JSON file" in res.output
    run("bench", data, "--methods", "matched", "--out", tmp_path / "r.json")
    assert (tmp_path / "r.md").read_text().startswith("Matching tolerance")


def test_bad_output_locations_fail_before_the_work(tmp_path, run):
    # the output is checked first: the missing input is not even looked at
    res = run("detect", tmp_path / "missing.csv", "--out", tmp_path / "no" / "p.json", code=1)
    assert f"{tmp_path / 'no' / 'p.json'}: cannot write: no such directory" in res.output
    res = run("generate", tmp_path / "no" / "d.csv", "--n", 100000, code=1)
    assert "no such directory" in res.output and ".part" not in res.output
    folder = tmp_path / "f.csv"
    folder.mkdir()
    res = run("generate", folder, "--n", 1, code=1)
    assert "is a directory" in res.output


def test_folders_demo_and_family(tmp_path, run):
    fam = tmp_path / "fam"
    fam.mkdir()
    (fam / "keep.txt").write_text("x")
    res = run("generate-family", fam, "--kernels", 1, "--n", 1, "--models", "friedel",
              "--resolution", 16, code=1)
    assert "is not empty; give --overwrite" in res.output
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "report.html").write_text("old")
    res = run("demo", "--out", demo, "--n", 2, "--bench-images", 0, code=1)
    assert "report.html: exists" in res.output
