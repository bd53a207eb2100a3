"""``qpiset detect --blind``: detection with a kernel estimated from the images alone."""

import dataclasses
import json

import qpiset
from qpiset.bench import aggregate, score_detections


def _f1(truth, path) -> float:
    found = json.loads(path.read_text())["positions"]
    return aggregate(score_detections(t, p) for t, p in zip(truth, found)).f1


def test_detect_blind_does_without_a_wrong_kernel_row(tmp_path, run):
    from qpiset.forward import Forward
    from qpiset.physics import FriedelKernel

    made = tmp_path / "cu.csv"
    run("generate", made, "--n", 3, "--seed", 12, "--resolution", 32, "--fov", 60,
        "--min-scatterers", 15, "--max-scatterers", 25, "--noise", 0.1)
    ds = qpiset.read(made)
    # the file's kernel row is another surface state's (Ag(111)): not to be trusted
    wrong = Forward(FriedelKernel("Ag(111)"), ds.grid).kernel_row
    bad = tmp_path / "bad.csv"
    qpiset.write(bad, dataclasses.replace(ds, kernel=wrong, meta={}))
    with_row, blind = tmp_path / "row.json", tmp_path / "blind.json"
    run("detect", bad, "--out", with_row, "--no-calibrate")
    result = run("detect", bad, "--blind", "--out", blind)
    assert "estimated the kernel blind (radial) from 3 images" in result.output
    assert _f1(ds.positions, with_row) < 0.8
    assert _f1(ds.positions, blind) > 0.9
    # one kernel source at a time
    result = run("detect", bad, "--blind", "--physics", "--out", tmp_path / "x.json", code=2)
    assert "--blind" in result.output
