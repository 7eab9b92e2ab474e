"""One engine: hyperparameters are data (no recompiles), batches of them are one
program, and every entry point agrees with every other on every rule."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import basins, schedules, surfaces
from gdjax.maps import runner

PEAKS = surfaces.get("peaks")
QUAD = surfaces.get("quadratic")
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
    """Counts XLA backend compiles inside the block (jax.monitoring events)."""
    events = []

    def listener(name, _duration, **_):
        if name == COMPILE_EVENT:
            events.append(name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def test_compile_counter_counts():
    """The counter itself can fail: a new step count is a new program."""
    gdjax.descend(QUAD, 1.0, steps=7, lr=0.1)
    with count_compiles() as n:
        gdjax.descend(QUAD, 1.0, steps=8, lr=0.1)
    assert len(n) >= 1


# each case: (rule, lr) pairs that must share one compiled program
SAME_PROGRAM = {
    "lr": [("fixed", 0.1), ("fixed", 0.02), ("time", 0.05)],
    "schedule numbers and family": [
        (schedules.cosine(0.1, 40, 0.01), None),
        (schedules.cosine(0.3, 25, 0.0), None),
        (schedules.poly(0.2, 30, 2.0, 0.001), None),
        (schedules.constant(0.05), None),
    ],
    "optimizer settings": [
        (gdjax.optimizer(optax.sgd, momentum=0.9), 0.02),
        (gdjax.optimizer(optax.sgd, momentum=0.5), 0.05),
    ],
    "adam betas": [
        (gdjax.optimizer(optax.adam, b1=0.9, b2=0.999), 0.05),
        (gdjax.optimizer(optax.adam, b1=0.8, b2=0.99), 0.1),
    ],
}


@pytest.mark.parametrize("case", list(SAME_PROGRAM))
def test_no_recompile_for_new_values(case):
    x0 = jnp.array([0.3, -0.4])
    (rule0, lr0), *others = SAME_PROGRAM[case]
    calls = {
        "descend": lambda r, lr, tol, bound: gdjax.descend(
            PEAKS, x0, steps=20, lr=lr, rule=r, bound=bound
        ),
        "descend_final": lambda r, lr, tol, bound: gdjax.descend_final(
            PEAKS, x0, steps=20, lr=lr, rule=r, tol=tol, bound=bound
        ),
        "sweep": lambda r, lr, tol, bound: gdjax.sweep(
            PEAKS, jnp.stack([x0, -x0]), lr, steps=20, rules=r, tol=tol, bound=bound
        ),
        "map_basins": lambda r, lr, tol, bound: basins.map_basins(
            PEAKS, grid=8, steps=20, lr=lr, rule=r, tol=tol, bound=bound
        ),
    }
    for name, call in calls.items():
        # compiles the descent, and the labelling's Newton steps (which run
        # only when some start converged)
        call(rule0, lr0, 1e-3, 1e10)
        call(rule0, lr0, 3e-1, 1e10)
        with count_compiles() as n:
            for rule, lr in others:
                call(rule, lr, 1e-3, 1e10)
            call(rule0, lr0, 2e-1, 1e3)  # tolerance and bound are data too
        assert len(n) == 0, f"{name}: {len(n)} new compiles for new {case}"


def test_batches_of_hyperparameters_are_one_program_equal_to_single_runs():
    def descent_programs():  # the compiled chunk programs (not the re-runs of pairs)
        return sum(1 for key in runner._COMPILED if not key[0][-1])  # program[-1]: paired

    lrs = jnp.array([0.005, 0.05, 0.3])
    before = descent_programs()
    batch = basins.map_basins(PEAKS, grid=12, steps=150, lr=lrs)
    assert descent_programs() == before + 1  # three rates, one program
    assert batch.batch == (3,) and batch.labels.shape == (3, 144)
    assert batch.label_grid().shape == (3, 12, 12)
    np.testing.assert_array_equal(batch.hyperparameters["lr"], np.asarray(lrs))
    assert batch.fractions.fraction.shape == (3, len(batch.fractions))
    assert batch.config.rule == "fixed lr 0.005..0.3 (3 values)"
    assert batch.at(1).config.rule == "fixed lr 0.05"
    assert batch.at(1).config.lr == pytest.approx(0.05)  # as given: float32 here
    for i, lr in enumerate(lrs):
        single = basins.map_basins(PEAKS, grid=12, steps=150, lr=float(lr))
        one = batch.at(i)
        np.testing.assert_allclose(one.final, single.final, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(one.converged_step, single.converged_step)
        # minima are found once for the whole batch: compare by location
        loc = np.array([m.location for m in batch.minima] + [(np.nan, np.nan)] * 2)
        loc_single = np.array([m.location for m in single.minima] + [(np.nan, np.nan)] * 2)
        np.testing.assert_allclose(loc[one.labels], loc_single[single.labels], atol=1e-6)
        assert one.fractions["diverged"] == single.fractions["diverged"]
    # new values for the batch: the same program
    known = descent_programs()
    basins.map_basins(PEAKS, grid=12, steps=150, lr=lrs * 0.5)
    assert descent_programs() == known


def test_lr_by_momentum_grid_in_one_sweep():
    lrs = jnp.array([0.01, 0.05])
    moms = jnp.array([0.0, 0.5, 0.9])
    rule = gdjax.optimizer(optax.sgd, momentum=moms)
    sw = gdjax.sweep(PEAKS, jnp.array([[0.3, -0.4]]), lrs[:, None], steps=40, rules=rule)
    assert sw.value.shape == (1, 1, 2, 3, 1, 2)
    np.testing.assert_array_equal(sw.settings["momentum"], np.broadcast_to(moms, (2, 3)))
    bmap = basins.map_basins(PEAKS, grid=4, steps=40, lr=lrs[:, None], rule=rule)
    assert bmap.batch == (2, 3) and bmap.labels.shape == (2, 3, 16)
    assert bmap.at(1, 2).config.rule == "optax sgd (momentum 0.9), lr 0.05"
    for i, lr in enumerate(lrs):
        for j, m in enumerate(moms):
            fin = gdjax.descend_final(
                PEAKS,
                jnp.array([0.3, -0.4]),
                steps=40,
                lr=lr,
                rule=gdjax.optimizer(optax.sgd, momentum=float(m)),
            )
            np.testing.assert_allclose(sw.value[0, 0, i, j, 0], fin.params, rtol=1e-6)


QUARTIC = surfaces.Surface(
    "quartic", lambda p: p[0] ** 4 + p[1] ** 4, 2, ((-3.0, 3.0), (-3.0, 3.0)), (), False, "x^4+y^4"
)

BOWL = surfaces.Surface(
    "bowl", lambda p: p[0] ** 2 + p[1] ** 2, 2, ((-3.0, 3.0), (-3.0, 3.0)), (), False, "x^2+y^2"
)

# (surface, rule, lr, bound)
ALL_RULES = [
    (PEAKS, "fixed", 0.01, 1e10),
    (PEAKS, "time", 0.02, 1e10),
    (PEAKS, "grad", 0.01, 1e10),
    (PEAKS, schedules.cosine(0.02, 200, 0.001), None, 1e10),
    (PEAKS, gdjax.optimizer(optax.sgd, momentum=0.9), 0.005, 1e10),
    (PEAKS, gdjax.optimizer(optax.adam), 0.05, 1e10),
    (PEAKS, optax.rmsprop(0.01), None, 1e10),
    (PEAKS, optax.exponential_decay(0.03, 50, 0.5), None, 1e10),
    (BOWL, "fixed", 1.1, 1e10),  # |x| grows 1.2-fold a step: beyond the bound, finite
    (QUARTIC, "fixed", 0.2, 1e10),  # overflows to inf from the outer starts
    (QUARTIC, gdjax.optimizer(optax.sgd, momentum=0.5), 0.2, 1e10),
]


@pytest.mark.parametrize(
    ("surface", "rule", "lr", "bound"), ALL_RULES, ids=[f"{i}" for i in range(len(ALL_RULES))]
)
def test_descend_final_and_map_basins_agree_on_every_rule(surface, rule, lr, bound):
    """The done-when test of the one engine: finals, convergence steps and
    divergence from descend_final and map_basins, run by run (the fast path
    for plain rules, the stepper for optax ones; diverged runs included)."""
    kw = dict(steps=200, lr=lr, rule=rule, bound=bound)
    bmap = basins.map_basins(surface, grid=5, check_every=1, **kw)
    fins = jax.vmap(lambda x: gdjax.descend_final(surface, x, tol=1e-3, **kw))(
        jnp.asarray(bmap.starts)
    )
    diverged = bmap.labels == basins.DIVERGED
    np.testing.assert_array_equal(diverged, np.asarray(fins.diverged))
    np.testing.assert_array_equal(bmap.converged_step >= 0, np.asarray(fins.converged))
    assert np.all(np.asarray(fins.converged)[bmap.labels >= 0])  # a labelled run converged
    np.testing.assert_array_equal(bmap.converged_step, np.asarray(fins.converged_step))
    assert np.all(np.isfinite(bmap.final))
    if surface is not PEAKS:
        assert diverged.any()
    np.testing.assert_allclose(bmap.final, np.asarray(fins.params), rtol=1e-5, atol=1e-6)


def test_same_kind_of_update_with_other_settings_names_or_shapes():
    """A compiled map is reused only for the same hyperparameter structure:
    adam with and without explicit betas, multi_factor with 1 and 2 milestones."""
    b = basins.map_basins(PEAKS, grid=4, steps=10, lr=0.05, rule=gdjax.optimizer(optax.adam))
    b2 = basins.map_basins(
        PEAKS, grid=4, steps=10, lr=0.05, rule=gdjax.optimizer(optax.adam, b1=0.9, b2=0.999)
    )
    # the betas as constants or as traced arrays: equal to the last bits
    np.testing.assert_allclose(b.final, b2.final, rtol=1e-4)
    one = basins.map_basins(
        PEAKS, grid=4, steps=10, lr=None, rule=schedules.multi_factor(0.1, [5], 0.5)
    )
    two = basins.map_basins(
        PEAKS, grid=4, steps=10, lr=None, rule=schedules.multi_factor(0.1, [5, 20], 0.5)
    )
    np.testing.assert_array_equal(one.final, two.final)  # the second milestone is past the end
