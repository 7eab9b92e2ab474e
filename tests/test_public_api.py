"""The public surface exists and the report writer refuses NaN."""

import math

import numpy as np
import pytest

import gdjax
from gdjax.report import Report, to_jsonable, write_json


def test_public_names():
    for name in [
        "descend",
        "descend_final",
        "describe_rule",
        "sweep",
        "optimizer",
        "Trajectory",
        "Final",
        "Sweep",
        "Surface",
        "RULES",
        "surfaces",
        "schedules",
        "data",
        "lenet",
        "train",
        "__version__",
    ]:
        assert hasattr(gdjax, name), name
    assert gdjax.RULES == ("fixed", "time", "grad")
    assert callable(gdjax.surfaces.get) and callable(gdjax.schedules.linear_decay)
    assert callable(gdjax.data.fashion_mnist) and callable(gdjax.train.train)
    assert callable(gdjax.lenet.make_train_step) and callable(gdjax.train.train_many)


def test_json_refuses_non_finite(tmp_path):
    with pytest.raises(ValueError, match="non-finite"):
        write_json(tmp_path / "x.json", {"a": [1.0, math.nan]})
    with pytest.raises(ValueError, match="non-finite"):
        to_jsonable(np.array([np.inf]))
    assert to_jsonable({"a": np.float32(1.5), "b": np.arange(3), 1: (True, None)}) == {
        "a": 1.5,
        "b": [0, 1, 2],
        "1": [True, None],
    }


def test_report_writes_page_and_pngs(tmp_path):
    import matplotlib.pyplot as plt

    r = Report("t <&>")
    r.text("hello")
    r.table(["a", "b"], [[1, 2.5e-7]])
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    r.figure(fig, "line", "a line")
    path = r.write(tmp_path)
    page = path.read_text()
    assert "t &lt;&amp;&gt;" in page and "2.500e-07" in page and "jaxlib" in page
    assert (tmp_path / "line.png").read_bytes()[:4] == b"\x89PNG"
