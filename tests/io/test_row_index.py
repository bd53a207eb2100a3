"""Random access to the row format (qpiset.io.RowIndex): the same images and scatterers
as qpiset.read, errors naming file, line and column, and per-process file handles."""

import gzip
import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import pytest

import qpiset
from helpers import same_bits
from qpiset.io import FormatError, RowIndex


def _gzip(path, text: str):
    with gzip.open(path, "wb") as f:
        f.write(text.encode())
    return path


@pytest.fixture()
def files(tmp_path, small_ds):
    """The small dataset as a plain file, a gzipped one, and variants qpiset.read reads the
    same: CRLF with a BOM, aligned with spaces, tab-separated, comma and space."""
    plain = tmp_path / "d.csv"
    qpiset.write(plain, small_ds)
    qpiset.write(tmp_path / "d.csv.gz", small_ds)
    text = plain.read_text()
    crlf = tmp_path / "crlf_bom.csv"
    crlf.write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode())
    lines = text.splitlines()
    aligned = tmp_path / "aligned.txt"
    aligned.write_text("\n".join("  " + "   ".join(ln.split(",")) + "  " for ln in lines) + "\n")
    tabs = tmp_path / "tabs.tsv"
    tabs.write_text("\n".join("\t".join(ln.split(",")) for ln in lines) + "\n")
    spaced = tmp_path / "comma_space.csv"
    spaced.write_text("\n".join(", ".join(ln.split(",")) for ln in lines) + "\n")
    return {"plain": plain, "gz": tmp_path / "d.csv.gz", "crlf": crlf, "aligned": aligned,
            "tabs": tabs, "comma_space": spaced}


def assert_same_items(rows: RowIndex, ds):
    assert len(rows) == ds.n_images
    assert rows.grid == ds.grid and rows.max_scatterers == ds.max_scatterers
    assert same_bits(rows.kernel, ds.kernel)
    for i in range(ds.n_images):
        image, positions = rows.item(i)
        assert same_bits(image, ds.images[i]), i
        assert same_bits(positions, ds.positions[i]), i
        assert same_bits(rows.image(i), ds.images[i]), i
        assert same_bits(rows.positions(i), ds.positions[i]), i


@pytest.mark.parametrize("kind", ["plain", "gz", "crlf", "aligned", "tabs", "comma_space"])
def test_every_item_equals_read(files, kind, small_ds):
    path = files[kind]
    ds = qpiset.read(path)
    assert_same_items(RowIndex(path), ds)
    assert any(len(p) < ds.max_scatterers for p in ds.positions)  # sentinel slots are dropped
    rows = RowIndex(path)
    assert same_bits(rows.image(-1), ds.images[-1])  # negative indices count from the end
    for bad in (ds.n_images, -ds.n_images - 1):
        with pytest.raises(IndexError):
            rows.item(bad)
    # the other pixel order, as qpiset.read(order="C") reads it
    assert_same_items(RowIndex(path, order="C"), qpiset.read(path, order="C"))


def edited(tmp_path, plain, line: int, column: int, token: str, suffix=".csv"):
    """A copy of ``plain`` with field ``column`` of line ``line`` replaced by ``token``."""
    lines = plain.read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[column - 1] = token
    lines[line - 1] = ",".join(fields)
    text = "\n".join(lines) + "\n"
    path = tmp_path / f"bad_{line}_{column}{suffix}"
    if suffix == ".csv.gz":
        _gzip(path, text)
    else:
        path.write_text(text)
    return path


R2 = 24 * 24  # pixels per row of the small dataset; its coordinates follow


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("token, column, reason", [
    ("abc", 10, "non-numeric token 'abc'"),
    ("", 10, "empty field"),
    ("0x1F", R2 + 1, "non-numeric token '0x1F'"),
    ("1_000", 10, "non-numeric token '1_000'"),  # Python's float() reads it; the format not
    ("nan", 3, "pixel value is nan"),
    ("-inf", R2, "pixel value is -inf"),
    ("5e4", R2 + 1, "outside the sane range"),
], ids=["word", "empty", "hex", "underscore", "nan_pixel", "inf_pixel", "wild_coordinate"])
def test_bad_field_names_file_line_and_column(tmp_path, files, suffix, token, column, reason):
    line = 9  # image 5
    path = edited(tmp_path, files["plain"], line, column, token, suffix)
    with pytest.raises(FormatError) as info:
        qpiset.read(path)
    assert (info.value.line, info.value.column) == (line, column)  # what the reader says
    assert reason in info.value.reason
    rows = RowIndex(path)  # opening scans offsets only: the bad line is found when read
    assert len(rows) == 12
    for i in (0, line - 5, line - 3, 11):  # the other images read fine
        assert rows.image(i).shape == (24, 24)
    for read_it in (rows.values, rows.image, rows.positions, rows.item):
        with pytest.raises(FormatError) as info:
            read_it(line - 4)
        err = info.value
        assert (err.path, err.line, err.column) == (str(path), line, column)
        assert reason in err.reason
        assert str(err).startswith(f"{path}:{line}:{column}: ")


def test_half_sentinel_and_blank_line_inside_name_their_line(tmp_path, files):
    # one coordinate of a pair equal to the sentinel: the column of the other one
    path = edited(tmp_path, files["plain"], 5, R2 + 1, "1000")
    with pytest.raises(FormatError) as info:
        RowIndex(path).item(1)
    assert (info.value.line, info.value.column) == (5, R2 + 2)
    assert "only one coordinate" in info.value.reason
    # a blank line between images is an error at that line (qpiset.read refuses it too)
    lines = files["plain"].read_text().splitlines()
    path = tmp_path / "blank.csv"
    path.write_text("\n".join(lines[:6] + [""] + lines[6:]) + "\n")
    with pytest.raises(FormatError, match="empty line"):
        qpiset.read(path)
    rows = RowIndex(path)
    assert same_bits(rows.image(2), RowIndex(files["plain"]).image(2))
    with pytest.raises(FormatError) as info:
        rows.item(3)
    assert (info.value.path, info.value.line) == (str(path), 7)
    assert "empty line" in info.value.reason


@pytest.mark.parametrize("ending", ["\n\n\n", "\n  \n\t\n", "\r\n\r\n", ""],
                         ids=["blank_lines", "white_space_lines", "crlf_blank_lines",
                              "no_final_newline"])
def test_trailing_blank_lines_are_not_images(tmp_path, files, small_ds, ending):
    text = "\n".join(files["plain"].read_text().splitlines())
    if ending.startswith("\r"):
        text = text.replace("\n", "\r\n")
    path = tmp_path / "t.csv"
    path.write_text(text + ending, newline="")
    assert len(qpiset.read(path).images) == 12
    rows = RowIndex(path)
    assert len(rows) == 12
    assert same_bits(rows.image(11), small_ds.images[11])
    with pytest.raises(IndexError):
        rows.item(12)
    gz = _gzip(tmp_path / "t.csv.gz", text + ending)
    assert len(RowIndex(gz)) == 12
    assert same_bits(RowIndex(gz).image(11), small_ds.images[11])


_INHERITED: RowIndex | None = None


def _items_from(rows: RowIndex, which) -> list:
    return [rows.item(i) for i in which]


def _items_inherited(which) -> list:
    return _items_from(_INHERITED, which)


@pytest.mark.parametrize("kind", ["plain", "gz"])
def test_works_after_pickling_and_in_other_processes(files, kind, small_ds):
    global _INHERITED
    rows = RowIndex(files[kind])
    rows.item(3)  # the parent's own handle is open now
    again = pickle.loads(pickle.dumps(rows))
    assert_same_items(again, small_ds)
    assert_same_items(rows, small_ds)  # the parent's index is unaffected
    # worker processes (forked, as DataLoader workers are): the index passed to them
    # (pickled) and inherited as it is (the parent's handle, which they must not share)
    _INHERITED = rows
    try:
        order = [11, 0, 7, 3, 5, 2, 9, 1, 10, 4, 8, 6]
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
            jobs = [pool.submit(_items_from, rows, order[:6]),
                    pool.submit(_items_inherited, order[6:]),
                    pool.submit(_items_inherited, order[::-1])]
            got = [item for job in jobs[:2] for item in job.result(timeout=120)]
            backwards = jobs[2].result(timeout=120)
            # the parent reads while the workers hold their handles
            assert_same_items(rows, small_ds)
    finally:
        _INHERITED = None
    for i, (image, positions) in zip(order + order[::-1], got + backwards):
        assert same_bits(image, small_ds.images[i]), i
        assert same_bits(positions, small_ds.positions[i]), i


def test_threads_share_one_index(small_ds, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "t.csv"
    qpiset.write(path, small_ds)
    rows = RowIndex(path)
    n = small_ds.n_images

    def same(i):
        image, positions = rows.item(i)
        return same_bits(image, small_ds.images[i]) and same_bits(positions, small_ds.positions[i])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(same, list(range(n)) * 40))
    assert all(results), f"{results.count(False)} of {len(results)} reads wrong"
    with RowIndex(path) as closing:
        assert len(closing) == n
    assert closing._handle is None
