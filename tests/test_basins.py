"""Basins: discovered minima against the literature and SciPy, labels that do
not depend on chunking or sharding, and clear errors."""

import re

import jax
import numpy as np
import pytest
import scipy.optimize

import gdjax
from gdjax import basins, surfaces


@pytest.fixture(scope="module")
def himmelblau_map():
    return basins.map_basins(
        "himmelblau", starts=4096, key=jax.random.key(1), steps=400, lr=0.01, chunk_size=1024
    )


def test_himmelblau_every_converged_start_ends_at_a_literature_minimum(himmelblau_map):
    b = himmelblau_map
    lit = np.asarray([m.location for m in surfaces.get("himmelblau").minima])
    conv = b.labels >= 0
    assert conv.mean() > 0.99
    d = np.linalg.norm(b.final[conv][:, None] - lit[None], axis=-1).min(axis=1)
    # |grad| < 1e-3 near a minimum whose Hessian eigenvalues are >= 8 => within ~1e-4
    assert d.max() < 1e-3
    assert sum(f[0] for f in b.fractions.values()) == pytest.approx(1.0)
    assert len(b.minima) == 4
    # the map's arrays are the caller's own: writable NumPy, not views of JAX's buffers
    assert all(a.flags.writeable for a in (b.starts, b.final, b.labels, b.converged_step))
    for m in b.minima:
        res = scipy.optimize.minimize(
            lambda x: float(surfaces.himmelblau(x)),
            m.location,
            method="BFGS",
            options={"gtol": 1e-10},
        )
        np.testing.assert_allclose(m.location, res.x, atol=1e-5)
        assert m.kind == "min" and min(m.eigenvalues) > 0
    for key, (p, lo, hi) in b.fractions.items():
        assert lo <= p <= hi, key


def test_peaks_minima_and_global():
    b = basins.map_basins("peaks", grid=64, steps=1000, lr=0.01)
    lit = surfaces.get("peaks").minima  # validated against SciPy in test_surfaces
    assert len(b.minima) == len(lit)
    for m, ref in zip(b.minima, sorted(lit, key=lambda m: m.value), strict=True):
        np.testing.assert_allclose(m.location, ref.location, atol=1e-5)
        assert m.value == pytest.approx(ref.value, abs=1e-5)
    np.testing.assert_allclose(b.minima[0].location, (0.23, -1.63), atol=0.01)
    assert b.label_grid().shape == (64, 64)
    assert (b.labels == basins.NOT_CONVERGED).any()  # the flat plateau
    assert not np.isnan(b.final).any()


def test_labels_do_not_depend_on_chunk_size_or_sharding():
    kw = dict(starts=3000, key=jax.random.key(7), steps=300, lr=0.01)
    a = basins.map_basins("six_hump_camel", chunk_size=3000, devices=1, **kw)
    b = basins.map_basins("six_hump_camel", chunk_size=512, **kw)
    assert b.config.devices == jax.device_count()  # 8 under conftest, or as XLA_FLAGS sets
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.converged_step, b.converged_step)
    np.testing.assert_allclose(a.final, b.final, rtol=1e-6, atol=1e-6)


def test_critical_points_of_peaks():
    cps = basins.critical_points("peaks")
    kinds = [c.kind for c in cps]
    assert kinds.count("min") == 3 and kinds.count("max") == 3 and kinds.count("saddle") == 3
    for c in cps:
        grad = np.asarray(jax.grad(surfaces.peaks)(np.asarray(c.location, np.float32)))
        assert np.linalg.norm(grad) < 1e-3


def test_wilson_and_best_of_k():
    p, lo, hi = basins.wilson_interval(np.array([0, 50, 100]), 100)
    np.testing.assert_allclose(p, [0, 0.5, 1])
    assert lo[0] == 0 and hi[2] == 1
    # Wilson (1927) for 50 of 100: [0.4038, 0.5962]
    assert (lo[1], hi[1]) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    np.testing.assert_allclose(basins.best_of_k(0.25, [1, 2, 4]), [0.25, 0.4375, 1 - 0.75**4])
    labels = np.array([0] * 25 + [1] * 75)
    sim = basins.simulate_best_of_k(labels, [1, 3], key=jax.random.key(0), trials=20000)
    np.testing.assert_allclose(sim, basins.best_of_k(0.25, [1, 3]), atol=0.02)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grid": 0}, "grid must be a positive integer"),
        ({"starts": -5, "key": jax.random.key(0)}, "starts must be a positive integer"),
        ({"starts": 10}, "need key"),
        ({}, "exactly one"),
        ({"grid": 8, "domain": ((1, -1), (0, 1))}, "low < high"),
        ({"grid": 8, "domain": ((0, 0), (0, 1))}, "low < high"),
        ({"grid": 8, "lr": 0.0}, "lr must be finite and > 0"),
        ({"grid": 8, "tol": -1.0}, "tol must be finite and > 0"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        basins.map_basins("peaks", **kwargs)


def test_bad_surface():
    with pytest.raises(ValueError, match="unknown surface"):
        basins.map_basins("volcano", grid=8)
    with pytest.raises(ValueError, match="2D"):
        basins.map_basins("quadratic", grid=8)


def test_cli_basins_writes_everything(tmp_path, capsys):
    import json

    from gdjax.cli import main

    assert (
        main(["basins", "--grid", "48", "--steps", "400", "--out", str(tmp_path), "--no-progress"])
        == 0
    )
    data = json.loads((tmp_path / "basins.json").read_text())
    for key in [
        "surface",
        "domain",
        "rule",
        "steps",
        "tol",
        "starts",
        "devices",
        "minima",
        "critical_points",
        "fractions",
        "timing",
    ]:
        assert key in data, key
    assert data["starts"] == 48 * 48
    assert set(data["fractions"]) == {"0", "1", "2", "diverged", "not_converged"}
    assert sum(f["fraction"] for f in data["fractions"].values()) == pytest.approx(1.0)
    assert {"seconds", "restart_steps_per_second", "compile_seconds"} <= set(data["timing"])
    for name in ["basin_map.png", "convergence_time.png", "best_of_k.png", "report.html"]:
        assert (tmp_path / name).stat().st_size > 1000, name
    assert "Basins of peaks" in capsys.readouterr().out


def test_a_schedules_base_lr_beside_another_lr_is_refused(tmp_path, capsys):
    """`--schedule cosine:base_lr=5,... --lr 0.01` descended at 5: the spec's
    base_lr silently won over --lr."""
    from gdjax.cli import main
    from gdjax.cli.basins import parse_rule

    spec = "cosine:base_lr=5,max_steps=10"
    with pytest.raises(ValueError, match=r"sets base_lr=5 but --lr is 0.01: .* give --lr 5"):
        parse_rule(0.01, None, None, spec)
    rule, _ = parse_rule(5.0, None, None, spec)  # the same rate, given twice, agrees
    assert dict(rule.args)["base_lr"] == 5
    with pytest.raises(SystemExit) as info:
        main(["basins", "--grid", "8", "--schedule", spec, "--out", str(tmp_path / "r")])
    assert info.value.code == 2
    assert "give --lr 5 and leave base_lr out" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cli_basins_optimizer_and_schedule(tmp_path):
    import json

    from gdjax.cli import main

    assert (
        main(
            [
                "basins",
                "--starts",
                "500",
                "--steps",
                "200",
                "--optimizer",
                "sgd",
                "--momentum",
                "0.9",
                "--out",
                str(tmp_path / "a"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "sgd" in json.loads((tmp_path / "a" / "basins.json").read_text())["rule"]
    assert (
        main(
            [
                "basins",
                "--grid",
                "16",
                "--steps",
                "200",
                "--schedule",
                "cosine:max_steps=200,final_lr=0.001",
                "--lr",
                "0.02",
                "--out",
                str(tmp_path / "b"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "cosine" in json.loads((tmp_path / "b" / "basins.json").read_text())["rule"]
    argv = ["basins", "--grid", "8", "--steps", "50", "--lr", "0.05", "--no-progress"]
    assert (
        main([*argv, "--optimizer", "adam", "--setting", "b1=0.8", "--out", str(tmp_path / "c")])
        == 0
    )
    rule = json.loads((tmp_path / "c" / "basins.json").read_text())["rule"]
    assert rule == "optax adam (b1 0.8), lr 0.05"


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--surface", "volcano"], "unknown surface"),
        (["--grid", "0"], "--grid must be >= 1"),
        (["--domain", "1", "-1", "0", "1"], "low < high"),
        (["--lr", "0"], "--lr must be finite and > 0"),
        (["--tol", "-1"], "--tol must be finite and > 0"),
        (["--optimizer", "nope"], "invalid choice: 'nope'"),
        (["--optimizer", "chain"], "invalid choice: 'chain'"),
        (["--optimizer", "apply_updates"], "invalid choice: 'apply_updates'"),
        (["--schedule", ""], "--schedule is empty"),
        (["--seed", "-1"], r"--seed must be in \[0, 2\*\*32\)"),
        (["--bound", "0"], "--bound must be finite and > 0"),
        # above --grid 4096 a map goes to disk in tiles (tests/test_tiled.py), in float32
        (["--grid", "100000", "--x64"], "a tiled map runs in float32; leave out --x64"),
        (["--starts", "1e10"], r"need about .* GiB of memory"),
        (["--setting", "b1=0.8"], "--setting goes with --optimizer"),
        (["--optimizer", "adam", "--setting", "momentum=0.9"], "'adam' has no setting momentum"),
        (["--optimizer", "adam", "--setting", "b1=-1"], "b1 must be finite and >= 0"),
        (["--optimizer", "adam", "--setting", "b1"], "--setting takes NAME=VALUE"),
    ],
)
def test_cli_basins_bad_input(argv, match, tmp_path, capsys):
    """Bad input: one line, exit status 2, before any compute (nothing written)."""
    from gdjax.cli import main

    out = tmp_path / "out"
    with pytest.raises(SystemExit) as err:
        main(["basins", "--out", str(out), "--no-progress", *argv])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert re.search(match, message), message
    assert "Traceback" not in message
    assert not (out / "basins.json").exists()


def test_tied_global_minima_count_as_global():
    """Himmelblau's four minima (all f = 0) and six-hump camel's two (f = -1.0316)
    are all global: best-of-k is the chance of reaching any of them."""
    him = basins.map_basins("himmelblau", grid=48, steps=1000)
    assert len(him.minima) == 4 and him.global_minima == (0, 1, 2, 3)
    reached = np.isin(him.labels, [0, 1, 2, 3]).mean()
    assert him.p_global[0] == pytest.approx(reached) and reached > 0.95
    assert him.p_global[0] > him.fractions["0"][0] + 0.5  # not just minimum 0

    camel = basins.map_basins("six_hump_camel", grid=48, steps=2000)
    values = [m.value for m in camel.minima]
    assert camel.global_minima == (0, 1)
    assert values[0] == pytest.approx(values[1]) and values[2] > values[0] + 0.5
    p = camel.p_global[0]
    assert p == pytest.approx(camel.fractions["0"][0] + camel.fractions["1"][0])
    assert 0.45 < p < 0.55  # each basin about a quarter
    assert basins.best_of_k(p, [1])[0] == pytest.approx(p)

    peaks = basins.map_basins("peaks", grid=32, steps=500)
    assert peaks.global_minima == (0,)  # one global minimum: unchanged
    assert basins.global_minima((), 1e-6) == ()


def test_simulated_best_of_k_counts_every_global_label():
    labels = np.array([0, 1, 2, -1] * 250)
    sim = basins.simulate_best_of_k(
        labels, [1], key=jax.random.key(0), trials=20000, targets=(0, 1)
    )
    assert sim[0] == pytest.approx(0.5, abs=0.02)


def test_small_domain_far_minimum_is_not_diverged():
    """A converging run is never called diverged because it left a small domain."""
    b = basins.map_basins("himmelblau", grid=16, steps=2000, domain=((0, 0.01), (0, 0.01)))
    assert b.fractions["diverged"][0] == 0.0
    assert b.fractions["0"][0] == 1.0
    np.testing.assert_allclose(b.minima[0].location, (3.0, 2.0), atol=1e-6)
    # an explicit small bound does not change a run that settles either
    b = basins.map_basins("himmelblau", grid=8, steps=2000, domain=((0, 0.01), (0, 0.01)), bound=1)
    assert b.fractions["diverged"][0] == 0.0


def test_unsettled_run_beyond_bound_is_diverged():
    """A run that ends beyond the bound without settling is diverged, on both paths."""
    import optax

    import gdjax

    ramp = gdjax.surfaces.Surface(
        "ramp", lambda x: -x[0] + 0.0 * x[1], 2, ((-1.0, 1.0), (-1.0, 1.0)), (), False, "f = -x"
    )
    for rule in ("fixed", gdjax.optimizer(optax.sgd)):
        b = basins.map_basins(ramp, grid=4, steps=100, lr=1.0, rule=rule, bound=50.0)
        assert b.fractions["diverged"][0] == 1.0, rule
        b = basins.map_basins(ramp, grid=4, steps=100, lr=1.0, rule=rule)  # default 1e10
        assert b.fractions["not_converged"][0] == 1.0, rule


def test_diverged_runs_end_at_their_last_finite_point_on_every_path():
    """The fast kernel, the engine's (optax) path and descend agree on the end
    point of a diverged run: its last finite point, not its start."""
    import optax

    import gdjax

    him = gdjax.surfaces.get("himmelblau")
    fast = basins.map_basins("himmelblau", grid=8, lr=20.0, steps=50)
    engine = basins.map_basins(
        "himmelblau", grid=8, lr=20.0, steps=50, rule=gdjax.optimizer(optax.sgd)
    )
    ends = jax.vmap(lambda x: gdjax.descend(him, x, steps=50, lr=20.0).final)(fast.starts)
    assert fast.fractions["diverged"][0] == 1.0 and engine.fractions["diverged"][0] == 1.0
    assert fast.timing.refrozen == 64 and engine.timing.refrozen == 0  # frozen already
    assert np.all(np.isfinite(fast.final))
    assert np.all(np.abs(fast.final - fast.starts).max(axis=1) > 1.0)  # not the start
    np.testing.assert_allclose(fast.final, engine.final, rtol=1e-5)
    np.testing.assert_allclose(fast.final, np.asarray(ends), rtol=1e-5)


@pytest.mark.parametrize(
    ("argv", "outcome"),
    [
        (["--steps", "1"], "No start reached a minimum"),
        (["--lr", "1e30", "--steps", "20"], "Every start diverged"),
        (["--surface", "rosenbrock", "--lr", "1", "--steps", "50"], "Every start diverged"),
    ],
)
def test_report_renders_when_nothing_converges(argv, outcome, tmp_path):
    import json

    from gdjax.cli import main

    assert main(["basins", "--grid", "16", "--out", str(tmp_path), "--no-progress", *argv]) == 0
    data = json.loads((tmp_path / "basins.json").read_text())
    assert data["minima"] == [] and data["global_minima"] == []
    assert data["best_of_k"]["exact"] == [0.0] * len(data["best_of_k"]["k"])
    page = (tmp_path / "report.html").read_text()
    assert outcome in page


@pytest.mark.parametrize("steps", [300, 305])  # a whole number of check blocks, or not
def test_fast_path_matches_descend_final(steps):
    import gdjax

    peaks = surfaces.get("peaks")
    b1 = basins.map_basins(peaks, grid=6, steps=steps, lr=0.01, check_every=1)
    b10 = basins.map_basins(peaks, grid=6, steps=steps, lr=0.01, check_every=10)
    for i, x0 in enumerate(b1.starts):
        fin = gdjax.descend_final(peaks, x0, steps=steps, lr=0.01, tol=1e-3)
        np.testing.assert_allclose(b1.final[i], fin.params, rtol=1e-5, atol=1e-6)
        assert b1.converged_step[i] == int(fin.converged_step)
        k = int(fin.converged_step)
        expected = -1 if k < 0 else (0 if k == 0 else min(steps, -(-k // 10) * 10))
        # block checks see convergence only at block ends: the step is rounded up to
        # one, or later when a check in between happened to fail
        step = int(b10.converged_step[i])
        if k < 0:
            assert step == -1
        else:
            assert step == expected or (step >= k and (step % 10 == 0 or step == steps))
    np.testing.assert_array_equal(b1.labels, b10.labels)


def _fresh_python(code: str, env_extra: dict | None = None) -> list[str]:
    """Runs code in a new interpreter on the CPU, without the tests' XLA_FLAGS;
    returns the words it printed."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update({"JAX_PLATFORMS": "cpu", **(env_extra or {})})
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_use_all_cores_splits_the_cpu_only_before_jax_starts():
    import os

    cores = len(os.sched_getaffinity(0))
    # importing gdjax and its command line must not start JAX, or it would be too late
    split, count, again = _fresh_python(
        "import gdjax, gdjax.cli, jax; from jax._src import xla_bridge as xb;"
        "assert not xb.backends_are_initialized();"
        "s = gdjax.basins.use_all_cores(); print(s, jax.device_count(),"
        " gdjax.basins.use_all_cores())"
    )
    assert split == str(cores > 1) and int(count) == max(cores, 1) and again == "False"
    # too late once JAX has run, and never against the user's own device count
    late, count = _fresh_python(
        "import jax; jax.numpy.zeros(1); import gdjax;"
        "print(gdjax.basins.use_all_cores(), jax.device_count())"
    )
    assert (late, count) == ("False", "1")
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=3"}
    user, count = _fresh_python(
        "import gdjax, jax; print(gdjax.basins.use_all_cores(), jax.device_count())", flags
    )
    assert (user, count) == ("False", "3")


def test_progress_reports_start_and_every_chunk():
    calls = []
    basins.map_basins(
        "himmelblau",
        grid=40,
        steps=20,
        chunk_size=512,
        progress=lambda done, total: calls.append((done, total)),
    )
    # 1600 starts in 4 equal chunks of at most 512: the start, then every 400
    assert calls == [(0, 1600), (400, 1600), (800, 1600), (1200, 1600), (1600, 1600)]


def test_the_descent_time_leaves_compiling_out(monkeypatch):
    """Timing.seconds (and so the rate) counts the descent only: a slow
    compile shows in compile_seconds, not in seconds."""
    import time

    from gdjax.maps import runner

    compiled = runner._compiled

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return compiled(*args, **kwargs)

    monkeypatch.setattr(runner, "_compiled", slow)
    start = time.perf_counter()
    bmap = gdjax.basins.map_basins("peaks", grid=16, steps=20)
    wall = time.perf_counter() - start
    t = bmap.timing
    assert t.compile_seconds >= 0.5
    assert t.seconds <= wall - t.compile_seconds
    assert t.restart_steps_per_second == pytest.approx(16 * 16 * 20 / t.seconds)


@pytest.mark.parametrize(
    "domain, grid, message",
    [
        ([0.0, 1e300, 0.0, 1.0], 16, "does not fit in float32"),
        ([1e6, 1.0001e6, 0.0, 1.0], 1000, "starts are not distinct"),
    ],
)
def test_a_domain_the_dtype_cannot_hold_is_refused(domain, grid, message):
    """Every start of --domain 0 1e300 0 1 was inf in float32 ("100% diverged",
    exit 0); a grid finer than float32 there had repeated starts."""
    with pytest.raises(ValueError, match=message):
        basins.MapConfig("peaks", grid=grid, domain=(domain[:2], domain[2:]))


def test_best_of_k_refuses_what_is_not_a_probability_or_a_count():
    with pytest.raises(ValueError, match="probability in"):
        basins.best_of_k(1.5, [1, 2])
    with pytest.raises(ValueError, match="whole numbers >= 1"):
        basins.best_of_k(0.5, [0.5])
    np.testing.assert_allclose(basins.best_of_k(0.5, [1, 2]), [0.5, 0.75])


def test_an_empty_batch_of_rates_is_refused():
    with pytest.raises(ValueError, match="batch of hyperparameters is empty"):
        basins.map_basins("peaks", grid=8, lr=np.array([]))


@pytest.mark.parametrize("grid, chunk_size", [(999, None), (999, 1 << 18), (37, 100), (5, 3)])
def test_each_device_gets_an_even_number_of_starts(grid, chunk_size):
    """An odd number of starts per device ran 5.5x slower on the CPU (--grid
    999: 124,751 a device); chunks are rounded up to an even share."""
    for devices in sorted({1, min(2, jax.device_count()), jax.device_count()}):
        config = basins.MapConfig("peaks", grid=grid, chunk_size=chunk_size, devices=devices)
        share, rest = divmod(config.chunk, devices)
        assert rest == 0 and share % 2 == 0, (devices, config.chunk)


def test_labels_in_blocks_equal_the_nearest_minimum_of_every_point():
    """The host labeller works in cache-sized blocks; its labels equal the
    nearest minimum (the first on ties) within the claim radius, over
    several blocks, with two minima closer than the radius, NaN ends, ties,
    and diverged runs. The clustering's per-cell sums equal np.add.at's."""
    from gdjax.maps import critical
    from gdjax.maps.summary import DIVERGED, NOT_CONVERGED, CriticalPoint

    rng = np.random.default_rng(3)
    n = 3 * critical._BLOCK + 7
    # the last two are 1/64 apart, both binary fractions: exact ties between them
    centres = np.array([[0.5, 0.5], [0.51, 0.5], [-1.0, 2.0], [2.0, 2.0], [2.015625, 2.0]])
    centres = centres.astype(np.float32)
    final = (centres[rng.integers(0, 3, n)] + rng.normal(0, 0.01, (n, 2))).astype(np.float32)
    final[::97] = np.nan
    final[5] = [0.505, 0.5]  # about equidistant from the first two minima
    final[6] = [2.0078125, 2.0]  # exactly equidistant from the last two
    final[7] = [np.inf, 2.0]
    final[8] = [2.0, -np.inf]
    final[9] = [2.0078125, np.nan]
    converged = rng.random(n) < 0.8
    diverged = ~converged & (rng.random(n) < 0.3)
    converged[5:10], diverged[5:10] = True, False
    minima = tuple(CriticalPoint(tuple(map(float, c)), 0.0, (1.0, 1.0), "min") for c in centres)
    tol = 0.02
    labels = critical._label(final, converged, diverged, minima, tol)

    d2 = np.stack(
        [np.square(final[:, 0] - c[0]) + np.square(final[:, 1] - c[1]) for c in centres], axis=1
    )
    nearest = np.argmin(np.where(np.isnan(d2), np.inf, d2), axis=1)
    claimed = converged & (np.nanmin(np.where(np.isnan(d2), np.inf, d2), axis=1) < tol**2)
    expected = np.where(claimed, nearest, NOT_CONVERGED)
    expected[diverged] = DIVERGED
    np.testing.assert_array_equal(labels, expected)
    assert labels[5] == 0
    assert labels[6] == 3  # the first on a tie
    assert labels[7:10].tolist() == [NOT_CONVERGED] * 3
    assert {0, 1, 2, NOT_CONVERGED, DIVERGED} <= set(labels.tolist())

    pts = rng.normal(size=(5000, 2)).astype(np.float32)
    cell = np.round(pts / 0.3).astype(np.int64)
    cell -= cell.min(axis=0)
    key = cell[:, 0] * (int(cell[:, 1].max()) + 1) + cell[:, 1]
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), 2))
    np.add.at(sums, inverse.ravel(), pts)
    means = sums / counts[:, None]
    order = np.argsort(-counts, kind="stable")
    kept = critical._cluster(pts, 0.3)
    assert np.array_equal(kept[0], means[order[0]])  # bitwise: the same sums in the same order
    assert all(any(np.array_equal(k, m) for m in means) for k in kept)

    # cells counted (keys in a small range) or sorted (a wide one, or beyond int64):
    # np.unique's answer either way
    for key in (rng.integers(0, 300, 5000), rng.integers(0, 1 << 40, 5000), np.array([-5, 3, 3])):
        want = np.unique(key, return_inverse=True, return_counts=True)
        got = critical._unique(key)
        assert all(np.array_equal(a.ravel(), b) for a, b in zip(want, got, strict=True))


def test_reach_global_counts_every_global_minimum_over_the_last_axis():
    """One helper for the chance of a global minimum (the in-memory map and
    attractor labelling both call it): equal to counting with np.isin, floats
    for one map, arrays over a batch."""
    from gdjax.maps.summary import reach_global, wilson_interval

    labels = np.random.default_rng(5).integers(-3, 4, (3, 2, 500))
    for glob in ((), (0,), (0, 2)):
        batched = reach_global(labels, glob)
        want = wilson_interval(np.isin(labels, glob).sum(axis=-1), 500)
        for got, w in zip(batched, want, strict=True):
            np.testing.assert_array_equal(got, w)
        one = reach_global(labels[0, 0], glob)
        assert all(isinstance(v, float) for v in one)
        assert one.fraction == float(np.isin(labels[0, 0], glob).mean())
