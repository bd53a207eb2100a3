"""Small helpers shared by the benchmark scripts (timing, machine record, JSON output)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).resolve().parent / "results"


def best_of(fn: Callable[[], Any], repeats: int = 3, warmup: int = 0) -> tuple[float, Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; return
    (shortest wall time in s, last result)."""
    best = float("inf")
    result = None
    for _ in range(warmup):
        result = fn()
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers were measured on."""
    versions = {}
    for name in ("qpiset", "numpy", "scipy", "numba", "polars", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info = {
        "date": _dt.date.today().isoformat(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        # other work on the machine distorts timings (multi-thread ones first)
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import numba

        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
        info["numba_threading_layer"] = _threading_layer()
    except ImportError:
        pass
    return info


def _threading_layer() -> str | None:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel function has run yet
        return None


def write_json(name: str, record: dict, out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir) if out_dir else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain fixed-width text table."""
    cols = [header] + rows
    widths = [max(len(str(r[i])) for r in cols) for i in range(len(header))]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def publish(name: str, record: dict, report_text: str, out_dir: Path | None = None) -> dict:
    """Print a benchmark's report, write its JSON record, and return the record."""
    print()
    print(report_text)
    path = write_json(name, record, out_dir)
    print(f"wrote {path}")
    return record
