"""A kernel row that is no kernel (zeros, constant, values whose squares overflow or
underflow) is refused in one line naming the file and line 3, by every reader and
every command (issue 13, item 3)."""

import gzip

import numpy as np
import pytest

import qpiset
from qpiset.io import FormatError, RowIndex, open_dataset, read, stream, summarize, validate

R = 16

KERNELS = {
    "zeros": np.zeros((R, R)),
    "constant": np.full((R, R), 0.25),
    "overflow": np.full((R, R), 1e200) * np.where(np.eye(R) > 0, 1.0, -1.0),
    "underflow": np.full((R, R), 1e-310) * np.where(np.eye(R) > 0, 1.0, 2.0),
}


def _file(tmp_path, small_ds, name, suffix=".csv"):
    """A 16 px file whose kernel row (line 3) is ``KERNELS[name]``, the images fine."""
    from qpiset.core import Grid
    from qpiset.forward import simulate
    from qpiset.physics import FriedelKernel

    ds = simulate(FriedelKernel("Cu(111)", energy=0.0), Grid(R, 30.0), n=3, seed=1,
                  max_scatterers=4)
    good = tmp_path / f"good{suffix}"
    qpiset.write(good, ds)
    lines = (gzip.decompress(good.read_bytes()) if suffix.endswith(".gz")
             else good.read_bytes()).decode().splitlines()
    fields = lines[2].split(",")
    fields[: R * R] = [repr(float(v)) for v in KERNELS[name].T.ravel()]  # file order
    lines[2] = ",".join(fields)
    text = ("\n".join(lines) + "\n").encode()
    path = tmp_path / f"{name}{suffix}"
    path.write_bytes(gzip.compress(text) if suffix.endswith(".gz") else text)
    return path


def _is_line3(err: FormatError, path) -> None:
    assert (err.path, err.line) == (str(path), 3), str(err)
    assert "kernel row (line 3)" in err.reason and "\n" not in str(err)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_reader_refuses(tmp_path, small_ds, name, suffix):
    path = _file(tmp_path, small_ds, name, suffix)
    for how in (lambda: read(path), lambda: read(path, order="auto"),
                lambda: list(stream(path)), lambda: validate(path), lambda: summarize(path),
                lambda: RowIndex(path), lambda: open_dataset(path)):
        with pytest.raises(FormatError) as info:
            how()
        _is_line3(info.value, path)
    # the same file with a real kernel row reads
    assert read(tmp_path / f"good{suffix}").n_images == 3


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_every_command_refuses_in_one_line(tmp_path, small_ds, run, name):
    path = _file(tmp_path, small_ds, name)
    out = tmp_path / "out"
    commands = [
        ["validate", path], ["info", path], ["convert", path, out.with_suffix(".npz")],
        ["show", path, "--out", out.with_suffix(".png")],
        ["report", path, "--out", out.with_suffix(".html")],
        ["detect", path, "--method", "matched", "--out", out.with_suffix(".json")],
        ["bench", path, "--methods", "matched", "--out", out.with_suffix(".json")],
        ["kernel", path, "--out", out.with_suffix(".npy")],
    ]
    for args in commands:
        res = run(*args, code=1)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1, (args, res.output)
        assert lines[0].startswith(f"{path}:3: kernel row (line 3)"), (args, res.output)
    assert not list(tmp_path.glob("out*"))  # nothing written


def test_the_reasons_say_what_is_wrong(tmp_path, small_ds):
    reasons = {}
    for name in KERNELS:
        with pytest.raises(FormatError) as info:
            read(_file(tmp_path, small_ds, name))
        reasons[name] = info.value.reason
    assert "all zeros" in reasons["zeros"]
    assert "constant" in reasons["constant"] and "0.25" in reasons["constant"]
    assert "too large" in reasons["overflow"] and "1e+200" in reasons["overflow"]
    assert "too small" in reasons["underflow"]


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".npz", ".zarr"])
@pytest.mark.parametrize("name", sorted(KERNELS))
def test_writing_such_a_kernel_is_refused_before_anything_is_written(tmp_path, name, suffix):
    """A file qpiset writes is a file qpiset reads: the writer refuses the same kernels."""
    from qpiset.core import Dataset, Grid

    ds = Dataset(Grid(R, 30.0), KERNELS[name], np.zeros((1, R, R)), [np.zeros((0, 2))], 1)
    out = tmp_path / f"out{suffix}"
    with pytest.raises(FormatError, match="the kernel to write") as err:
        qpiset.write(out, ds)
    assert str(err.value).startswith(str(out)) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []
