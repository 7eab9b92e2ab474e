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


def test_to_jsonable_writes_dataclasses_and_namedtuples_as_objects():
    import dataclasses
    from typing import NamedTuple

    import jax.numpy as jnp

    class Estimate(NamedTuple):
        fraction: float
        ci: tuple

    @dataclasses.dataclass(frozen=True)
    class Result:
        name: str
        values: object
        estimate: Estimate
        steps: tuple

    res = Result("a", jnp.arange(3.0), Estimate(np.float32(0.25), (0.125, 0.5)), (1, 2))
    assert to_jsonable({"r": res, "plain": (1, 2)}) == {
        "r": {
            "name": "a",
            "values": [0.0, 1.0, 2.0],
            "estimate": {"fraction": 0.25, "ci": [0.125, 0.5]},
            "steps": [1, 2],
        },
        "plain": [1, 2],
    }
    with pytest.raises(ValueError, match="non-finite"):
        to_jsonable(Result("b", np.array([1.0, np.nan]), Estimate(0.1, ()), ()))
    with pytest.raises(TypeError, match="cannot write type"):
        to_jsonable(Result)  # the class, not a result


PUBLIC_MODULES = [
    "gdjax",
    "gdjax.surfaces",
    "gdjax.schedules",
    "gdjax.descent",
    "gdjax.basins",
    "gdjax.attractors",
    "gdjax.maps",
    "gdjax.maps.config",
    "gdjax.maps.runner",
    "gdjax.maps.summary",
    "gdjax.maps.critical",
    "gdjax.maps.orbit_labels",
    "gdjax.maps.tiles",
    "gdjax.tiled",
    "gdjax.lenet",
    "gdjax.train",
    "gdjax.train.config",
    "gdjax.train.results",
    "gdjax.train.checkpoint",
    "gdjax.train.core",
    "gdjax.train.loop",
    "gdjax.data",
    "gdjax.plot",
    "gdjax.plot.basins",
    "gdjax.plot.descent",
    "gdjax.plot.schedules",
    "gdjax.plot.training",
    "gdjax.report",
    "gdjax.runs",
    "gdjax.cli",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_has_a_true_all(name):
    """``__all__`` lists names that exist, none private, and every public
    function or class the module defines (not imports) is in it."""
    import importlib
    import inspect

    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list | tuple), f"{name} has no __all__"
    listed = set(module.__all__)
    assert len(listed) == len(module.__all__), f"{name}.__all__ lists a name twice"
    assert not [n for n in listed if not hasattr(module, n)], f"{name}.__all__: missing names"
    assert not [n for n in listed if n.startswith("_") and n != "__version__"], name
    defined = {
        n
        for n, obj in vars(module).items()
        if (inspect.isfunction(obj) or inspect.isclass(obj))
        and getattr(obj, "__module__", None) == name
        and not n.startswith("_")
    }
    assert defined <= listed, f"{name}: public but not in __all__: {sorted(defined - listed)}"
