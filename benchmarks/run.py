"""Run all qpiset speed benchmarks and print a summary (``make bench``).

Each benchmark runs in its own fresh interpreter (so one cannot disturb the other's
timings), prints its own table and writes ``benchmarks/results/<name>.json``; speed is
always a ratio against a baseline measured in the same run. Takes about two minutes on
a 2-core machine.

    python benchmarks/run.py                # everything
    python benchmarks/run.py generate       # one of: generate, io, physics, store
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RESULTS, machine  # noqa: E402

BENCHMARKS = {"generate": "bench_generate.py", "io": "bench_io.py",
              "physics": "bench_physics.py", "store": "bench_store.py"}


def summary(records: dict) -> str:
    lines = []
    g = records.get("generate")
    if g:
        ours = {int(t): v["images_per_s"] for t, v in g["ours"].items()}
        b = {k: v["images_per_s"] for k, v in g["baselines"].items()}
        for t, speed in sorted(ours.items()):
            lines.append(f"generate, threads={t}: {speed:,.0f} images/s = "
                         f"{speed / b['j0y0']:,.1f}x j0/y0, {speed / b['hankel1']:,.1f}x hankel1, "
                         f"{speed / b['cap']:.2f}x cap")
        lines.append(f"generate accuracy: max error {g['accuracy']['max_rel_error']:.2e} of peak")
    r = records.get("io")
    if r:
        q = r["ratios"]
        lines.append(f"read:  {r['read_seconds']['ours']:.3f} s = {q['read_vs_loadtxt']:.2f}x "
                     f"numpy.loadtxt, {q['read_vs_pandas']:.2f}x pandas")
        lines.append(f"write: {r['write_seconds']['ours']:.3f} s = {q['write_vs_savetxt_17g']:.2f}x "
                     f"numpy.savetxt(%.17g), {q['write_vs_pandas']:.2f}x pandas")
        lines.append(f"row format bit-exact: {r['aims']['bit_exact']['met']}")
    lines.append("aims:")
    for name, rec in records.items():
        for aim, a in rec["aims"].items():
            v = a.get("ratio", a.get("value"))
            shown = f"{v:.3g}" if isinstance(v, float) else str(v)
            lines.append(f"  {name}.{aim}: {shown} (aim {a['aim']}) "
                         f"{'met' if a['met'] else 'MISSED'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    m = machine()
    print(f"qpiset benchmarks on {m['cpu']} ({m['cores']} cores), {m['date']}")
    load = m.get("load_average_1min")
    if load is not None and load > 0.5:
        print(f"note: 1-minute load average is {load:.2f}: other work is running, so the "
              "timings (multi-thread ones first) will be low and noisy")
    records = {}
    failed = []
    t0 = time.perf_counter()
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        done = subprocess.run([sys.executable, str(HERE / BENCHMARKS[name])])
        if done.returncode:
            failed.append(name)
            continue
        records[name] = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    print(f"\n=== summary ({time.perf_counter() - t0:.0f} s) ===")
    print(summary(records))
    if failed:
        raise SystemExit(f"benchmark(s) failed: {', '.join(failed)}")
    return records


if __name__ == "__main__":
    main()
