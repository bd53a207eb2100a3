"""The qpiset command: the contract's flags, exit codes and round trips."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import qpiset

from helpers import assert_same_dataset


def test_generate_validate_info_convert(tmp_path, run):
    csv = tmp_path / "d.csv"
    run("generate", csv, "--n", 20, "--seed", 4, "--resolution", 32, "--fov", 60,
        "--max-scatterers", 12, "--noise", 0.1, "--strength", "0.5:1.5")
    assert "ok: 20 images, 32x32 px, fov 60 Å, max_scatterers 12" in run("validate", csv).output
    info = json.loads(run("info", csv, "--json").output)
    assert info["n_images"] == 20 and info["resolution"] == 32 and info["fov"] == 60
    assert 1 <= info["counts"]["min"] <= info["counts"]["max"] <= 12
    assert info["meta"]["kernel"]["material"] == "Cu(111)" and info["meta"]["seed"] == 4
    assert "scatterers/image" in run("info", csv).output
    ds = qpiset.read(csv)
    npz, gz, back = tmp_path / "d.npz", tmp_path / "d.csv.gz", tmp_path / "back.csv"
    run("convert", csv, npz)
    run("convert", npz, gz)
    run("convert", gz, back, "--layout", "ragged")
    for p in (npz, gz, back):
        assert_same_dataset(qpiset.read(p), ds)
    assert qpiset.read(back).meta["layout"] == "ragged"


def test_same_seed_same_bytes_whatever_the_workers(tmp_path, run):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv.gz"
    args = ["--n", 300, "--seed", 9, "--resolution", 16, "--fov", 30, "--max-scatterers", 5,
            "--noise", 0.3]
    run("generate", a, *args, "--workers", 1)
    run("generate", b, *args, "--workers", 2)
    run("generate", c, *args)
    assert a.read_bytes() == b.read_bytes()
    run("convert", c, tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_bytes() == a.read_bytes()


def test_400_angstrom_variant_by_flags_alone(tmp_path, run):
    path = tmp_path / "wide.csv"
    run("generate", path, "--n", 5, "--fov", 400, "--max-scatterers", 20, "--material", "Ag(111)")
    ds = qpiset.read(path)
    assert ds.grid.fov == 400 and ds.grid.resolution == 64 and ds.max_scatterers == 20
    assert np.all(np.abs(np.concatenate(ds.positions)) <= 200)
    assert ds.meta["kernel"]["material"] == "Ag(111)"


CUSTOM_BAND = ("--n", 3, "--resolution", 16, "--max-scatterers", 3, "--material", "none",
               "--mass", 0.5, "--band-bottom", -0.3, "--tip-sigma", 1.5)


def test_npz_output_and_custom_band(tmp_path, run):
    path = tmp_path / "d.npz"
    run("generate", path, *CUSTOM_BAND, "--eta", 0.01)
    ds = qpiset.read(path)
    assert ds.meta["kernel"]["mass"] == 0.5 and ds.meta["kernel"]["material"] is None
    assert ds.meta["kernel"]["eta"] == 0.01 and "gamma" not in ds.meta["kernel"]
    assert ds.strengths is not None


def test_gamma_is_the_old_name_of_eta(tmp_path, run):
    """--gamma still works, with a FutureWarning, and makes the same file as --eta."""
    new, old = tmp_path / "new.csv", tmp_path / "old.csv"
    assert "--gamma" not in run("generate", new, *CUSTOM_BAND, "--eta", 0.01).output
    out = run("generate", old, *CUSTOM_BAND, "--gamma", 0.01).output
    assert "--gamma is now called --eta" in out
    assert old.read_bytes() == new.read_bytes()
    assert "not both" in run("generate", old, *CUSTOM_BAND, "--eta", 0.01, "--gamma", 0.01,
                             code=2).output


def test_usage_errors_exit_2_and_bad_input_exit_1(tmp_path, run):
    out = tmp_path / "x.csv"
    assert "unknown material" in run("generate", out, "--material", "Pt(111)", code=2).output
    run("generate", out, "--noise", -1, code=2)
    run("generate", out, "--min-scatterers", 9, "--max-scatterers", 3, code=2)
    run("generate", out, "--strength", "2:1", code=2)
    run("generate", out, "--energy", -1.0, code=2)  # below the Cu(111) band bottom
    run("info", tmp_path / "missing.csv", code=1)
    assert not out.exists()
    result = run("generate", tmp_path / "no" / "dir.csv", "--n", 1, code=1)
    assert "no such directory" in result.output and "Traceback" not in result.output
    (tmp_path / "plain.zarr").mkdir()  # a directory that is no qpiset store
    res = run("generate", tmp_path / "plain.zarr", "--n", 1, code=1)
    assert "plain.zarr: not a" in res.output and "Traceback" not in res.output
    run("nonsense", code=2)


def test_console_script_help_and_quiet_in_pipes(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "qpiset")
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("generate", "validate", "info", "convert", "demo", "show", "report"):
        assert command in help_text
    done = subprocess.run([exe, "generate", str(tmp_path / "p.csv"), "--n", "300",
                           "--resolution", "16"], capture_output=True, text=True, check=True)
    assert done.stderr == ""  # no progress bar when stderr is not a terminal


@pytest.mark.slow  # 4 s, 7-9 s under load
def test_detect_kernel_bench_commands(tmp_path, run):
    path = tmp_path / "d.csv"
    run("generate", path, "--n", 4, "--seed", 8, "--min-scatterers", 5, "--max-scatterers", 12)
    pred = tmp_path / "p.json"
    run("detect", path, "--method", "sparse", "--out", pred)
    record = json.loads(pred.read_text())
    assert record["method"] == "sparse" and len(record["positions"]) == 4
    truth = qpiset.read(path).positions
    from qpiset.bench import aggregate, score_detections

    score = aggregate(score_detections(t, p) for t, p in zip(truth, record["positions"]))
    assert score.f1 >= 0.99
    out = run("bench", path, "--methods", "matched,sparse", "--predictions", pred, "--out",
              tmp_path / "r.json").output
    assert "| sparse | 1-10 |" in out and "| p | all | 4 |" in out
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["methods"]["p"]["overall"]["f1"] == pytest.approx(score.f1)
    assert (tmp_path / "r.md").read_text().startswith("Matching tolerance 1.5 Å")
    out = run("kernel", path, "--method", "lsq", "--out", tmp_path / "k.npy").output
    nmse = float(out.rsplit(":", 1)[1])
    assert nmse < 1e-3 and np.load(tmp_path / "k.npy").shape == (64, 64)
    # physics model from the file's metadata instead of the kernel row
    run("detect", path, "--physics", "--out", tmp_path / "q.json", "--limit", 1)
    assert len(json.loads((tmp_path / "q.json").read_text())["positions"]) == 1


@pytest.mark.slow  # about 40 s: three rounds of detection on 10 images
def test_calibrate_save_and_reuse_the_kernel(tmp_path, run):
    path = tmp_path / "d.csv"
    run("generate", path, "--n", 10, "--seed", 3, "--resolution", 32, "--fov", 50,
        "--set", "tip_sigma=0.3", "--min-scatterers", 30, "--max-scatterers", 40,
        "--noise", 0.1)
    out = run("kernel", path, "--method", "calibrate", "--images", 10, "--out",
              tmp_path / "k.npy", "--model", tmp_path / "k.npz").output
    assert float(out.rsplit(":", 1)[1]) < 1e-3  # it still reproduces the row
    from qpiset.io import load_kernel_model

    assert load_kernel_model(tmp_path / "k.npz").name == "spline"
    found = {}
    for name, extra in [("row", ["--no-calibrate"]), ("auto", []), ("on", ["--calibrate"]),
                        ("saved", ["--kernel-model", tmp_path / "k.npz"])]:
        res = run("detect", path, "--out", tmp_path / f"{name}.json", *extra)
        assert ("calibrated the kernel on 10 images" in res.output) == (name == "on")
        found[name] = json.loads((tmp_path / f"{name}.json").read_text())["positions"]
    assert found["auto"] == found["row"]  # ~350 scatterers: too few to calibrate by default
    assert found["saved"] == found["on"]  # the saved model is the one calibration makes
    assert found["on"] != found["row"]
    res = run("kernel", path, "--method", "calibrate", "--out", tmp_path / "k2.npy", "--model",
              tmp_path / "k2.json", code=2)
    assert "saved as .npz" in res.output


def test_bad_predictions_file_is_a_clear_error(tmp_path, run):
    path = tmp_path / "d.csv"
    run("generate", path, "--n", 2, "--resolution", 16, "--max-scatterers", 3)
    bad = tmp_path / "bad.json"
    bad.write_text('{"positions": [[[1, 2]],\n  [[1, "x"]]')
    result = run("bench", path, "--methods", "", "--predictions", bad, "--out",
                 tmp_path / "r.json", code=1)
    assert result.output.startswith(f"{bad}:2:") and "not JSON" in result.output
    bad.write_text('{"images": [0, 5], "positions": [[], []]}')
    assert "image 5 is not in" in run(
        "bench", path, "--methods", "", "--predictions", bad, "--out", tmp_path / "r.json",
        code=1).output
    run("bench", path, "--methods", "nope", "--out", tmp_path / "r.json", code=2)


@pytest.mark.torch
def test_cli_detect_bench_kernel_with_learned_methods(tmp_path, run):
    path = tmp_path / "d.csv"
    run("generate", path, "--n", 4, "--seed", 1, "--min-scatterers", 20, "--max-scatterers", 40,
        "--noise", 0.3)
    pred = tmp_path / "p.json"
    run("detect", path, "--method", "unet", "--out", pred)
    rec = json.loads(pred.read_text())
    assert rec["method"] == "unet" and len(rec["positions"]) == 4
    assert [len(c) for c in rec["confidence"]] == [len(p) for p in rec["positions"]]
    res = tmp_path / "r.json"
    out = run("bench", path, "--methods", "unet,matched", "--out", res).output
    results = json.loads(res.read_text())
    assert results["methods"]["unet"]["learned"] and not results["methods"]["matched"]["learned"]
    f1 = {m: results["methods"][m]["overall"]["f1"] for m in ("unet", "matched")}
    assert f1["unet"] > f1["matched"], f1
    assert "| unet |" in out
    k = tmp_path / "k.npy"
    assert "NMSE" in run("kernel", path, "--method", "vae", "--out", k).output
    assert np.load(k).shape == (64, 64)
    run("kernel", path, "--method", "direct", "--out", k, code=1)  # exists: not replaced
    run("kernel", path, "--method", "direct", "--out", k, "--overwrite")


def test_refusals_are_one_line_not_tracebacks(tmp_path, run):
    lattice = tmp_path / "sq.csv"
    run("generate", lattice, "--n", 2, "--kernel", "lattice", "--set", "structure=square",
        "--set", "mu=-1", "--set", "reach=60", "--energy", 0.1, "--resolution", 32, "--fov", 40,
        "--max-scatterers", 3, "--min-scatterers", 0)
    for method in ("matched", "sparse"):  # an anisotropic physics model is fitted as it is
        run("detect", lattice, "--physics", "--method", method, "--out", tmp_path / "p.json",
            "--overwrite")
    truth = qpiset.read(lattice).positions
    found = json.loads((tmp_path / "p.json").read_text())["positions"]
    assert [len(p) for p in found] == [len(t) for t in truth]
    res = run("bench", lattice, "--physics", "--kernel-model", tmp_path / "k.npz",
              "--methods", "sparse", "--out", tmp_path / "b.json", code=2)
    assert "not both" in res.output and "Traceback" not in res.output
    res = run("detect", lattice, "--kernel-model", tmp_path / "k.npz", "--out",
              tmp_path / "q.json", code=1)
    assert "k.npz" in res.output and len(res.output.strip().splitlines()) == 1
    fig = tmp_path / "c.png"  # contributions of an anisotropic model: rendered, any count
    run("show", lattice, "--index", 0, "--contributions", "--out", fig)
    empty = tmp_path / "none.csv"  # images without scatterers: lsq has nothing to fit
    g = qpiset.Grid(16, 20.0)
    qpiset.write(empty, qpiset.Dataset(g, np.eye(16), np.zeros((2, 16, 16)),
                                       [np.zeros((0, 2))] * 2, 1))
    res = run("kernel", empty, "--method", "lsq", "--out", tmp_path / "k.npy", code=1)
    assert "needs scatterers" in res.output and not (tmp_path / "k.npy").exists()
    res = run("generate-family", tmp_path / "fam", "--kernels", 1, "--n", 1, "--models",
              "bogus", code=2)
    assert "no sampler for ['bogus']" in res.output


def test_former_names_on_the_command_line(tmp_path, run):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    res = run("generate", a, "--n", 2, "--resolution", 16, "--set", "gamma=0.01")
    assert "'gamma' of FriedelKernel is now called 'eta'" in res.output
    run("generate", b, "--n", 2, "--resolution", 16, "--eta", 0.01)
    assert a.read_bytes() == b.read_bytes()
    c = tmp_path / "c.csv"  # --eta applies to every model with a broadening
    run("generate", c, "--n", 1, "--resolution", 16, "--fov", 20, "--kernel", "lattice",
        "--set", "reach=30", "--eta", 0.05, "--energy", 0.1, "--set", "mu=-1")
    assert qpiset.read(c).meta["kernel"]["eta"] == 0.05


def test_help_reads_as_a_physicist_writes(run):
    """Issue 13, item 14: help in the names and numbers a user types."""
    info = run("info", "--help").output
    assert "[F|C|auto]" in info and "[f|c|auto]" not in info
    gen = " ".join(run("generate", "--help").output.split())
    assert "1.5707963267948966" not in gen and "π/2" in gen
    start = gen.index("--min-scatterers")
    assert len(gen[start:gen.index("--", start + 2)].split()) > 3  # has help text, not bare
    res = run("bench", "x.csv", "--methods", "nonsense", "--out", "r.json", code=2)
    assert "unknown method 'nonsense'" in res.output and "matched, sparse" in res.output
    res = run("detect", "x.csv", "--method", "nonsense", "--out", "r.json", code=2)
    assert "matched" in res.output and "sparse" in res.output
