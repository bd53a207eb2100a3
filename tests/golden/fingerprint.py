"""Fingerprints of command outputs for the golden test: exact hashes of every array and
file, and a few statistics to compare with a tolerance where the hashes cannot be expected
to agree (another CPU family: numpy's and numba's vector code round differently)."""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import numpy as np

#: Kernel parameters that were renamed (old name -> new name); recorded metadata is
#: compared under the new names.
RENAMED = {"tp": "t_prime", "gamma": "eta"}


def environment() -> dict:
    """What decides whether hashes can agree: library versions and the CPU's vector units."""
    import numba
    import scipy

    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features
    return {"machine": platform.machine(), "numpy": np.__version__, "scipy": scipy.__version__,
            "numba": numba.__version__,
            "cpu": sorted(k for k, v in features.items() if v)}


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stats(a) -> list[float]:
    a = np.asarray(a, np.float64).ravel()
    if a.size == 0:
        return [0.0, 0.0, 0.0]
    finite = a[np.isfinite(a)]
    return [float(finite.sum()), float(np.square(finite).sum()), float(np.abs(finite).max())]


def _array(a) -> dict:
    a = np.ascontiguousarray(a)
    return {"sha256": _hash(a.tobytes()), "dtype": str(a.dtype), "shape": list(a.shape),
            "stats": _stats(a) if np.issubdtype(a.dtype, np.number) else None}


def canonical_meta(meta):
    """Metadata with renamed kernel parameters under their new names (recursively)."""
    if isinstance(meta, dict):
        return {RENAMED.get(k, k): canonical_meta(v) for k, v in meta.items()
                if k != "generator"}
    if isinstance(meta, list):
        return [canonical_meta(v) for v in meta]
    return meta


def fingerprint(kind: str, path: Path):
    """The record of one artifact."""
    if kind == "rows":
        import qpiset

        side = path.with_name(path.name + ".json")
        meta = json.loads(side.read_text())["meta"] if side.exists() else None
        ds = qpiset.read(path)
        return {"bytes": _hash(path.read_bytes()), "images": _array(ds.images),
                "kernel": _array(ds.kernel), "meta": canonical_meta(meta)}
    if kind == "npz":
        with np.load(path) as z:
            out = {k: _array(z[k]) for k in sorted(z.files) if k != "meta"}
            out["meta"] = canonical_meta(json.loads(str(z["meta"])))
        return out
    if kind == "zarr":
        import zarr

        g = zarr.open_group(str(path), mode="r")
        out = {k: _array(np.asarray(g[k][...])) for k in sorted(g.array_keys())}
        out["meta"] = canonical_meta(dict(g.attrs)["meta"])
        return out
    if kind == "npy":
        return _array(np.load(path))
    if kind == "json":
        return canonical_meta(json.loads(path.read_text()))
    if kind == "positions":
        rec = json.loads(path.read_text())
        return {"method": rec["method"], "positions": rec["positions"],
                "confidence": rec.get("confidence")}
    if kind == "bench":
        rec = json.loads(path.read_text())
        out = {}
        for name, res in rec["methods"].items():
            drop = ("seconds_median", "seconds_mean")
            out[name] = {
                "overall": {k: v for k, v in res["overall"].items() if k not in drop},
                "bands": {b: {k: v for k, v in s.items() if k not in drop}
                          for b, s in res["bands"].items()},
                "positions": [r["positions"] for r in res["images"]],
                "uses_truth": res.get("uses_truth"), "learned": res.get("learned")}
        return out
    raise ValueError(kind)
