"""A file read with the pixel order it was not written in is never a silent wrong answer
(issue 13, item 1): read/stream/open_dataset warn naming the file and the fix, validate
refuses, order="auto" reports its choice; qpiset's own files are not checked."""

import warnings

import numpy as np
import pytest

import qpiset
from qpiset import Dataset
from qpiset.io import FormatError, OrderWarning, open_dataset, read, stream, summarize, validate


def _transposed(ds):
    """The dataset as a file written x-fastest ("C") would hold it, read back as "F"."""
    return Dataset(ds.grid, ds.kernel.T, ds.images.transpose(0, 2, 1), ds.positions,
                   ds.max_scatterers)


@pytest.fixture()
def c_file(tmp_path, small_ds):
    """The small dataset written in C order, without metadata (made elsewhere)."""
    path = tmp_path / "c.csv"
    qpiset.write(path, _transposed(small_ds))
    assert not (tmp_path / "c.csv.json").exists()
    return path


@pytest.fixture()
def f_file(tmp_path, small_ds):
    """The small dataset in the published F order, without metadata."""
    path = tmp_path / "f.csv"
    qpiset.write(path, Dataset(small_ds.grid, small_ds.kernel, small_ds.images,
                               small_ds.positions, small_ds.max_scatterers))
    assert not (tmp_path / "f.csv.json").exists()
    return path


def _one_warning(record, *needles):
    msgs = [str(w.message) for w in record if issubclass(w.category, OrderWarning)]
    assert len(msgs) == 1, msgs
    assert "\n" not in msgs[0]
    for needle in needles:
        assert needle in msgs[0], msgs[0]
    return msgs[0]


def test_c_file_read_as_f_warns_with_the_fix(c_file, small_ds):
    with pytest.warns(OrderWarning) as record:
        ds = read(c_file)
    _one_warning(record, str(c_file), "--order C", 'order="C"')
    assert ds.meta["order"] == "F"  # read as asked, but not silently
    with pytest.warns(OrderWarning) as record:
        parts = list(stream(c_file, chunk_rows=5))
    assert len(parts) == 3
    _one_warning(record, str(c_file), "--order C")
    with pytest.warns(OrderWarning) as record:
        lazy = open_dataset(c_file)
    _one_warning(record, str(c_file), "--order C")
    lazy.close()


def test_validate_refuses_a_c_file_read_as_f(c_file, f_file, run):
    with pytest.raises(FormatError) as info:
        validate(c_file)
    assert info.value.path == str(c_file) and "--order C" in info.value.reason
    res = run("validate", c_file, code=1)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{c_file}: ") and "--order C" in lines[0]
    run("validate", c_file, "--order", "C")  # the fix works
    # the published order read as C is refused the same way
    res = run("validate", f_file, "--order", "C", code=1)
    assert "--order F" in res.output


def test_the_right_order_reads_without_a_word(c_file, f_file, small_ds):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = read(c_file, order="C")
        assert np.array_equal(ds.images, small_ds.images)
        read(f_file)
        list(stream(f_file))
        validate(f_file)
        validate(c_file, order="C")
        with open_dataset(c_file, order="C") as lazy:
            assert np.array_equal(lazy.images[3], small_ds.images[3])


def test_auto_reports_its_choice(c_file, f_file, small_ds, run):
    with pytest.warns(OrderWarning) as record:
        ds = read(c_file, order="auto")
    assert ds.meta["order"] == "C"
    _one_warning(record, str(c_file), "pixel order auto: C")
    with pytest.warns(OrderWarning, match="pixel order auto: F"):
        assert read(f_file, order="auto").meta["order"] == "F"
    with pytest.warns(OrderWarning, match="pixel order auto: C"):
        assert next(iter(stream(c_file, order="auto"))).meta["order"] == "C"
    with pytest.warns(OrderWarning, match="pixel order auto: C"):
        assert open_dataset(c_file, order="auto").meta["order"] == "C"
    res = run("info", c_file, "--order", "auto")
    assert "pixel order auto: C" in res.output


def test_qpiset_files_are_trusted_without_rendering(tmp_path, small_ds, monkeypatch):
    """A file with qpiset's metadata sidecar (small_ds was simulated, so it has one) is
    read as fast as before: the order check does not run."""
    path = tmp_path / "q.csv"
    qpiset.write(path, small_ds)
    assert (tmp_path / "q.csv.json").exists()

    def boom(*args, **kwargs):
        raise AssertionError("the order check ran on a file of known provenance")

    monkeypatch.setattr("qpiset.io.order.order_scores", boom)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read(path)
        validate(path)
        open_dataset(path).close()


def test_files_that_cannot_tell_pass_quietly(tmp_path, small_ds):
    """No scatterers in the first images: nothing to compare, no warning, no refusal."""
    empty = Dataset(small_ds.grid, small_ds.kernel.T, small_ds.images.transpose(0, 2, 1),
                    [np.zeros((0, 2))] * small_ds.n_images, small_ds.max_scatterers)
    path = tmp_path / "e.csv"
    qpiset.write(path, empty)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read(path).n_images == small_ds.n_images
        assert validate(path).n_images == small_ds.n_images


def test_summarize_warns_and_validate_errors(c_file):
    with pytest.warns(OrderWarning, match="--order C"):
        assert summarize(c_file).n_images == 12
    with pytest.raises(FormatError, match="--order C"):
        summarize(c_file, order_check="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summarize(c_file, order_check="off")
