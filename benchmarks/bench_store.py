"""Chunked store: images/s writing a .zarr store with 1 and 2 dask workers, against the
row format, with the peak memory (RSS) of every process involved.

Workload: the seed dataset's conventions (64 px, 100 Å, up to 100 scatterers, Cu(111)),
`qpiset generate OUT --n N --seed 0` run as a separate process for each case:

- ``zarr, 1 worker``: blocks made and written in the one process;
- ``zarr, 2 workers``: a local dask cluster of 2 single-threaded worker processes;
- ``row format``: the text file, rendering on all cores, streamed by one writer.

Scaling efficiency = (images/s with 2 workers) / (2 x images/s with 1 worker).

    .venv/bin/python benchmarks/bench_store.py [--n 100000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, publish, table  # noqa: E402

EXE = os.path.join(os.path.dirname(sys.executable), "qpiset")


def run(out: Path, n: int, extra: list[str]) -> dict:
    """Run one generation; wall time and the peak RSS of the process tree (psutil)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen([EXE, "generate", str(out), "--n", str(n), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parent = psutil.Process(proc.pid)
    peak_total = peak_single = 0
    while proc.poll() is None:
        try:
            procs = [parent, *parent.children(recursive=True)]
            rss = [p.memory_info().rss for p in procs]
            peak_total, peak_single = max(peak_total, sum(rss)), max(peak_single, max(rss))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr.read().decode())
    size = sum(f.stat().st_size for f in out.rglob("*")) if out.is_dir() else out.stat().st_size
    return {"seconds": seconds, "images_per_s": n / seconds, "peak_rss_mb": peak_total / 2**20,
            "peak_rss_one_process_mb": peak_single / 2**20, "bytes": size}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workdir", default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(dir=args.workdir))
    cases = {}
    try:
        cases["zarr, 1 worker"] = run(work / "w1.zarr", args.n, ["--workers", "1"])
        cases["zarr, 2 workers"] = run(work / "w2.zarr", args.n, ["--workers", "2"])
        cases["row format (.csv)"] = run(work / "rows.csv", args.n, [])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one, two = cases["zarr, 1 worker"], cases["zarr, 2 workers"]
    efficiency = two["images_per_s"] / (2 * one["images_per_s"])
    rows = [[name, f"{c['seconds']:.1f}", f"{c['images_per_s']:,.0f}", f"{c['bytes'] / 1e9:.2f}",
             f"{c['peak_rss_mb']:.0f}", f"{c['peak_rss_one_process_mb']:.0f}"]
            for name, c in cases.items()]
    text = table(rows, ["case", "s", "images/s", "GB on disk", "peak RSS, all (MB)",
                        "largest process (MB)"])
    text += f"\nscaling efficiency, 2 workers vs 1: {efficiency:.2f}"
    record = {"machine": machine(), "n": args.n, "cases": cases,
              "scaling_efficiency": efficiency,
              "aims": {"bounded_memory": {
                  "value": max(c["peak_rss_one_process_mb"] for c in cases.values()),
                  "aim": "< 1024 MB per process for any n", "met": all(
                      c["peak_rss_one_process_mb"] < 1024 for c in cases.values())}}}
    publish("store.json", record, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
