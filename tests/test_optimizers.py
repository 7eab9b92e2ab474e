"""gdjax.optimizers and ``gdjax optimizers``: one family of updates equal to
optax's five optimizers, compared side by side in one program."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import basins
from gdjax import optimizers as O
from gdjax.cli import optimizers as cli_optimizers
from gdjax.cli._common import run_and_print
from gdjax.maps import runner


def _f(x):
    return jnp.sum(jnp.sin(3 * x) + x**2) + 0.3 * x[0] * x[1]


def _walk(tx, x, steps=200):
    with jax.numpy_dtype_promotion("standard"):  # optax's own code needs it
        return _walk_strict(tx, x, steps)


def _walk_strict(tx, x, steps):
    state = tx.init(x)
    path = []
    for _ in range(steps):
        u, state = tx.update(jax.grad(_f)(x), state, x)
        x = optax.apply_updates(x, u)
        path.append(x)
    return np.asarray(path)


@pytest.mark.parametrize("name", list(O.PRESETS))
def test_each_preset_equals_its_optax_twin(name):
    p = O.preset(name)
    x0 = jnp.asarray([0.7, -1.3], jnp.float32)
    settings = {**O._DEFAULTS, **p.settings}
    ours = _walk(O.family(p.lr, **settings), x0)
    theirs = _walk(O.twin(p), x0)
    if name in ("gd", "momentum", "nesterov"):
        # the same float operations in the same order: equal bit for bit
        np.testing.assert_array_equal(ours, theirs)
    else:  # (1 - b) is rounded once in float32 here, from a Python float there
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-5)
    assert not np.allclose(ours[-1], x0)  # it moved


def test_presets_differ_from_each_other():
    x0 = jnp.asarray([0.7, -1.3], jnp.float32)
    ends = {
        n: _walk(O.family(O.preset(n).lr, **{**O._DEFAULTS, **O.preset(n).settings}), x0, 20)[-1]
        for n in O.PRESETS
    }
    names = list(ends)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.allclose(ends[a], ends[b]), (a, b)


def test_changed_settings_reach_the_twin():
    p = O.preset("adam", 0.05, b1=0.8, b2=0.99)
    assert p.settings["momentum"] == p.settings["dampening"] == 0.8
    t = O.twin(p)
    x0 = jnp.asarray([0.2, 0.9], jnp.float32)
    np.testing.assert_allclose(
        _walk(O.family(p.lr, **{**O._DEFAULTS, **p.settings}), x0, 50),
        _walk(t, x0, 50),
        atol=2e-5,
    )
    assert O.preset("rmsprop", decay=0.5).settings["b2"] == 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="sgd"), "unknown optimizer"),
        (dict(name="gd", momentum=0.9), "has no setting momentum"),
        (dict(name="adam", b1=1.0), "b1 must be < 1"),
        (dict(name="momentum", momentum=-0.1), "momentum"),
        (dict(name="adam", lr=0.0), "rate of adam"),
    ],
)
def test_preset_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        O.preset(**kwargs)


def test_agreement_and_transitions_count_exactly():
    labels = np.asarray([[0, 1, 1, -1, -2, 2], [0, 1, 2, 1, -2, -1]])
    a = O.agreement(labels)
    np.testing.assert_array_equal(a, [[4 / 6, 2 / 6], [2 / 6, 4 / 6]])
    t = O.transitions(labels[0], labels[1], [-2, -1, 0, 1, 2])
    expected = np.zeros((5, 5))
    expected[0, 0] = expected[1, 3] = expected[2, 2] = expected[3, 3] = expected[3, 4] = 1 / 6
    expected[4, 1] = 1 / 6
    np.testing.assert_array_equal(t, expected)
    with pytest.raises(ValueError, match="optimizers, starts"):
        O.agreement(labels[0])


def test_near_minima():
    minima = gdjax.basins.critical_points("peaks")
    minima = [m for m in minima if m.kind == "min"]
    loc = np.asarray(minima[0].location)
    ends = np.stack([loc + [0.01, 0], loc + [0.5, 0]])
    np.testing.assert_array_equal(O.near_minima(ends, minima, 0.05), [0, -1])


def _places(minima, labels):
    """Each start's outcome as a place: a minimum's rounded location, or the
    negative label."""
    locs = np.asarray([np.round(m.location, 2) for m in minima])
    where = locs[np.maximum(labels, 0)]
    return np.where((labels >= 0)[:, None], where, labels[:, None]).sum(-1) * 1000 + where[:, 0]


def test_compare_is_one_program_and_equals_single_maps():
    kw = dict(grid=24, steps=300)
    first = O.compare("peaks", ["gd", "momentum", "adam"], **kw)
    assert first.bmap.batch == (3,)
    # new rates and settings are data: the same descent program (the
    # labelling's Newton steps compile per number of candidates: not counted)
    programs = runner.compiled_programs()
    O.compare(
        "peaks",
        [O.preset("gd", 0.02), O.preset("momentum", 0.005, momentum=0.8), "adam"],
        **kw,
    )
    assert runner.compiled_programs() == programs
    # each optimizer's map equals mapping it alone through its optax twin
    for i, name in enumerate(first.names):
        p = first.presets[i]
        twin_rule = {
            "gd": gdjax.optimizer(optax.sgd),
            "momentum": gdjax.optimizer(optax.sgd, momentum=0.9),
            "adam": gdjax.optimizer(optax.adam),
        }[name]
        alone = gdjax.basins.map_basins("peaks", lr=p.lr, rule=twin_rule, **kw)
        # the minima are found per map: compare where each start ends up
        same = _places(first.bmap.minima, first.bmap.labels[i]) == _places(
            alone.minima, alone.labels
        )
        assert same.mean() >= 0.995, (name, same.mean())


def test_cli_writes_json_and_report(tmp_path):
    out = tmp_path / "run"
    res = run_and_print(
        cli_optimizers.COMMAND,
        {
            "out": out,
            "seed": 0,
            "overwrite": False,
            "grid": 32,
            "steps": 300,
            "optimizers": ["gd", "momentum", "rmsprop"],
            "lr": [("rmsprop", 0.005)],
            "momentum": 0.8,
            "no_progress": True,
        },
    )
    data = json.loads((out / "optimizers.json").read_text())
    assert data == json.loads(json.dumps(res))
    assert data["optimizers"] == ["gd", "momentum", "rmsprop"]
    assert data["settings"]["rmsprop"]["lr"] == 0.005
    assert data["settings"]["momentum"]["momentum"] == 0.8
    a = np.asarray(data["agreement"])
    np.testing.assert_array_equal(a, a.T)
    for i, name in enumerate(data["optimizers"]):
        fr = data["fractions"][name]
        assert sum(v["fraction"] for v in fr.values()) == pytest.approx(1.0)
        reached = 1 - fr["diverged"]["fraction"] - fr["not_converged"]["fraction"]
        assert a[i, i] == pytest.approx(reached)
    assert {"maps.png", "agreement.png", "global_fractions.png", "report.html"} <= {
        p.name for p in out.iterdir()
    }
    page = (out / "report.html").read_text()
    assert "Does momentum help escape shallow minima?" in page
    assert "leaves in the shallowest minimum" in page


@pytest.mark.parametrize(
    "options, message",
    [
        ({"b1": 0.8, "optimizers": ["gd"]}, "--b1 goes with adam"),
        ({"lr": [("adam", 0.1)], "optimizers": ["gd"]}, "adam is not in --optimizers"),
        ({"lr": [(None, 0.1), (None, 0.2)]}, "give --lr VALUE once"),
        ({"lr": [("adam", 0.1), ("adam", 0.2)]}, "--lr adam=... is given twice"),
        ({"surface": "nope"}, "nope"),
    ],
)
def test_cli_refuses_bad_options_before_compute(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as e:
        run_and_print(
            cli_optimizers.COMMAND,
            {"out": tmp_path / "x", "seed": 0, "overwrite": False, "grid": 8, **options},
        )
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_compare_takes_a_map_config():
    config = basins.MapConfig("peaks", grid=12, steps=300, tol=1e-3)
    a = O.compare(config, ["gd", "adam"])
    b = O.compare("peaks", ["gd", "adam"], grid=12, steps=300, tol=1e-3)
    np.testing.assert_array_equal(a.reached, b.reached)
    assert a.bmap.config.batch == [2]


# beyond gradient descent's stability limit at the global minimum of peaks
# (0.228, -1.626): lr 0.075 puts GD on a 2-cycle around it (docs/basins.md)
_BOX = ((-0.2, 0.7), (-2.1, -1.2))


def test_attractors_label_the_not_converged_runs_of_each_optimizer():
    names = ["gd", "momentum", "rmsprop"]
    presets = [O.preset(n, 0.075) for n in names]
    off = O.compare("peaks", presets, grid=32, steps=200, domain=_BOX)
    on = O.compare("peaks", presets, grid=32, steps=200, domain=_BOX, attractors=True)
    # off: as before (no table, the old keys)
    assert off.bmap.attractors is None
    assert set(off.fractions) == {"diverged", "not_converged", "0"}
    assert off.fractions["not_converged"].fraction[0] == 1.0  # GD never converges here
    # on: GD's not-converged starts are on the 2-cycle around the global minimum
    table = on.bmap.attractors
    assert "period 2 around min 0" in table.names
    assert on.fractions["period 2 around min 0"].fraction[0] == 1.0
    assert on.outcomes[0] == (0, "0") and (-1, "moving") in on.outcomes
    # the family's GD labels as plain gradient descent does
    plain = basins.map_basins("peaks", grid=32, steps=200, lr=0.075, domain=_BOX, attractors=True)
    np.testing.assert_array_equal(on.reached[0], plain.labels)
    # every optimizer's outcome is labelled: a minimum, an attractor, moving, diverged
    valid = {label for label, _ in on.outcomes}
    for i in range(len(names)):
        assert set(np.unique(on.reached[i]).tolist()) <= valid
        assert not np.any(on.reached[i] == basins.NOT_CONVERGED) or "moving" in on.fractions
    assert on.fractions["0"].fraction[1] == off.fractions["0"].fraction[1]  # momentum converges
    assert on.fractions["period 2 around min 0"].fraction[2] > 0.5  # RMSprop orbits too
    total = sum(np.asarray(on.fractions[k].fraction) for k in on.fractions)
    np.testing.assert_allclose(total, 1.0)
    # the minima's fractions do not change: the attractors split the rest
    np.testing.assert_array_equal(on.fractions["0"].fraction, off.fractions["0"].fraction)
    t = on.transitions("gd", "momentum")
    assert t.shape == (len(on.outcomes),) * 2 and t.sum() == pytest.approx(1.0)
    assert t[1, 0] == 1.0  # GD's 2-cycle starts all converge under momentum


def test_cli_attractors_write_the_table(tmp_path):
    out = tmp_path / "run"
    res = run_and_print(
        cli_optimizers.COMMAND,
        {
            "out": out,
            "seed": 0,
            "overwrite": False,
            "grid": 32,
            "steps": 200,
            "optimizers": ["gd", "momentum"],
            "lr": [(None, 0.075)],
            "domain": [-0.2, 0.7, -2.1, -1.2],
            "attractors": True,
            "no_progress": True,
        },
    )
    data = json.loads((out / "optimizers.json").read_text())
    assert data == json.loads(json.dumps(res))
    rows = {row["name"]: row for row in data["attractors"]["table"]}
    assert rows["period 2 around min 0"]["fraction"] == [1.0, 0.0]
    assert rows["period 2 around min 0"]["period"] == 2
    assert len(rows["period 2 around min 0"]["points"][0]) == 2  # GD's two cycle points
    for name in data["optimizers"]:
        fr = data["fractions"][name]
        assert "moving" in fr and "not_converged" not in fr
        assert sum(v["fraction"] for v in fr.values()) == pytest.approx(1.0)
        assert fr["period 2 around min 0"]["ci_low"] <= fr["period 2 around min 0"]["fraction"]
    page = (out / "report.html").read_text()
    assert "Beyond the stability limit: attractors" in page
    assert "period 2 around min 0" in page
    assert "maps.png" in {p.name for p in out.iterdir()}


def test_cli_attractors_option_is_off_by_default():
    import argparse

    parser = argparse.ArgumentParser()
    cli_optimizers.add_arguments(parser)
    assert parser.parse_args([]).attractors is False
    assert parser.parse_args(["--attractors"]).attractors is True
    assert "--attractors" in parser.format_help()
