"""The benchmark scores someone's predictions on the images they cover, and no others,
and says how many (issue 13, item 5); a lazily opened file is read no further than the
limit."""

import pytest

import qpiset
from qpiset.bench import markdown_table, run_benchmark


@pytest.fixture(scope="module")
def data(tmp_path_factory, cu):
    from qpiset.core import Grid
    from qpiset.forward import simulate

    path = tmp_path_factory.mktemp("subsets") / "d.csv"
    qpiset.write(path, simulate(cu, Grid(24, 40.0), n=8, seed=5, max_scatterers=4))
    return path


def test_run_benchmark_scores_a_subset(data):
    ds = qpiset.read(data)
    subset = {2: ds.positions[2], 5: ds.positions[5][:1]}
    res = run_benchmark(ds, [], predictions={"d": subset, "l": ds.positions[:3]})
    d, lst = res["methods"]["d"], res["methods"]["l"]
    assert [r["image"] for r in d["images"]] == [2, 5]
    assert d["scored"] == {"images": 2, "of": 8} and lst["scored"] == {"images": 3, "of": 8}
    assert d["overall"]["recall"] == pytest.approx((len(ds.positions[2]) + 1) /
                                                   (len(ds.positions[2]) + len(ds.positions[5])))
    lazy = qpiset.io.open_dataset(data)
    again = run_benchmark(lazy, [], predictions={"d": subset}, limit=4)
    assert again["methods"]["d"]["scored"] == {"images": 1, "of": 4}
    assert "Note: d: the predictions cover 2 of the 8 images; only those are scored." in \
        markdown_table(res)
    assert "Note:" not in markdown_table(run_benchmark(ds, [], predictions={"all": ds.positions}))
