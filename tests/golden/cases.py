"""Golden outputs: what ``qpiset`` commands produced before the package was reorganised
(issue 12), kept so that any later change that alters a result is seen.

Each case is a list of command lines run in one scratch folder (the CLI is the public
contract, so the cases survive any reorganisation of the library), and the artifacts to
fingerprint afterwards. ``python tests/golden/record.py`` (re)writes ``golden.json``;
``tests/test_golden.py`` compares.
"""

from __future__ import annotations

SMALL = ["--resolution", "32", "--fov", "40", "--max-scatterers", "6"]
NOISES = {"white": "white:0.1", "snr": "snr:5", "pink": "pink:0.2:1.5", "one_over_f": "1/f:0.1",
          "lines": "lines:0.05:0.3", "blur": "blur:1.2", "setpoint": "setpoint:0.3",
          "bare": "0.2", "chain": "setpoint:0.2,blur:1,pink:0.1,lines:0.02:0.2,white:0.05"}

#: name -> (marks, commands, artifacts). Artifacts: ("rows", path) a row-format file and its
#: sidecar; ("npz", path); ("zarr", path); ("npy", path); ("json", path) a JSON file compared
#: as data; ("positions", path) a predictions file (positions to 1e-9 Å); ("bench", path)
#: benchmark metrics (times left out).
CASES: dict[str, tuple[tuple[str, ...], list[list[str]], list[tuple[str, str]]]] = {}


def case(name, marks, commands, artifacts):
    CASES[name] = (tuple(marks), commands, artifacts)


case("friedel_default_csv", (), [["generate", "d.csv", "--n", "40", "--seed", "7"]],
     [("rows", "d.csv")])
case("friedel_default_gz", ("slow",), [["generate", "d.csv.gz", "--n", "40", "--seed", "7"]],
     [("rows", "d.csv.gz")])
case("friedel_default_npz", (), [["generate", "d.npz", "--n", "40", "--seed", "7"]],
     [("npz", "d.npz")])
case("friedel_default_zarr", ("slow",), [["generate", "d.zarr", "--n", "300", "--seed", "7",
                                          "--max-scatterers", "20"]],
     [("zarr", "d.zarr")])
case("friedel_options", (), [["generate", "o.csv", "--n", "8", "--seed", "3", *SMALL,
                              "--strength", "0.5:1.5", "--min-scatterers", "0", "--layout",
                              "ragged", "--material", "none", "--mass", "0.5",
                              "--band-bottom", "-0.3", "--gamma", "0.01", "--tip-sigma", "1.5",
                              "--decay-length", "80", "--phase-shift", "0.7"]],
     [("rows", "o.csv")])
case("friedel_potential", (), [["generate", "p.csv", "--n", "4", "--seed", "5", *SMALL,
                                "--material", "Au(111)", "--energy", "0.1", "--potential", "2.5",
                                "--scatterer-radius", "1.2"]],
     [("rows", "p.csv")])
case("friedel_400", (), [["generate", "w.csv", "--n", "5", "--seed", "2", "--fov", "400",
                          "--max-scatterers", "20", "--material", "Ag(111)"]],
     [("rows", "w.csv")])
case("friedel_full", ("slow",), [["generate", "f.csv", "--n", "3", "--seed", "1",
                                  "--resolution", "32", "--fov", "50", "--max-scatterers", "8",
                                  "--scattering", "full"]],
     [("rows", "f.csv")])
for _name, _spec in NOISES.items():
    case(f"noise_{_name}", (), [["generate", "n.csv", "--n", "6", "--seed", "13", *SMALL,
                                 "--noise", _spec]], [("rows", "n.csv")])
# the lattice and bdg cases keep the site projection they were recorded with (issue 14 made
# the continuum LDOS the default; tests/physics/test_continuum.py holds that one)
SITE = ["--set", "projection=site"]
_SQUARE = ["--kernel", "lattice", "--set", "structure=square", "--set", "tp=-0.2", "--set",
           "mu=-1.0", "--set", "reach=60", "--energy", "0.1", *SITE]
case("lattice_square", ("slow",), [["generate", "l.csv", "--n", "4", "--seed", "6", *SMALL,
                                    *_SQUARE]], [("rows", "l.csv")])
case("lattice_square_full", ("slow",), [["generate", "l.npz", "--n", "3", "--seed", "6", *SMALL,
                                         *_SQUARE, "--scattering", "full"]],
     [("npz", "l.npz")])
case("lattice_honeycomb", ("slow",), [["generate", "h.csv", "--n", "3", "--seed", "8", *SMALL,
                                       "--kernel", "lattice", "--set", "structure=honeycomb",
                                       "--set", "reach=60", "--energy", "0.6", "--set",
                                       "eta=0.05", *SITE]], [("rows", "h.csv")])
_BDG = ["--kernel", "bdg", "--set", "reach=50", *SITE]
case("bdg_d", ("slow",), [["generate", "b.csv", "--n", "4", "--seed", "9", *SMALL, *_BDG]],
     [("rows", "b.csv")])
case("bdg_d_full", ("slow",), [["generate", "b.npz", "--n", "2", "--seed", "9", *SMALL, *_BDG,
                                "--scattering", "full"]], [("npz", "b.npz")])
case("bdg_s_magnetic", ("slow",), [["generate", "s.csv", "--n", "3", "--seed", "10", *SMALL,
                                    *_BDG, "--set", "pairing=s", "--set", "scatterer=magnetic",
                                    "--set", "t_prime=-0.03", "--energy", "0.01"]],
     [("rows", "s.csv")])
case("image_kernels", (), [
    ["generate", "src.csv", "--n", "2", "--seed", "1", *SMALL],
    ["generate", "i.csv", "--n", "3", "--seed", "4", *SMALL, "--kernel", "image",
     "--kernel-file", "src.csv"],
    ["convert", "src.csv", "src.npz"],
    ["generate", "j.csv", "--n", "3", "--seed", "4", *SMALL, "--kernel", "image",
     "--kernel-file", "src.npz"]],
     [("rows", "i.csv"), ("rows", "j.csv")])
case("family", ("slow",), [["generate-family", "fam", "--kernels", "3", "--n", "3", "--seed", "5",
                            "--resolution", "32", "--fov", "60", "--max-scatterers", "6"]],
     [("json", "fam/index.json"), ("rows", "fam/kernel_000.csv"), ("rows", "fam/kernel_001.csv"),
      ("rows", "fam/kernel_002.csv")])
_BASE = ["generate", "base.csv", "--n", "6", "--seed", "11", "--min-scatterers", "20",
         "--max-scatterers", "40", "--noise", "0.2"]
case("detect_classical", ("slow",), [
    _BASE,
    ["detect", "base.csv", "--method", "matched", "--out", "matched.json"],
    ["detect", "base.csv", "--method", "sparse", "--out", "sparse.json"],
    ["detect", "base.csv", "--method", "sparse", "--physics", "--limit", "2", "--out",
     "physics.json"]],
     [("positions", "matched.json"), ("positions", "sparse.json"),
      ("positions", "physics.json")])
case("detect_learned", ("slow", "torch"), [
    _BASE,
    ["detect", "base.csv", "--method", "unet", "--out", "unet.json"],
    ["detect", "base.csv", "--method", "hybrid", "--limit", "3", "--out", "hybrid.json"]],
     [("positions", "unet.json"), ("positions", "hybrid.json")])
case("bench", ("slow", "torch"), [
    _BASE,
    ["bench", "base.csv", "--methods", "matched,sparse,oracle,unet,hybrid", "--limit", "4",
     "--out", "bench.json"]],
     [("bench", "bench.json")])
case("kernels", ("slow", "torch"), [
    _BASE,
    ["kernel", "base.csv", "--method", "lsq", "--out", "lsq.npy", "--images", "4"],
    ["kernel", "base.csv", "--method", "vae", "--out", "vae.npy"],
    ["kernel", "base.csv", "--method", "direct", "--out", "direct.npy"]],
     [("npy", "lsq.npy"), ("npy", "vae.npy"), ("npy", "direct.npy")])
