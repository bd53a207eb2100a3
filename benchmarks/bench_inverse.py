"""Detection benchmark: `qpiset bench` on generated datasets at several noise levels.

For each noise level (fraction of each clean image's std) this generates the seed
dataset's conventions (64 px, 100 Å, counts uniform in 1..100, Cu(111) at E_F) with a
fixed seed, then runs `qpiset bench PATH --methods matched,sparse,oracle` — the detectors
get only the file (images + kernel row); "oracle" is the reference fit started at the true
positions — and collects the Markdown tables. A second dataset per noise level has exactly
100 scatterers in every image (`--n100` images): the time per 100-scatterer image, and the
scores at 100.

    .venv/bin/python benchmarks/bench_inverse.py [--n 60] [--n100 20] [--noise 0,0.1,0.3,1.0]
        [--methods matched,sparse,hybrid,oracle] [--workers 2] [--calibrate]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXE = os.path.join(os.path.dirname(sys.executable), "qpiset")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="images per noise level")
    ap.add_argument("--noise", default="0,0.1,0.3,1.0")
    ap.add_argument("--n100", type=int, default=20, help="100-scatterer images per noise level")
    ap.add_argument("--methods", default="matched,sparse,oracle")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--out", default=str(HERE / "results" / "inverse"))
    ap.add_argument("--calibrate", action="store_true",
                    help="let bench self-calibrate the row's kernel (default: the row as it "
                         "is; on the 1 Å-tip kernel calibration changes nothing but time)")
    ap.add_argument("--workers", type=int, default=1, help="processes fitting images")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    with tempfile.TemporaryDirectory() as tmp:
        for noise in [float(v) for v in args.noise.split(",")]:
            for tag, n, extra in (("", args.n, []),
                                  ("_100", args.n100, ["--min-scatterers", "100"])):
                if n <= 0:
                    continue
                data = Path(tmp) / f"noise{noise:g}{tag}.csv"
                subprocess.run([EXE, "generate", str(data), "--n", str(n), "--seed",
                                str(args.seed), "--noise", str(noise), *extra], check=True)
                t0 = time.perf_counter()
                res = out / f"noise{noise:g}{tag}.json"
                subprocess.run([EXE, "bench", str(data), "--methods", args.methods, "--out",
                                str(res), "--workers", str(args.workers),
                                "--calibrate" if args.calibrate else "--no-calibrate"],
                               check=True)
                elapsed = time.perf_counter() - t0
                record = json.loads(res.read_text())
                for m in record["methods"].values():
                    for r in m["images"]:
                        r.pop("positions", None)  # keep the stored record small
                res.write_text(json.dumps(record, indent=1))
                summary[f"{noise:g}{tag}"] = {name: m["bands"] | {"all": m["overall"]}
                                              for name, m in record["methods"].items()}
                print(f"noise {noise:g}{tag}: bench took {elapsed:.0f} s", flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
