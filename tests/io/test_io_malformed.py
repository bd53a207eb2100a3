"""Every malformed case is rejected with PATH:LINE[:COLUMN] (and exit 1 from the CLI)."""

import gzip

import numpy as np
import pytest
from click.testing import CliRunner

from qpiset.cli import cli
from qpiset.core import Dataset, Grid
from qpiset.io import FormatError, read, validate, write

R, M = 4, 3
W = R * R + 2 * M  # 22 fields per data row


@pytest.fixture()
def good_lines(tmp_path):
    rng = np.random.default_rng(0)
    ds = Dataset(Grid(R, 6.0), rng.normal(size=(R, R)), rng.normal(size=(4, R, R)),
                 [np.array([[1.0, 2.0]]), np.zeros((0, 2)), np.array([[-1.0, 0.5], [2.0, 2.0]]),
                  np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])], M)
    path = tmp_path / "good.csv"
    write(path, ds)
    return path.read_text().splitlines()


def _edit(lines, lineno, col=None, value=None, drop=None, append=None):
    out = [ln.split(",") for ln in lines]
    row = out[lineno - 1]
    if value is not None:
        row[col - 1] = value
    if drop:
        del row[-drop:]
    if append:
        row.extend(append)
    return out


def _text(rows):
    return "\n".join(",".join(r) for r in rows) + "\n"


def cases(lines):
    """(name, file text, expected line, expected column or None, words in the reason)."""
    yield "empty", "", None, None, "empty file"
    yield "only line 1", lines[0] + "\n", 2, None, "missing line 2"
    yield "missing kernel row", "\n".join(lines[:2]) + "\n", 3, None, "missing kernel row"
    yield "truncated row", _text(_edit(lines, 5, drop=3)), 5, None, "19 fields, expected 22"
    yield "row too long", _text(_edit(lines, 6, append=["1"])), 6, 23, "23 fields"
    yield "non-numeric token", _text(_edit(lines, 6, 10, "abc")), 6, 10, "non-numeric token 'abc'"
    yield "empty field", _text(_edit(lines, 4, 3, "")), 4, 3, "empty field"
    yield "NaN pixel", _text(_edit(lines, 7, 5, "NaN")), 7, 5, "pixel value is nan"
    yield "inf pixel", _text(_edit(lines, 5, 16, "-inf")), 5, 16, "pixel value is -inf"
    yield "NaN coordinate", _text(_edit(lines, 4, 18, "nan")), 4, 18, "coordinate is nan"
    yield "half sentinel", _text(_edit(lines, 4, 17, "1000")), 4, 18, "only one coordinate"
    yield "wild coordinate", _text(_edit(lines, 6, 19, "5e4")), 6, 19, "outside the sane range"
    # line 1 says 4 slots, rows carry 3: the metadata contradicts the row lengths
    yield "slots contradict", _text(_edit(lines, 1, 2, "4")), 3, None, "expected 24"
    yield "resolution contradicts", _text(_edit(lines, 1, 1, "5")), 2, 1, "uniform grid"
    short = [ln.split(",")[:2] if i == 0 else ln.split(",")[:R] if i == 1 else ln.split(",")
             for i, ln in enumerate(lines)]
    short[0][0] = "5"
    yield "resolution contradicts (ragged)", _text(short), 2, None, "line 1 says resolution 5"
    yield "odd coordinates", _text([r + (["0"] if i >= 2 else []) for i, r in
                                    enumerate(_edit(lines, 1))]), 3, 23, "23 fields"
    yield "fractional resolution", _text(_edit(lines, 1, 1, "4.5")), 1, 1, "whole number"
    yield "non-uniform x", _text(_edit(lines, 2, 3, "0.7")), 2, 3, "uniform grid"
    yield "data after metadata", _text(_edit(lines, 1, 5, "7")), 1, 5, "padding must be 0"
    yield "kernel not at origin", _text(_edit(lines, 3, 17, "0.5")), 3, 17, "kernel row"
    yield "blank line inside", "\n".join(lines[:4] + [""] + lines[4:]) + "\n", 5, None, "empty line"
    yield "binary junk", "\x00\x01garbage\n", 1, None, "expected 'resolution, max_scatterers'"
    yield "binary junk with commas", "\x00,\x01\n", 1, 1, "non-numeric"


def test_each_malformed_case_names_line_and_column(tmp_path, good_lines):
    runner = CliRunner()
    for i, (name, text, line, col, words) in enumerate(cases(good_lines)):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(text)
        with pytest.raises(FormatError) as info:
            read(path)
            pytest.fail(f"{name}: accepted")
        err = info.value
        assert (err.line, err.column) == (line, col), name
        assert words in err.reason, (name, err.reason)
        assert "np." not in err.reason, (name, err.reason)  # plain numbers, no numpy reprs
        where = f"{path}" + (f":{line}" if line else "") + (f":{col}" if col else "")
        assert str(err).startswith(where + ": "), name
        # the streaming validator says the same, and so does the CLI, with exit code 1
        with pytest.raises(FormatError) as again:
            validate(path)
        assert str(again.value) == str(err), name
        result = runner.invoke(cli, ["validate", str(path)])
        assert result.exit_code == 1, name
        assert result.output.strip() == str(err), name
        assert "Traceback" not in result.output


def test_good_file_validates(tmp_path, good_lines):
    path = tmp_path / "ok.csv"
    path.write_text("\n".join(good_lines) + "\n")
    s = validate(path)
    assert s.n_images == 4 and s.counts["max"] == 3 and s.counts["min"] == 0


def test_broken_gzip_and_missing_file(tmp_path, good_lines):
    raw = gzip.compress(("\n".join(good_lines) + "\n").encode())
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError, match="cannot read compressed data|fields"):
        read(cut)
    with pytest.raises(FormatError, match="no such file"):
        read(tmp_path / "nope.csv")
    bad_npz = tmp_path / "x.npz"
    bad_npz.write_bytes(b"PK not really")
    with pytest.raises(FormatError, match="not a readable .npz"):
        read(bad_npz)


def test_error_late_in_a_large_file_is_found(tmp_path, good_lines):
    rows = good_lines[:3] + good_lines[3:] * 400
    bad = rows.copy()
    bad[1500] = bad[1500].replace(",", ",x", 1)  # line 1501, field 2
    path = tmp_path / "big.csv"
    path.write_text("\n".join(bad) + "\n")
    with pytest.raises(FormatError) as info:
        read(path)
    assert (info.value.line, info.value.column) == (1501, 2)
