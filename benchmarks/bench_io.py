"""Row-format I/O speed: ``qpiset.read`` / ``qpiset.write`` against numpy and pandas.

Workload: ``simulate(FriedelKernel(), Grid(64, 100.0), n=1000, seed=0)`` written as the
padded row format (``.csv``, about 85 MB: 1003 lines of 4296 numbers) in a temporary
directory, by default on the RAM file system ``/dev/shm`` when it exists (so disk
write-back and fsync latency do not add noise: what is compared is the formatting and
parsing work; ``--workdir`` puts the files elsewhere). Every operation is run once
untimed, then timed as the best of ``--repeats`` runs (default 3).

Readers (whole table into memory):
  ours      ``qpiset.read(path)`` -> Dataset (parse, validate, reshape to images)
  loadtxt   ``numpy.loadtxt(path, delimiter=",")`` (the padded file is rectangular)
  pandas    ``pandas.read_csv(path, header=None).to_numpy()``
Writers (the same (N + 3, 4296) float64 table):
  ours      ``qpiset.write(path, ds)`` from the Dataset (packs the table, shortest
            round-trip text, temporary file + fsync + rename, JSON sidecar)
  savetxt   ``numpy.savetxt(path, table, fmt="%.17g", delimiter=",")`` (round-trip exact)
  savetxt default fmt ``"%.18e"`` (also exact, longer text)
  pandas    ``DataFrame(table).to_csv(path, header=False, index=False)``
For information: ``.csv.gz`` and ``.npz`` through ``qpiset.read``/``qpiset.write``.

Bit-exactness: our round trip must give ``images``, ``kernel``, positions and x
coordinates equal to the originals bit for bit, and every baseline parser must read our
file as exactly the expected table; each baseline writer's output is read back and
compared too.

Run: ``python benchmarks/bench_io.py [--n 1000] [--repeats 3]``.
Writes ``benchmarks/results/io.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of, machine, publish, table  # noqa: E402

READ_AIM = 3.0  # aim: reading >= 3x numpy.loadtxt
WRITE_AIM = 5.0  # aim: writing >= 5x numpy.savetxt


def expected_table(ds) -> np.ndarray:
    """The padded row-format table built from the Dataset, independently of qpiset.io."""
    r = ds.grid.resolution
    m = ds.max_scatterers
    width = r * r + 2 * m
    out = np.zeros((ds.n_images + 3, width))
    out[0, :2] = (r, m)
    out[1, :r] = ds.grid.x
    out[2, : r * r] = ds.kernel.T.ravel()  # column-major pixels: flat index iy + R ix
    out[2, r * r:] = 1000.0
    out[2, r * r: r * r + 2] = 0.0
    out[3:, : r * r] = ds.images.transpose(0, 2, 1).reshape(ds.n_images, r * r)
    out[3:, r * r:] = 1000.0
    for i, p in enumerate(ds.positions):
        out[3 + i, r * r: r * r + 2 * len(p)] = p.ravel()
    return out


def same_dataset(a, b) -> dict:
    """Bit-for-bit comparison of what the row format stores."""
    pos = len(a.positions) == len(b.positions) and all(
        p.shape == q.shape and np.array_equal(p, q) for p, q in zip(a.positions, b.positions))
    checks = {
        "images": a.images.shape == b.images.shape and np.array_equal(a.images, b.images),
        "kernel": np.array_equal(a.kernel, b.kernel),
        "positions": pos,
        "x": np.array_equal(a.grid.x, b.grid.x),
    }
    checks["all"] = all(checks.values())
    return checks


def run(n: int = 1000, repeats: int = 3, seed: int = 0, workdir: str | None = None,
        log=print) -> dict:
    import pandas as pd

    import qpiset
    from qpiset.core import Grid
    from qpiset.forward import simulate
    from qpiset.physics import FriedelKernel

    t0 = time.perf_counter()
    ds = simulate(FriedelKernel(), Grid(64, 100.0), n=n, seed=seed)
    sim_seconds = time.perf_counter() - t0
    expected = expected_table(ds)
    log(f"io: simulated {n} images in {sim_seconds:.2f} s; table {expected.shape}")

    results: dict = {"read": {}, "write": {}, "exact": {}, "sizes_mb": {}}
    if workdir is None and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        workdir = "/dev/shm"
    on_ram = workdir == "/dev/shm"

    def timed(fn):
        return best_of(fn, repeats, warmup=1)

    with tempfile.TemporaryDirectory(dir=workdir, prefix="qpiset-bench-") as tmp:
        csv = os.path.join(tmp, "data.csv")

        # -- writers -----------------------------------------------------------------
        sec, _ = timed(lambda: qpiset.write(csv, ds))
        results["write"]["ours"] = sec
        results["sizes_mb"]["ours"] = os.path.getsize(csv) / 1e6
        log(f"io: qpiset.write {sec:.3f} s ({results['sizes_mb']['ours']:.1f} MB)")

        if not on_ram:
            # diagnostic only: the same call with os.fsync made a no-op, to show how much
            # of our write time is the durability flush that the baseline writers skip
            real_fsync = os.fsync
            os.fsync = lambda fd: None
            try:
                sec, _ = timed(lambda: qpiset.write(csv, ds))
            finally:
                os.fsync = real_fsync
            results["write"]["ours_no_fsync"] = sec
            log(f"io: qpiset.write without fsync (diagnostic) {sec:.3f} s")

        frame = pd.DataFrame(expected)
        writers = {
            "savetxt_17g": lambda p: np.savetxt(p, expected, fmt="%.17g", delimiter=","),
            "savetxt_default": lambda p: np.savetxt(p, expected, delimiter=","),
            "pandas": lambda p: frame.to_csv(p, header=False, index=False),
        }
        for name, fn in writers.items():
            out = os.path.join(tmp, f"{name}.csv")
            sec, _ = timed(lambda: fn(out))
            results["write"][name] = sec
            results["sizes_mb"][name] = os.path.getsize(out) / 1e6
            back = pd.read_csv(out, header=None).to_numpy()
            results["exact"][f"{name}_write_roundtrip"] = bool(np.array_equal(back, expected))
            os.unlink(out)
            log(f"io: {name} write {sec:.3f} s ({results['sizes_mb'][name]:.1f} MB)")

        # -- readers -----------------------------------------------------------------
        sec, back = timed(lambda: qpiset.read(csv))
        results["read"]["ours"] = sec
        results["exact"]["ours_roundtrip"] = same_dataset(ds, back)
        log(f"io: qpiset.read {sec:.3f} s; bit-exact round trip: "
            f"{results['exact']['ours_roundtrip']['all']}")
        del back

        readers = {
            "loadtxt": lambda: np.loadtxt(csv, delimiter=","),
            "pandas": lambda: pd.read_csv(csv, header=None).to_numpy(),
        }
        for name, fn in readers.items():
            sec, values = timed(fn)
            results["read"][name] = sec
            results["exact"][f"{name}_reads_our_file"] = bool(np.array_equal(values, expected))
            log(f"io: {name} read {sec:.3f} s")
            del values

        # -- other formats, for information ------------------------------------------
        for suffix in (".csv.gz", ".npz"):
            path = os.path.join(tmp, "data" + suffix)
            sec_w, _ = timed(lambda: qpiset.write(path, ds))
            sec_r, back = timed(lambda: qpiset.read(path))
            key = suffix.lstrip(".").replace(".", "_")
            results["write"][f"ours_{key}"] = sec_w
            results["read"][f"ours_{key}"] = sec_r
            results["sizes_mb"][f"ours_{key}"] = os.path.getsize(path) / 1e6
            results["exact"][f"ours_{key}_roundtrip"] = same_dataset(ds, back)["all"]
            log(f"io: {suffix} write {sec_w:.3f} s, read {sec_r:.3f} s "
                f"({results['sizes_mb'][f'ours_{key}']:.1f} MB)")
            del back

    rd, wr = results["read"], results["write"]
    ratios = {
        "read_vs_loadtxt": rd["loadtxt"] / rd["ours"],
        "read_vs_pandas": rd["pandas"] / rd["ours"],
        "write_vs_savetxt_17g": wr["savetxt_17g"] / wr["ours"],
        "write_vs_savetxt_default": wr["savetxt_default"] / wr["ours"],
        "write_vs_pandas": wr["pandas"] / wr["ours"],
    }
    if "ours_no_fsync" in wr:
        ratios["write_no_fsync_vs_savetxt_17g"] = wr["savetxt_17g"] / wr["ours_no_fsync"]
    exact_ok = results["exact"]["ours_roundtrip"]["all"] and all(
        results["exact"][k] for k in ("loadtxt_reads_our_file", "pandas_reads_our_file"))
    aims = {
        "read_vs_loadtxt": {"ratio": ratios["read_vs_loadtxt"], "aim": READ_AIM,
                            "met": ratios["read_vs_loadtxt"] >= READ_AIM},
        "write_vs_savetxt_17g": {"ratio": ratios["write_vs_savetxt_17g"], "aim": WRITE_AIM,
                                 "met": ratios["write_vs_savetxt_17g"] >= WRITE_AIM},
        "bit_exact": {"value": exact_ok, "aim": True, "met": bool(exact_ok)},
    }
    return {
        "benchmark": "io",
        "machine": machine(),
        "config": {"n_images": n, "resolution": 64, "fov": 100.0, "max_scatterers": 100,
                   "seed": seed, "repeats": repeats, "warmup": 1,
                   "table_shape": list(expected.shape),
                   "workdir": workdir or tempfile.gettempdir()},
        "simulate_seconds": sim_seconds,
        "read_seconds": results["read"],
        "write_seconds": results["write"],
        "sizes_mb": results["sizes_mb"],
        "exact": results["exact"],
        "ratios": ratios,
        "aims": aims,
    }


def report(record: dict) -> str:
    rd, wr, mb = record["read_seconds"], record["write_seconds"], record["sizes_mb"]
    names = {"ours": "qpiset (.csv)", "loadtxt": "numpy.loadtxt", "pandas": "pandas",
             "savetxt_17g": 'numpy.savetxt fmt="%.17g"', "savetxt_default": "numpy.savetxt default fmt",
             "ours_csv_gz": "qpiset (.csv.gz)", "ours_npz": "qpiset (.npz)"}
    rows = []
    for key in ("ours", "loadtxt", "pandas", "ours_csv_gz", "ours_npz"):
        ratio = rd[key] / rd["ours"]
        rows.append(["read", names[key], f"{rd[key]:.3f}",
                     "-" if key.startswith("ours") else f"{ratio:.2f}x", ""])
    names["ours_no_fsync"] = "qpiset (.csv), fsync disabled [diagnostic]"
    for key in ("ours", "ours_no_fsync", "savetxt_17g", "savetxt_default", "pandas",
                "ours_csv_gz", "ours_npz"):
        if key not in wr:
            continue
        ratio = wr[key] / wr["ours"]
        size = mb.get(key, mb["ours"])
        rows.append(["write", names[key], f"{wr[key]:.3f}",
                     "-" if key.startswith("ours") else f"{ratio:.2f}x", f"{size:.1f}"])
    out = [table(rows, ["op", "method", "best s", "ours is faster by", "MB"])]
    ex = record["exact"]
    out.append(f"bit-exact round trip (qpiset .csv): {ex['ours_roundtrip']}")
    out.append("baseline parsers read our file exactly: "
               f"loadtxt {ex['loadtxt_reads_our_file']}, pandas {ex['pandas_reads_our_file']}; "
               f".csv.gz {ex['ours_csv_gz_roundtrip']}, .npz {ex['ours_npz_roundtrip']}")
    out.append("baseline writers' files read back exactly: " + ", ".join(
        f"{k.replace('_write_roundtrip', '')} {v}" for k, v in ex.items()
        if k.endswith("_write_roundtrip")))
    if "write_no_fsync_vs_savetxt_17g" in record["ratios"]:
        out.append(f"write without fsync vs savetxt %.17g: "
                   f"{record['ratios']['write_no_fsync_vs_savetxt_17g']:.2f}x (diagnostic)")
    out.append(f"files in {record['config']['workdir']}")
    for name, a in record["aims"].items():
        v = a.get("ratio", a.get("value"))
        shown = f"{v:.3g}" if isinstance(v, float) else str(v)
        out.append(f"aim {name}: {shown} vs {a['aim']} -> {'met' if a['met'] else 'MISSED'}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="images in the dataset")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="where to put the temporary files")
    ap.add_argument("--out", type=Path, default=None, help="directory for io.json")
    args = ap.parse_args(argv)
    record = run(args.n, args.repeats, args.seed, args.workdir)
    return publish("io.json", record, report(record), args.out)


if __name__ == "__main__":
    main()
