"""Basin maps that label attractors (issue 22): the not-converged runs of a
map continued through gdjax.attractors.orbits and labelled periodic (around
the minimum they surround), chaotic or moving (gdjax.maps.orbit_labels)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest

from gdjax import basins
from gdjax import continuation as C
from gdjax.cli import main
from gdjax.maps import orbit_labels, runner, tiles
from gdjax.maps.config import AttractorSettings, MapConfig
from gdjax.maps.summary import DIVERGED, FIRST_ATTRACTOR, NOT_CONVERGED

BOX = ((-0.2, 0.7), (-2.1, -1.2))  # around peaks' global minimum (0.228, -1.626)
GLOBAL = (0.22828, -1.625535)


def _global_index(bmap) -> int:
    return _nearest([m.location for m in bmap.minima])


def _nearest(locations) -> int:
    d = [np.hypot(*np.subtract(loc, GLOBAL)) for loc in locations]
    assert min(d) < 1e-3
    return int(np.argmin(d))


@pytest.fixture(scope="module")
def box_rates():
    """Below the global minimum's limit 2/lambda_max = 0.0663, just above it
    (its 2-cycle) and at its period 4."""
    config = MapConfig(
        "peaks", grid=32, steps=300, lr=np.array([0.05, 0.075, 0.09]), domain=BOX, attractors=True
    )
    return config, orbit_labels.run_map(config)


def test_off_leaves_the_map_as_it_was():
    """attractors=False (through orbit_labels.run_map) and None (through
    basins.run_map) are the map made without the option: the same labels,
    steps, minima and fractions."""
    kw = dict(grid=32, steps=400, lr=np.array([0.01, 0.075, 0.15]))
    plain = basins.run_map(MapConfig("peaks", **kw))
    for off, run in ((False, orbit_labels.run_map), (None, basins.run_map)):
        config = MapConfig("peaks", attractors=off, **kw)
        assert config.attractors is None and config.cost().orbit_steps == 0
        bmap = run(config)
        np.testing.assert_array_equal(bmap.labels, plain.labels)
        np.testing.assert_array_equal(bmap.converged_step, plain.converged_step)
        assert bmap.minima == plain.minima and bmap.attractors is None
        assert bmap.fractions.outcomes == plain.fractions.outcomes
        np.testing.assert_array_equal(bmap.fractions.fraction, plain.fractions.fraction)
        assert bmap.config == plain.config


def test_on_splits_only_the_not_converged_runs():
    """With attractors the runs that converged or diverged keep their
    outcome (minima matched by location), the not-converged ones become
    moving or an attractor, and the fractions sum to 1."""
    kw = dict(grid=32, steps=400, lr=np.array([0.01, 0.075, 0.15]))
    plain = basins.run_map(MapConfig("peaks", **kw))
    on = orbit_labels.run_map(MapConfig("peaks", attractors=True, **kw))
    where = {m.location: i for i, m in enumerate(on.minima)}
    rename = np.asarray([where[m.location] for m in plain.minima])
    hit = plain.labels >= 0
    np.testing.assert_array_equal(on.labels[hit], rename[plain.labels[hit]])
    np.testing.assert_array_equal(on.labels == DIVERGED, plain.labels == DIVERGED)
    nc = plain.labels == NOT_CONVERGED
    np.testing.assert_array_equal((on.labels == NOT_CONVERGED) | (on.labels <= FIRST_ATTRACTOR), nc)
    np.testing.assert_allclose(on.fractions.fraction.sum(axis=-1), 1.0)
    assert on.fractions.outcomes[:2] == ("diverged", "moving")
    assert on.fractions.outcomes[-len(on.attractors) :] == on.attractors.names
    table = on.attractors
    assert (table.continued + table.slow == nc.sum(axis=-1)).all()
    low = on.fractions.fraction[0]  # lr 0.01: the plateau's runs crawl; no orbit, no chaos
    assert low[2 + len(on.minima) :].sum() == 0
    assert "chaotic" in table.names  # lr 0.15: chaos near the global minimum
    chaos = on.fractions["chaotic"]
    assert chaos.fraction[2] > 0.1 and chaos.ci_low[2] < chaos.fraction[2] < chaos.ci_high[2]
    assert table.lyapunov[2, table.names.index("chaotic")] > 0.1


def test_period_two_then_four_around_the_global_minimum(box_rates):
    """Peaks around its global minimum: every start converges at 0.05, is on
    the minimum's 2-cycle at 0.075 and on its 4-cycle at 0.09 (where the map
    alone said "not converged"); the global minimum is named although no run
    reaches it beyond 0.05."""
    config, bmap = box_rates
    g = _global_index(bmap)
    assert bmap.global_minima == (g,)
    two, four = f"period 2 around min {g}", f"period 4 around min {g}"
    assert set(bmap.attractors.names) == {two, four}
    fr = bmap.fractions
    assert fr[str(g)].fraction[0] > 0.95
    assert fr[two].fraction[1] > 0.95 and fr[four].fraction[2] > 0.95
    assert fr[two].ci_low[1] < fr[two].fraction[1] <= fr[two].ci_high[1]
    np.testing.assert_allclose(fr.fraction.sum(axis=-1), 1.0)
    a = bmap.attractors.names.index(two)
    assert (bmap.labels[1] == FIRST_ATTRACTOR - a).mean() == fr[two].fraction[1]
    cycle = bmap.attractors.cycle(a, 1)
    assert cycle.shape == (2, 2)
    # the two points straddle the minimum along its steepest direction
    mid = cycle.mean(axis=0)
    assert np.hypot(*(mid - GLOBAL)) < 0.05 < np.hypot(*(cycle[0] - cycle[1]))
    assert bmap.attractors.lyapunov[1, a] < 0  # a stable cycle
    assert bmap.at(1).attractors.cycle(a).shape == (2, 2)
    assert bmap.outcome(FIRST_ATTRACTOR - a) == two
    assert np.all(np.isnan(bmap.attractors.points[0]))  # at 0.05 no run is on an orbit


def test_continuation_of_labelled_maps_says_where_the_starts_go(box_rates):
    config, bmap = box_rates
    cont = C.from_maps(config, bmap, box=4)
    g = _global_index(bmap)
    assert cont.stability_limits[g] == pytest.approx(0.0663, abs=1e-4)
    dest = cont.destinations[g]
    assert [d.outcome for d in dest] == [f"period 2 around min {g}", f"period 4 around min {g}"]
    assert dest[0].lr_from == pytest.approx(0.075) and dest[0].share > 0.95
    # continuation() of the same config maps through the attractor labelling too
    again = C.continuation(config, box=4)
    assert again.destinations == cont.destinations
    np.testing.assert_array_equal(again.bmap.labels, bmap.labels)


def test_one_device_and_eight_agree(box_rates):
    config, bmap = box_rates
    one = orbit_labels.run_map(config.replace(devices=1))
    assert config.devices == 8 and one.config.devices == 1
    np.testing.assert_array_equal(one.labels, bmap.labels)
    assert one.attractors.names == bmap.attractors.names
    np.testing.assert_array_equal(one.attractors.points, bmap.attractors.points)
    np.testing.assert_array_equal(one.fractions.fraction, bmap.fractions.fraction)


def test_table_to_json_is_strict(box_rates):
    _, bmap = box_rates
    res = bmap.attractors.to_json(bmap.fractions)
    text = json.dumps(res, allow_nan=False)
    back = json.loads(text)
    row = back["table"][0]
    assert row["label"] == FIRST_ATTRACTOR and row["kind"] == "periodic"
    assert len(row["points"]) == 3 and row["points"][0] == []  # per rate; none at 0.05
    assert row["lyapunov"][0] is None


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"rule": "time"}, "plain gradient descent"),
        ({"label_on": "device"}, "label_on='host'"),
        ({"attractors": "yes"}, "True, False or an AttractorSettings"),
    ],
)
def test_refused_before_compute(changes, match):
    with pytest.raises(ValueError, match=match):
        MapConfig("peaks", grid=8, lr=0.075, **{"attractors": True, **changes})


def test_settings_are_checked_and_counted():
    with pytest.raises(ValueError, match="window must be at least"):
        AttractorSettings(window=16)
    with pytest.raises(ValueError, match="max_period"):
        AttractorSettings(max_period=1)
    plain = MapConfig("peaks", grid=64, lr=0.075)
    on = MapConfig("peaks", grid=64, lr=0.075, attractors=AttractorSettings(transient=20))
    assert on.attractors.steps == 20 + 128
    assert on.cost().orbit_steps == 64 * 64 * 148
    assert on.cost().memory_bytes > plain.cost().memory_bytes
    assert on.record().attractors["transient"] == 20 and plain.record().attractors is None
    assert on.label_on == "host"


def test_maps_that_cannot_label_attractors_say_so(tmp_path):
    config = MapConfig("peaks", grid=16, lr=0.075, attractors=True)
    with pytest.raises(ValueError, match="orbit_labels.run_map"):
        runner.run_map(config)
    with pytest.raises(ValueError, match="a map to disk labels minima only"):
        tiles.map_to_disk(config, tmp_path / "out")


def test_the_module_draws_nothing_and_lists_its_names():
    """tests/test_architecture.py's and tests/test_public_api.py's rules,
    for the new module."""
    path = Path(orbit_labels.__file__)
    tree = ast.parse(path.read_text())
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert not any(m and m.split(".")[0] in ("matplotlib", "tqdm") for m in imported)
    assert not any(
        m and m.startswith(("gdjax.plot", "gdjax.report", "gdjax.cli")) for m in imported
    )
    public = {
        name
        for name, value in vars(orbit_labels).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == orbit_labels.__name__
    }
    assert public | {"CYCLES_KEPT"} == set(orbit_labels.__all__)


BOX_ARGS = ["--domain", "-0.2", "0.7", "-2.1", "-1.2", "--grid", "32", "--steps", "300"]


def test_cli_basins_attractors(tmp_path, capsys):
    """gdjax basins --attractors at lr 0.075 around the global minimum: the
    starts the map alone calls not converged are on its 2-cycle, in
    basins.json, labels.npy, the summary and the report."""
    out = tmp_path / "run"
    argv = ["basins", *BOX_ARGS, "--lr", "0.075", "--attractors", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    res = json.loads((out / "basins.json").read_text())
    g = _nearest([m["location"] for m in res["minima"]])
    name = f"period 2 around min {g}"
    row = res["attractors"]["table"][0]
    assert row["name"] == name and row["period"] == 2 and row["minimum"] == g
    assert row["fraction"] > 0.95 and row["ci_low"] < row["fraction"] <= row["ci_high"]
    assert len(row["points"]) == 2 and res["global_minima"] == [g]
    assert set(res["fractions"]) == {"diverged", "moving", str(g), name}
    assert sum(f["fraction"] for f in res["fractions"].values()) == pytest.approx(1.0)
    labels = np.load(out / "labels.npy")
    assert (labels == FIRST_ATTRACTOR).mean() == pytest.approx(row["fraction"])
    assert f"  {name}: " in printed and "  moving: " in printed
    report = (out / "report.html").read_text()
    assert name in report and "lighter shade of a minimum" in report
    # off by default: the same command without the option labels minima only
    plain = tmp_path / "plain"
    assert main([*argv[:-2], "--no-progress", "--out", str(plain)]) == 0
    res0 = json.loads((plain / "basins.json").read_text())
    assert "not_converged" in res0["fractions"] and res0["attractors"] is None
    assert res0["fractions"]["not_converged"]["fraction"] == pytest.approx(
        row["fraction"] + res["fractions"]["moving"]["fraction"]
    )


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--tiled"], "--attractors needs a map in memory"),
        (["--grid", "5000"], "--attractors needs a map in memory"),
        (["--schedule", "cosine:max_steps=100"], "leave out --schedule"),
        (["--label-on", "device"], "leave out --label-on device"),
    ],
)
def test_cli_basins_attractors_refused(argv, match, tmp_path, capsys):
    """Where attractors cannot be labelled: one line, exit 2, nothing computed."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as err:
        main(["basins", "--out", str(out), "--no-progress", "--attractors", *argv])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert re.search(match, message) and "Traceback" not in message
    assert not (out / "basins.json").exists()


def _continuation(out, *extra):
    """gdjax continuation around the global minimum, below and above its
    limit 0.0663."""
    argv = ["continuation", "--domain", "-0.2", "0.7", "-2.1", "-1.2", "--grid", "32"]
    argv += ["--steps", "300", "--lr-min", "0.05", "--lr-max", "0.08", "--lrs", "4"]
    assert (
        main(
            [*argv, "--uncertainty", "0", "--box", "4", "--no-progress", *extra, "--out", str(out)]
        )
        == 0
    )
    return json.loads((out / "continuation.json").read_text())


def test_cli_continuation_shows_the_period_two_orbit_where_it_showed_white(tmp_path, capsys):
    """Done when (issue 22, item 5): peaks' continuation above 2/lambda_max
    shows period-2 orbits around the global minimum where it showed white
    (not converged); --minima-only shows it as before."""
    res = _continuation(tmp_path / "on")
    old = _continuation(tmp_path / "off", "--minima-only")
    g = _nearest([m["location"] for m in res["minima"]])
    limit = res["stability_limits"][str(g)]
    assert limit == pytest.approx(0.0663, abs=1e-4)
    name = f"period 2 around min {g}"
    above = [i for i, lr in enumerate(res["lrs"]) if lr > limit]
    assert above
    for i in above:
        rows = {r["name"]: r for r in res["attractors_by_rate"][i]["attractors"]}
        assert rows[name]["fraction"] > 0.95 and rows[name]["period"] == 2
        assert rows[name]["minimum"] == g and rows[name]["kind"] == "periodic"
        assert rows[name]["ci_low"] <= rows[name]["fraction"] <= rows[name]["ci_high"]
        assert old["fractions"]["not_converged"][i] == pytest.approx(rows[name]["fraction"])
    assert res["destinations"][str(g)][0]["outcome"] == name
    assert "attractors" in old and old["attractors"] is None and "moving" not in old["fractions"]
    # the fractal measures read minima against the rest: equal with and without
    assert res["fractal"]["box_dimension"] == old["fractal"]["box_dimension"]
    page = (tmp_path / "on" / "report.html").read_text()
    assert "Where a vanished basin&#x27;s starts go" in page or "Where a vanished basin's" in page
    assert f"go to {name} (" in page
    printed = capsys.readouterr().out
    assert f"then its starts go to {name} (" in printed


def test_the_keyword_form_labels_attractors_too():
    """basins.map_basins(..., attractors=True): the public keyword form maps
    through the attractor labelling (it had to be reached through
    gdjax.maps.orbit_labels while an import cycle stood in the way)."""
    bmap = basins.map_basins("peaks", grid=16, steps=300, lr=0.075, domain=BOX, attractors=True)
    g = _global_index(bmap)
    assert bmap.attractors is not None
    assert bmap.fractions[f"period 2 around min {g}"].fraction > 0.95


def test_cli_basins_attractors_with_an_optimizer(tmp_path):
    """--attractors --optimizer: the runs of an optax optimizer are continued
    too (with a fresh optimizer state; gdjax.maps.orbit_labels). RMSprop at
    lr 0.075 around peaks' global minimum ends on a 2-cycle around it."""
    out = tmp_path / "out"
    argv = ["basins", "--out", str(out), "--no-progress", "--attractors", "--optimizer"]
    argv += ["rmsprop", "--lr", "0.075", "--grid", "16", "--steps", "200"]
    argv += ["--domain", "-0.2", "0.7", "-2.1", "-1.2"]
    assert main(argv) == 0
    res = json.loads((out / "basins.json").read_text())
    fractions = res["fractions"]
    assert sum(v["fraction"] for v in fractions.values()) == pytest.approx(1.0)
    names = [a["name"] for a in res["attractors"]["table"]]
    assert any(n.startswith("period 2 around min") for n in names), names
