"""Measured STM files: Nanonis ``.sxm`` scans and ``.3ds`` grids, Createc ``.dat`` scans,
Gwyddion ``.gwy`` files, read into a :class:`~qpiset.core.Measurement` (one channel).

The field's readers do the parsing where one is maintained (the extra ``stm``):
nanonispy2 for Nanonis files (an old ``.3ds`` header without ``Delay before measuring``,
``Start time``, ``End time`` or ``Comment`` is read by handing it those keys empty, the
reader's own override), gwyfile for Gwyddion. Createc ``.dat`` is read here: no maintained
Python package reads it (``createc`` on PyPI drives the microscope; ProbeFlow is an
application, not a library). Its layout: a text header of ``Label / key=value`` lines,
the marker ``DATA``, then one zlib stream of little-endian float32: one unused value, then
``Channels`` images of ``Num.Y x Num.X`` in raw DAC counts (forward and backward of each
scanned channel). RHK ``.sm4`` is refused: no maintained reader is published.

A scan that stopped early holds rows that were never measured (zeros in Createc files,
NaN in Nanonis ones): they are cropped, with a :class:`MeasurementWarning`.
"""

from __future__ import annotations

import os
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..core.errors import FormatError
from ..core.measurement import Measurement

__all__ = ["MEASURED_SUFFIXES", "MeasurementWarning", "read_measurement", "is_measurement"]

#: File suffixes read as measurements (lower case).
MEASURED_SUFFIXES = (".sxm", ".3ds", ".dat", ".gwy", ".sm4")

#: Optional keys of a Nanonis ``.3ds`` header that old files lack.
_OLD_3DS_KEYS = {"Delay before measuring (s)": "0", "Start time": "", "End time": "",
                 "Comment": ""}


class MeasurementWarning(UserWarning):
    """Something about a measured file the user should know (e.g. rows cropped)."""


def is_measurement(path) -> bool:
    """Whether ``path`` is a measured STM file: by its suffix, and for ``.dat`` (a common
    name for text tables, row-format datasets too) by a Createc header's first bytes."""
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    if suffix != ".dat":
        return suffix in MEASURED_SUFFIXES
    try:
        with open(path, "rb") as fh:
            return fh.read(16).lstrip().startswith(b"[Param")
    except OSError:
        return False


def read_measurement(path, channel: str | None = None) -> Measurement:
    """Read one channel of a measured STM file.

    Parameters
    ----------
    path : str or Path
        ``.sxm``, ``.3ds`` (Nanonis), ``.dat`` (Createc), ``.gwy`` (Gwyddion).
    channel : str, optional
        A name of ``Measurement.channels``; a name without a direction means its forward
        scan (``"Z"`` is ``"Z forward"``). Default: the first lock-in (dI/dV) channel,
        else the first channel.

    Raises
    ------
    FormatError
        The file is not one of these formats, is truncated or damaged.
    ValueError
        No such channel, or the extra ``stm`` is missing for the format.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "map.sm4")
    >>> open(path, "wb").close()
    >>> read_measurement(path)
    Traceback (most recent call last):
    ...
    qpiset.core.errors.FormatError: ...map.sm4: RHK .sm4 files: no maintained reader ...
    """
    path = os.fspath(path)
    suffix = Path(path).suffix.lower()
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    if suffix == ".sm4":
        raise FormatError(path, None, None, "RHK .sm4 files: no maintained reader is "
                          "published for Python; export the map from RHK's software (or "
                          "Gwyddion) as .gwy or .sxm")
    readers = {".sxm": _sxm, ".3ds": _grid_3ds, ".dat": _createc, ".gwy": _gwy}
    if suffix not in readers or not is_measurement(path):
        raise FormatError(path, None, None, f"not a measured STM file (suffixes: "
                          f"{', '.join(MEASURED_SUFFIXES)}; a .dat file is read as Createc's "
                          f"when it starts with its [Param...] header)")
    names, get, meta = readers[suffix](path)
    name = _choose(path, names, channel)
    data, units = get(name)
    measurement = Measurement(data=data, channel=name, units=units, channels=tuple(names),
                              path=path, **meta)
    return _crop_unmeasured(measurement)


# -- channels ---------------------------------------------------------------------------
def _choose(path: str, names: list[str], channel: str | None) -> str:
    if not names:
        raise FormatError(path, None, None, "the file holds no channel")
    if channel is None:
        lockin = [n for n in names if _is_lockin(n)]
        return (lockin or names)[0]
    for candidate in (channel, f"{channel} forward"):
        for n in names:
            if n.lower() == candidate.lower():
                return n
    raise ValueError(f"{path}: no channel {channel!r}; channels: {', '.join(names)}")


def _is_lockin(name: str) -> bool:
    low = name.lower()
    return (low.startswith(("lix", "liy", "li demod")) or "lockin" in low
            or "lock-in" in low or "di/dv" in low or "didv" in low)


def _stm_extra(module: str, suffix: str):
    try:
        return __import__(module)
    except ImportError:
        raise ValueError(f"reading {suffix} files needs the extra 'stm' "
                         f"(pip install 'qpiset[stm]': {module})") from None


def _damaged(path: str, what: str, exc: Exception) -> FormatError:
    return FormatError(path, None, None, f"not a readable {what} file ({type(exc).__name__}: "
                       f"{exc})")


# -- Nanonis ----------------------------------------------------------------------------
def _sxm(path: str):
    nap = _stm_extra("nanonispy2", ".sxm")
    try:
        scan = nap.read.Scan(path)
        header = scan.header
        nx, ny = (int(v) for v in header["scan_pixels"])
        lx, ly = (float(v) * 1e10 for v in header["scan_range"])  # m -> Å
        info = header.get("data_info", {})
        units = dict(zip(info.get("Name", ()), info.get("Unit", ())))
        signals = scan.signals
    except Exception as exc:  # the reader raises what it meets: malformed is malformed
        raise _damaged(path, "Nanonis .sxm", exc) from None
    names = [f"{sig} {d}" for sig, dirs in signals.items() for d in ("forward", "backward")
             if d in dirs]

    def get(name):
        sig, direction = name.rsplit(" ", 1)
        return np.asarray(signals[sig][direction], dtype=np.float64), units.get(sig, "")

    bias = header.get("bias")
    meta = {"x": np.arange(nx) * lx / nx, "y": np.arange(ny) * ly / ny,
            "bias": None if bias is None else float(bias),
            "angle": float(header.get("scan_angle", 0.0) or 0.0), "header": header}
    return names, get, meta


def _grid_3ds(path: str):
    nap = _stm_extra("nanonispy2", ".3ds")
    present = _3ds_header_keys(path)
    override = {k: v for k, v in _OLD_3DS_KEYS.items() if k not in present}
    try:
        grid = nap.read.Grid(path, header_override=override or None)
        header = grid.header
        nx, ny = (int(v) for v in header["dim_px"])
        lx, ly = (float(v) * 1e10 for v in header["size_xy"])
        sweep = np.asarray(grid.signals["sweep_signal"], dtype=np.float64)
        channels = list(header["channels"])
        signals = grid.signals
    except Exception as exc:
        raise _damaged(path, "Nanonis .3ds", exc) from None
    if "bias" not in str(header.get("sweep_signal", "")).lower():
        raise FormatError(path, None, None, f"a grid swept in {header.get('sweep_signal')!r}, "
                          f"not the bias: no energy axis")

    def get(name):
        cube = np.asarray(signals[name], dtype=np.float64)  # (ny, nx, n)
        unit = name[name.rfind("(") + 1:-1] if name.endswith(")") else ""
        return np.moveaxis(cube, -1, 0), unit

    meta = {"x": np.arange(nx) * lx / nx, "y": np.arange(ny) * ly / ny, "energies": sweep,
            "angle": float(header.get("angle", 0.0)), "header": header}
    return channels, get, meta


def _3ds_header_keys(path: str) -> set[str]:
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    end = head.find(b":HEADER_END:")
    if end < 0:
        raise FormatError(path, None, None, "no :HEADER_END: in the first 64 kB: not a "
                          "Nanonis .3ds grid")
    lines = head[:end].decode("latin-1").splitlines()
    return {line.split("=", 1)[0] for line in lines if "=" in line}


# -- Createc ----------------------------------------------------------------------------
def _createc(path: str):
    raw = Path(path).read_bytes()
    at = raw.find(b"DATA")
    if at < 0:
        raise FormatError(path, None, None, "no DATA marker: not a Createc .dat scan")
    header: dict[str, str] = {}
    for line in raw[:at].decode("latin-1").splitlines():
        if "=" not in line:
            continue
        key, value = line.split("=", 1)
        header[key.rsplit("/", 1)[-1].strip()] = value.strip()

    def number(key: str, kind=float):
        try:
            return kind(float(header[key]))
        except (KeyError, ValueError):
            raise FormatError(path, None, None, f"header: {key!r} missing or not a number") \
                from None

    nx, ny, nch = number("Num.X", int), number("Num.Y", int), number("Channels", int)
    lx, ly = number("Length x[A]"), number("Length y[A]")
    if min(nx, ny, nch) <= 0 or min(lx, ly) <= 0:
        raise FormatError(path, None, None, f"header: {nx} x {ny} px, {nch} channels, "
                          f"{lx} x {ly} Å: nothing to read")
    stream = zlib.decompressobj()
    try:
        buf = stream.decompress(raw[at + 4:])
    except zlib.error as exc:
        raise FormatError(path, None, None, f"the compressed data are damaged ({exc})") \
            from None
    if not stream.eof:
        raise FormatError(path, None, None, "truncated: the compressed data end early")
    values = np.frombuffer(buf[: len(buf) // 4 * 4], dtype="<f4")
    need = 1 + nch * ny * nx
    if values.size < need:
        raise FormatError(path, None, None, f"truncated: {values.size - 1} values for "
                          f"{nch} channels of {ny} x {nx}")
    images = values[1:need].reshape(nch, ny, nx)
    names = _createc_names(nch)

    def get(name):
        return images[names.index(name)].astype(np.float64), "DAC"

    bias = header.get("BiasVolt.[mV]")
    try:
        bias = float(bias) / 1000.0 if bias is not None else None
    except ValueError:
        bias = None
    meta = {"x": np.arange(nx) * lx / nx, "y": np.arange(ny) * ly / ny, "bias": bias,
            "angle": _float_or(header.get("Rotation"), 0.0), "header": header}
    return names, get, meta


def _createc_names(nch: int) -> list[str]:
    """Forward then backward of each scanned channel: Z and the current first (what the
    files beside the tests hold), any further ones by number."""
    per = nch // 2 if nch % 2 == 0 else nch
    base = (["Z", "Current"] + [f"channel {i + 1}" for i in range(2, per)])[:per]
    if per == nch:
        return base
    return [f"{b} forward" for b in base] + [f"{b} backward" for b in base]


def _float_or(text, default: float) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return default


# -- Gwyddion ---------------------------------------------------------------------------
def _gwy(path: str):
    gwyfile = _stm_extra("gwyfile", ".gwy")
    try:
        obj = gwyfile.load(path)
        fields = gwyfile.util.get_datafields(obj)
    except Exception as exc:
        raise _damaged(path, "Gwyddion .gwy", exc) from None
    names = list(fields)
    if not names:
        raise FormatError(path, None, None, "the file holds no channel")

    def get(name):
        f = fields[name]
        unit = f.get("si_unit_z")
        return np.asarray(f.data, dtype=np.float64), getattr(unit, "unitstr", "") or ""

    first = fields[names[0]]
    ny, nx = np.shape(first.data)
    lx, ly = float(first["xreal"]) * 1e10, float(first["yreal"]) * 1e10
    meta = {"x": np.arange(nx) * lx / nx, "y": np.arange(ny) * ly / ny, "header": {}}
    return names, get, meta


# -- scans that stopped early -----------------------------------------------------------
def _crop_unmeasured(m: Measurement) -> Measurement:
    """Keep the rows that were measured: a row that is all NaN or all exactly zero in a
    scan (every value, every energy) was never recorded."""
    data = m.data if m.is_grid else m.data[None]
    measured = np.any(np.isfinite(data) & (data != 0), axis=(0, 2))
    if measured.all():
        return m
    if not measured.any():
        raise FormatError(m.path, None, None, f"channel {m.channel!r} holds no measured row")
    rows = np.flatnonzero(measured)
    first, stop = int(rows[0]), int(rows[-1]) + 1
    warnings.warn(f"{m.path}: the scan holds {stop - first} measured rows of "
                  f"{len(measured)} (rows {first}-{stop - 1}); the rest are cropped",
                  MeasurementWarning, stacklevel=3)
    m.data = m.data[..., first:stop, :]
    m.y = m.y[first:stop]
    m.cropped = (first, stop)
    return m
