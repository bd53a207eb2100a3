"""``qpiset generate-family --naming published``: a family that the published 100-kernel
dataset's own preprocessing and training scripts (Ji et al. 2025, QPI-Dataset-100kernels)
read as they read the published files.

The loader below does what their scripts do, written here from their description:

- ``split_data_kernel.py`` / ``split_data.py``: every ``*.csv`` of the raw folder is read
  with ``pandas.read_csv(path, header=None)``; the kernel is row index 2, first 64*64
  values, min-max normalised and reshaped row-major to 64 x 64; image rows are 3.. and
  their coordinates the last 40 columns; each file is keyed by the first two
  whitespace-separated words of its name without extension (``Kernel number{i}``), the
  kernel saved as ``Kernel number{i}nom_2d.npy``;
- ``activation_map.py``: coordinate pairs within [-100, 100] Å are binned into 64 x 64
  cells of 400/64 Å counted from -200 Å;
- ``training/stage1.py``: for each kernel file, ``name[:-10]`` (dropping ``nom_2d.npy``),
  the integer after the last ``number`` is the kernel number ``i`` and its n-fold label is
  entry ``i - 1`` of ``n_fold_noise.npy`` (labels 1 = isotropic, 2, 3, 4, 6);
- ``training/stage2.py``: per-kernel folders ``Kernel number{i}``, ``i`` read the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import qpiset
from qpiset.forward.families import N_FOLDS, n_fold_label, symmetry_record
from qpiset.physics import make_kernel
from qpiset.workflows.family import N_FOLD_FILE, generate_family, published_name

pd = pytest.importorskip("pandas")

R, M = 64, 20  # what their scripts hard-code: 64 x 64 pixels, 20 coordinate pairs


def _key(filename: str) -> str:
    return " ".join(os.path.splitext(filename)[0].split()[:2])


def authors_preprocessing(raw: Path, work: Path, R: int = R, M: int = M
                          ) -> dict[str, list[tuple[np.ndarray, int]]]:
    """The kernels to ``work/kernel/all``; returns, per kernel key, each image's activation
    map and how many of its scatterers the map keeps (``R``, ``M``: their constants, set
    for a family of another shape)."""
    kernels = work / "kernel" / "all"
    kernels.mkdir(parents=True)
    maps: dict[str, list[tuple[np.ndarray, int]]] = {}
    for filename in os.listdir(raw):
        if not filename.endswith(".csv"):
            continue
        key = _key(filename)
        frame = pd.read_csv(raw / filename, header=None)
        row = frame.iloc[2, :R * R].to_numpy(dtype=float)
        row = (row - row.min()) / (row.max() - row.min())
        np.save(kernels / f"{key}nom_2d", np.reshape(row, (R, R)))
        with open(raw / filename, encoding="utf-8") as f:
            lines = sum(1 for _ in f)
        maps[key] = []
        for i in range(1, lines - 2):
            coords = frame.iloc[i + 2, -2 * M:].to_numpy(dtype=float)
            grid, kept = np.zeros((R, R)), 0
            for x, y in zip(coords[0::2], coords[1::2]):
                if -100 <= x <= 100 and -100 <= y <= 100:
                    gx, gy = int((x + 200) / (400 / R)), int((y + 200) / (400 / R))
                    if 0 <= gx < R and 0 <= gy < R:
                        grid[gx][gy] = 1
                        kept += 1
            maps[key].append((grid, kept))
    return maps


def stage1_labels(kernel_dir: Path, nfold_file: Path) -> dict[int, int]:
    """Kernel number -> n-fold label, as the stage-1 dataset pairs its files and labels."""
    folds = np.load(nfold_file)
    out = {}
    for kernel_file in os.listdir(kernel_dir):
        number = int(kernel_file[:-10].split("number")[-1])
        out[number] = int(folds[number - 1])
    return out


def test_the_authors_scripts_read_a_published_family(tmp_path, run):
    pub = tmp_path / "published"
    res = run("generate-family", pub, "--kernels", 2, "--n", 4, "--seed", 1, "--models",
              "friedel", "--naming", "published", "--placement-fov", 200)  # 64 px, 400 Å, 20
    assert "warning" not in res.output  # their shape: nothing to warn about

    names = sorted(p.name for p in pub.glob("*.csv"))
    assert names == ["Kernel number1.csv", "Kernel number2.csv"]
    index = json.loads((pub / "index.json").read_text())
    assert index["naming"] == "published" and index["n_fold_file"] == N_FOLD_FILE
    assert index["placement"] == 200.0
    for e in index["kernels"]:
        assert e["file"] == published_name(e["id"]) and e["number"] == e["id"] + 1
        assert e["rotational_symmetry"] == "isotropic" and e["n_fold"] == 1

    maps = authors_preprocessing(pub, tmp_path / "work")
    kernel_dir = tmp_path / "work" / "kernel" / "all"
    assert sorted(os.listdir(kernel_dir)) == [f"Kernel number{i}nom_2d.npy" for i in (1, 2)]
    folds = np.load(pub / N_FOLD_FILE)
    assert folds.shape == (2,) and folds.dtype.kind == "i"
    assert stage1_labels(kernel_dir, pub / N_FOLD_FILE) == {1: 1, 2: 1}
    assert sorted(int(f.split("number")[-1]) for f in maps) == [1, 2]  # stage 2's folders

    for e in index["kernels"]:
        key = f"Kernel number{e['number']}"
        ds = qpiset.read(pub / e["file"])
        ours = np.load(kernel_dir / f"{key}nom_2d.npy")
        k = (ds.kernel - ds.kernel.min()) / (ds.kernel.max() - ds.kernel.min())
        assert np.allclose(ours, k.T)  # their row-major reshape is [ix, iy]
        # within the placement window, their activation maps keep every scatterer
        assert [kept for _, kept in maps[key]] == [len(p) for p in ds.positions]
        assert ds.meta["placement"] == 200.0


def test_names_change_nothing_else_and_every_index_records_the_symmetry(tmp_path, run):
    res = run("generate-family", tmp_path / "a", "--kernels", 1, "--n", 1, "--naming",
              "published", "--format", ".npz", code=2)
    assert "published" in res.output and not (tmp_path / "a").exists()
    pub, plain = tmp_path / "pub", tmp_path / "plain"
    args = ["--kernels", 2, "--n", 3, "--seed", 4, "--resolution", 16, "--fov", 40,
            "--max-scatterers", 4, "--models", "friedel"]
    res = run("generate-family", pub, *args, "--naming", "published")
    assert "warning: the published dataset's scripts assume 64 px" in res.output
    run("generate-family", plain, *args)
    for i in (0, 1):  # the same data under the other name
        assert (pub / published_name(i)).read_bytes() \
            == (plain / f"kernel_{i:03d}.csv").read_bytes()
    published = json.loads((pub / "index.json").read_text())
    default = json.loads((plain / "index.json").read_text())
    assert not {"naming", "n_fold_file", "placement"} & set(default)
    assert set(default["kernels"][0]) == {"id", "file", "split", "seed", "kernel",
                                          "rotational_symmetry", "n_fold"}
    assert [k["rotational_symmetry"] for k in default["kernels"]] == ["isotropic"] * 2
    assert [k["n_fold"] for k in default["kernels"]] == [1, 1]
    assert not (plain / N_FOLD_FILE).exists()
    for a, b in zip(published["kernels"], default["kernels"]):
        assert {k: v for k, v in a.items() if k not in ("file", "number")} == \
            {k: v for k, v in b.items() if k != "file"}
    with pytest.raises(ValueError, match="naming"):
        generate_family(tmp_path / "c", 1, naming="matlab")


def test_n_fold_labels_follow_the_authors_classes():
    assert N_FOLDS == (1, 2, 3, 4, 6)
    assert [n_fold_label(s) for s in (float("inf"), "isotropic", 2, 3, 4, 6)] == [1, 1, 2, 3, 4, 6]
    assert [n_fold_label(s) for s in (1, 5, None)] == [0, 0, 0]  # no symmetry loss for these
    assert n_fold_label(12) == 6 and n_fold_label(8) == 4
    assert [symmetry_record(s) for s in (float("inf"), 3, None)] == ["isotropic", 3, None]


def test_lattice_and_superconductor_labels(tmp_path, run):
    out = tmp_path / "fam"
    # seed 2 draws a honeycomb lattice, a d-wave superconductor and a square lattice
    run("generate-family", out, "--kernels", 3, "--n", 1, "--seed", 2, "--models",
        "lattice,bdg", "--resolution", 16, "--fov", 40, "--max-scatterers", 4, "--naming",
        "published")
    index = json.loads((out / "index.json").read_text())
    kinds = [(e["kernel"]["model"], e["kernel"].get("structure")) for e in index["kernels"]]
    assert kinds == [("lattice", "honeycomb"), ("bdg", None), ("lattice", "square")]
    # a honeycomb site is C3 (not C6); the d-wave superconductor and the square lattice C4
    assert [e["rotational_symmetry"] for e in index["kernels"]] == [3, 4, 4]
    assert np.load(out / N_FOLD_FILE).tolist() == [3, 4, 4]
    # their stage-1 loader pairs each kernel file with its label (their constants set for
    # this family's 16 px and 4 slots)
    authors_preprocessing(out, tmp_path / "work", R=16, M=4)
    assert stage1_labels(tmp_path / "work" / "kernel" / "all", out / N_FOLD_FILE) \
        == {1: 3, 2: 4, 3: 4}
    for e in index["kernels"]:
        assert e["rotational_symmetry"] == symmetry_record(
            make_kernel(**e["kernel"]).rotational_symmetry)
