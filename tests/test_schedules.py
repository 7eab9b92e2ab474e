"""Hand-written schedules against their optax twins, closed forms, MXNet's and
PyTorch's formulas, and as vmapped populations."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import schedules as S

N = 60  # past the end of every phase below
COUNTS = jnp.arange(N + 1)

# every schedule of the lessons (the textbook chapter's settings) and variants
CASES = {
    "constant": S.constant(0.3),
    "factor": S.factor(2.0, 0.9, 1e-2),
    "factor_every": S.factor(0.5, 0.5, 0.0, every=7),
    "multi_factor": S.multi_factor(0.5, [15, 30], 0.5),
    "cosine": S.cosine(0.5, 20, 0.01),
    "cosine_warmup": S.cosine(0.5, 20, 0.01, warmup_steps=5),
    "cosine_warmup_begin": S.cosine(0.3, 30, 0.0, warmup_steps=4, warmup_begin_lr=0.05),
    "poly": S.poly(0.5, 20, 2.0, 0.01),
    "poly_warmup": S.poly(0.5, 25, 3.0, 0.0, warmup_steps=5),
    "linear_decay": S.linear_decay(0.3, 50),
    "warmup_factor": S.warmup(S.factor(2.0, 0.9, 1e-2), 5),
    "warmup_multi": S.warmup(S.multi_factor(0.5, [15, 30], 0.5), 3, 0.1),
    "warmup_constant_mode": S.warmup(S.cosine(0.5, 20, 0.01), 5, 0.05, warmup_mode="constant"),
    "offset": S.cosine(0.5, 20, 0.01, offset=1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_optax_twin_at_every_count(name):
    sched = CASES[name]
    twin = sched.optax()
    assert twin is not None
    ours = jax.jit(jax.vmap(sched))(COUNTS)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int counts and floats
        theirs = jax.jit(jax.vmap(twin))(COUNTS)
    assert ours.dtype == jnp.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7, err_msg=name)


def test_square_root_has_no_twin_and_matches_closed_form():
    s = S.square_root(1.0)
    assert s.optax() is None
    np.testing.assert_allclose(jax.vmap(s)(COUNTS), (np.arange(N + 1) + 1.0) ** -0.5, rtol=1e-6)


def test_hand_computed_values():
    np.testing.assert_allclose(
        [float(CASES["factor"](t)) for t in [0, 1, 2, 10, 100]],
        [2.0, 1.8, 1.62, 2.0 * 0.9**10, 0.01],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        [float(CASES["multi_factor"](t)) for t in [0, 14, 15, 29, 30, 45]],
        [0.5, 0.5, 0.25, 0.25, 0.125, 0.125],
        rtol=1e-7,
    )
    cos = CASES["cosine"]
    np.testing.assert_allclose(
        [float(cos(t)) for t in [0, 10, 20, 25]], [0.5, 0.255, 0.01, 0.01], rtol=1e-6
    )
    cw = CASES["cosine_warmup"]
    # linear 0 -> 0.5 over 5 steps, then cosine over the remaining 15
    expected = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    expected += [0.01 + 0.49 / 2 * (1 + math.cos(math.pi * k / 15)) for k in (1, 15)]
    np.testing.assert_allclose(
        [float(cw(t)) for t in [0, 1, 2, 3, 4, 5, 6, 20]], expected, rtol=1e-6, atol=1e-7
    )
    assert float(CASES["warmup_constant_mode"](4)) == pytest.approx(0.05)
    assert float(CASES["warmup_constant_mode"](5)) == pytest.approx(0.5)
    np.testing.assert_allclose(
        [float(CASES["poly"](t)) for t in [0, 10, 20, 30]],
        [0.5, 0.01 + 0.49 * 0.25, 0.01, 0.01],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        [float(CASES["linear_decay"](t)) for t in [0, 25, 50, 60]],
        [0.3, 0.15, 0.0, 0.0],
        rtol=1e-6,
        atol=1e-8,
    )


def test_first_update_uses_schedule_at_zero_in_optax():
    """optax's convention: the first update reads schedule(0)."""
    sched = S.multi_factor(0.5, [1], 0.1)
    tx = optax.sgd(learning_rate=sched)
    params = jnp.zeros(())
    state = tx.init(params)
    lrs = []
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int counts and floats
        for _ in range(3):
            updates, state = tx.update(jnp.ones(()), state, params)
            lrs.append(-float(updates))
    np.testing.assert_allclose(lrs, [0.5, 0.05, 0.05], rtol=1e-6)


# ---------------------------------------------------------------------------
# MXNet: the scheduler classes of mxnet/lr_scheduler.py (1.x), restated as
# plain stateful Python, called with num_update = 1, 2, ... as MXNet's
# optimizers do.


class MXWarmup:
    def __init__(self, base_lr, warmup_steps, warmup_begin_lr, warmup_mode):
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.warmup_begin_lr = warmup_begin_lr
        self.warmup_final_lr = base_lr
        self.warmup_mode = warmup_mode

    def get_warmup_lr(self, num_update):
        if self.warmup_mode == "linear":
            inc = (self.warmup_final_lr - self.warmup_begin_lr) * num_update / self.warmup_steps
            return self.warmup_begin_lr + inc
        return self.warmup_begin_lr


class MXFactor(MXWarmup):
    def __init__(self, step, factor=1, stop_factor_lr=1e-8, base_lr=0.01):
        super().__init__(base_lr, 0, 0, "linear")
        self.step, self.factor, self.stop_factor_lr, self.count = step, factor, stop_factor_lr, 0

    def __call__(self, num_update):
        while num_update > self.count + self.step:
            self.count += self.step
            self.base_lr *= self.factor
            if self.base_lr < self.stop_factor_lr:
                self.base_lr = self.stop_factor_lr
        return self.base_lr


class MXMultiFactor(MXWarmup):
    def __init__(
        self, step, factor=1, base_lr=0.01, warmup_steps=0, warmup_begin_lr=0, warmup_mode="linear"
    ):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        self.step, self.factor, self.cur_step_ind = list(step), factor, 0

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        while self.cur_step_ind <= len(self.step) - 1:
            if num_update > self.step[self.cur_step_ind]:
                self.cur_step_ind += 1
                self.base_lr *= self.factor
            else:
                return self.base_lr
        return self.base_lr


class MXPoly(MXWarmup):
    def __init__(
        self,
        max_update,
        base_lr=0.01,
        pwr=2,
        final_lr=0,
        warmup_steps=0,
        warmup_begin_lr=0,
        warmup_mode="linear",
    ):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        self.base_lr_orig, self.max_update, self.power = base_lr, max_update, pwr
        self.final_lr, self.max_steps = final_lr, max_update - warmup_steps

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update <= self.max_update:
            frac = 1 - (num_update - self.warmup_steps) / self.max_steps
            self.base_lr = self.final_lr + (self.base_lr_orig - self.final_lr) * frac**self.power
        return self.base_lr


class MXCosine(MXPoly):
    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update <= self.max_update:
            frac = (num_update - self.warmup_steps) / self.max_steps
            self.base_lr = (
                self.final_lr
                + (self.base_lr_orig - self.final_lr) * (1 + math.cos(math.pi * frac)) / 2
            )
        return self.base_lr


MX_CASES = [
    (
        MXFactor(step=10, factor=0.5, stop_factor_lr=0.02, base_lr=0.4),
        ("FactorScheduler", {"step": 10, "factor": 0.5, "stop_factor_lr": 0.02, "base_lr": 0.4}),
    ),
    (
        MXFactor(step=1, factor=0.9, stop_factor_lr=1e-2, base_lr=2.0),
        ("FactorScheduler", {"step": 1, "factor": 0.9, "stop_factor_lr": 1e-2, "base_lr": 2.0}),
    ),
    (
        MXMultiFactor(step=[15, 30], factor=0.5, base_lr=0.5),
        ("MultiFactorScheduler", {"step": [15, 30], "factor": 0.5, "base_lr": 0.5}),
    ),
    (
        MXMultiFactor(step=[15, 30], factor=0.5, base_lr=0.5, warmup_steps=5, warmup_begin_lr=0.1),
        (
            "MultiFactorScheduler",
            {
                "step": [15, 30],
                "factor": 0.5,
                "base_lr": 0.5,
                "warmup_steps": 5,
                "warmup_begin_lr": 0.1,
            },
        ),
    ),
    (
        MXPoly(max_update=40, base_lr=0.5, pwr=2, final_lr=0.01),
        ("PolyScheduler", {"max_update": 40, "base_lr": 0.5, "pwr": 2, "final_lr": 0.01}),
    ),
    (
        MXPoly(max_update=40, base_lr=0.5, pwr=1, warmup_steps=5),
        ("PolyScheduler", {"max_update": 40, "base_lr": 0.5, "pwr": 1, "warmup_steps": 5}),
    ),
    (
        MXCosine(max_update=20, base_lr=0.3, final_lr=0.01),
        ("CosineScheduler", {"max_update": 20, "base_lr": 0.3, "final_lr": 0.01}),
    ),
    (
        MXCosine(max_update=20, base_lr=0.5, final_lr=0.01, warmup_steps=5),
        (
            "CosineScheduler",
            {"max_update": 20, "base_lr": 0.5, "final_lr": 0.01, "warmup_steps": 5},
        ),
    ),
    (
        MXCosine(
            max_update=20,
            base_lr=0.5,
            final_lr=0.01,
            warmup_steps=5,
            warmup_mode="constant",
            warmup_begin_lr=0.05,
        ),
        (
            "CosineScheduler",
            {
                "max_update": 20,
                "base_lr": 0.5,
                "final_lr": 0.01,
                "warmup_steps": 5,
                "warmup_mode": "constant",
                "warmup_begin_lr": 0.05,
            },
        ),
    ),
]


@pytest.mark.parametrize("case", range(len(MX_CASES)))
def test_from_mxnet_matches_mxnet_formulas(case):
    mx, (name, kwargs) = MX_CASES[case]
    expected = [mx(n) for n in range(1, N + 2)]  # num_update = count + 1
    ours = jax.jit(jax.vmap(S.from_mxnet(name, **kwargs)))(COUNTS)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-8)


def test_mxnet_convention_differs_from_optax_by_one_count():
    ours = S.cosine(0.3, 20, 0.01)
    mx = S.from_mxnet("CosineScheduler", max_update=20, base_lr=0.3, final_lr=0.01)
    np.testing.assert_allclose(jax.vmap(mx)(COUNTS[:-1]), jax.vmap(ours)(COUNTS[1:]), rtol=1e-6)
    assert float(mx(0)) < float(ours(0)) == pytest.approx(0.3)


def test_from_mxnet_errors():
    with pytest.raises(ValueError, match="unknown MXNet scheduler"):
        S.from_mxnet("StepLR", step=3)
    with pytest.raises(ValueError, match="not supported"):
        S.from_mxnet("FactorScheduler", step=3, factor=0.5, warmup_steps=2)
    with pytest.raises(ValueError, match="unknown arguments"):
        S.from_mxnet("CosineScheduler", max_update=10, gamma=0.1)


# ---------------------------------------------------------------------------
# PyTorch's closed forms (torch.optim.lr_scheduler docs), base lr 0.5.

K = np.arange(N + 1)


def test_pytorch_steplr():
    expected = 0.5 * 0.3 ** np.floor(K / 7)
    ours = jax.vmap(S.factor(0.5, 0.3, 0.0, every=7))(COUNTS)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_pytorch_multisteplr():
    expected = 0.5 * 0.1 ** ((K >= 15).astype(int) + (K >= 40))
    np.testing.assert_allclose(
        jax.vmap(S.multi_factor(0.5, [15, 40], 0.1))(COUNTS), expected, rtol=1e-6
    )


def test_pytorch_cosineannealinglr_up_to_tmax():
    t_max, eta_min = 25, 0.02
    k = K[: t_max + 1]
    expected = eta_min + (0.5 - eta_min) * (1 + np.cos(np.pi * k / t_max)) / 2
    ours = jax.vmap(S.cosine(0.5, t_max, eta_min))(COUNTS[: t_max + 1])
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_pytorch_polynomiallr():
    total, power = 30, 1.5
    expected = 0.5 * (1 - np.minimum(K, total) / total) ** power
    np.testing.assert_allclose(
        jax.vmap(S.poly(0.5, total, power))(COUNTS), expected, rtol=1e-6, atol=1e-8
    )


def test_pytorch_linearlr_is_a_warmup():
    start_factor, total = 1 / 3, 4  # LinearLR's defaults ramp to end_factor = 1
    expected = 0.5 * (start_factor + (1 - start_factor) * np.minimum(K, total) / total)
    ours = jax.vmap(S.warmup(S.constant(0.5), total, warmup_begin_lr=0.5 * start_factor))(COUNTS)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


# ---------------------------------------------------------------------------
# Populations.


def test_vmapped_population_equals_each_alone():
    pop = [
        S.constant(0.3),
        S.square_root(0.1),
        S.multi_factor(0.5, [15, 30], 0.5),
        S.cosine(0.3, 20, 0.01),
        S.cosine(0.3, 20, 0.01, warmup_steps=5),
        S.factor(2.0, 0.9, 1e-2),
    ]
    batch = S.stack(pop)
    assert batch.family.shape == (6,) and batch.milestones.shape == (6, 2)
    grid = jax.jit(jax.vmap(jax.vmap(S.evaluate, in_axes=(None, 0)), in_axes=(0, None)))(
        batch, COUNTS
    )
    assert grid.shape == (6, N + 1)
    for i, s in enumerate(pop):
        np.testing.assert_allclose(grid[i], jax.vmap(s)(COUNTS), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(S.evaluate(s.params(), 17), s(17), rtol=1e-6)


def test_hyperparameters_are_traceable():
    def lr_at_10(base_lr):
        return S.linear_decay(base_lr, 20)(10)

    np.testing.assert_allclose(jax.vmap(lr_at_10)(jnp.array([0.2, 0.4])), [0.1, 0.2], rtol=1e-6)


# ---------------------------------------------------------------------------
# Registry, errors, and the descent engine.


def test_make_builds_every_name():
    assert set(S.names()) == {
        "constant",
        "square_root",
        "factor",
        "multi_factor",
        "cosine",
        "poly",
        "linear_decay",
    }
    s = S.make("cosine", base_lr=0.5, max_steps=20, final_lr=0.01, warmup_steps=5)
    np.testing.assert_allclose(jax.vmap(s)(COUNTS), jax.vmap(CASES["cosine_warmup"])(COUNTS))
    w = S.make("factor", base_lr=2.0, factor=0.9, final_lr=1e-2, warmup_steps=5)
    np.testing.assert_allclose(jax.vmap(w)(COUNTS), jax.vmap(CASES["warmup_factor"])(COUNTS))
    assert repr(S.make("multi_factor", base_lr=0.5, milestones=[15, 30], factor=0.5)) == (
        "multi_factor(base_lr=0.5, milestones=(15, 30), factor=0.5)"
    )


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("constant", {"base_lr": 0.0}, "base_lr must be finite and > 0"),
        ("constant", {"base_lr": -1.0}, "base_lr must be finite and > 0"),
        ("square_root", {"base_lr": float("nan")}, "base_lr must be finite"),
        ("cosine", {"base_lr": 0.5, "max_steps": 0}, "max_steps must be a positive integer"),
        ("poly", {"base_lr": 0.5, "max_steps": -5}, "max_steps must be a positive integer"),
        ("factor", {"base_lr": 0.5, "factor": 1.5}, r"factor must be in \(0, 1\]"),
        ("factor", {"base_lr": 0.5, "factor": 0.0}, r"factor must be in \(0, 1\]"),
        ("multi_factor", {"base_lr": 0.5, "milestones": [30, 15], "factor": 0.5}, "increasing"),
        ("multi_factor", {"base_lr": 0.5, "milestones": [15, 15], "factor": 0.5}, "increasing"),
        ("cosine", {"base_lr": 0.5, "max_steps": 20, "warmup_steps": 20}, "shorter than"),
        ("poly", {"base_lr": 0.5, "max_steps": 10, "warmup_steps": 12}, "shorter than"),
        ("cosine", {"base_lr": 0.5, "max_steps": 20, "gamma": 0.1}, "unknown: gamma"),
        ("warmdown", {}, "unknown schedule 'warmdown'.*cosine"),
        (
            "factor",
            {"base_lr": 0.5, "factor": 0.5, "warmup_steps": 3, "warmup_mode": "cubic"},
            "mode",
        ),
        ("cosine", {"max_steps": 20}, "missing"),
    ],
)
def test_bad_parameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        S.make(name, **params)


# ---------------------------------------------------------------------------
# Specs: one vocabulary, written back canonically.

SPEC_CASES = {
    **CASES,
    "square_root": S.square_root(0.1),
    "square_root_offset": S.square_root(0.1, offset=2),
    "warmup_cosine_linear": S.warmup(S.cosine(0.5, 20, 0.01), 5),
    "warmup_poly": S.warmup(S.poly(0.5, 20, 2.0, 0.01), 4, 0.1),
    "warmup_linear_decay": S.warmup(S.linear_decay(0.3, 10), 4),
    "warmup_constant": S.warmup(S.constant(0.5), 4, 0.1, "constant"),
    "multi_factor_one": S.multi_factor(0.5, [15], 0.1),
    "every_offset": S.factor(0.5, 0.5, 0.1, every=3, offset=2),
    "int_base_lr": S.poly(2, 30, 1, 0),
    **{f"mxnet_{i}": S.from_mxnet(name, **kw) for i, (_, (name, kw)) in enumerate(MX_CASES)},
}


@pytest.mark.parametrize("name", sorted(SPEC_CASES))
def test_spec_round_trip(name):
    """parse_spec(s.spec) has the same fields and the same value at every count;
    a factory's result comes back equal (name and arguments too)."""
    s = SPEC_CASES[name]
    back = S.parse_spec(s.spec)
    assert back.fields == s.fields and back.family == s.family
    assert back.spec == s.spec
    np.testing.assert_array_equal(jax.jit(jax.vmap(back))(COUNTS), jax.jit(jax.vmap(s))(COUNTS))
    # a linear warmup of cosine or poly comes back as their own warmup (max_steps
    # counting it); from_mxnet's results come back as gdjax's factories
    if not name.startswith("mxnet_") and name not in ("warmup_cosine_linear", "warmup_poly"):
        assert back == s
    assert s.spec.partition(":")[0] in S.names()
    assert "min_lr" not in s.spec and "steps=" not in s.spec.replace("_steps=", "")


def test_spec_is_canonical():
    """Schedules that compute the same thing spell themselves the same way."""
    assert S.warmup(S.cosine(0.5, 20, 0.01), 5).spec == S.cosine(0.5, 25, 0.01, warmup_steps=5).spec
    mx = S.from_mxnet("FactorScheduler", step=2, factor=0.5, stop_factor_lr=0.1, base_lr=1.0)
    assert (
        mx.spec
        == S.factor(1.0, 0.5, 0.1, every=2).spec
        == ("factor:base_lr=1.0,factor=0.5,final_lr=0.1,every=2")
    )
    assert S.from_mxnet("CosineScheduler", max_update=20, base_lr=0.3, final_lr=0.01).spec == (
        "cosine:base_lr=0.3,max_steps=20,final_lr=0.01,offset=1"
    )
    assert S.constant(0.3).spec == "constant:base_lr=0.3"
    assert S.multi_factor(0.5, [15, 30], 0.5).spec == (
        "multi_factor:base_lr=0.5,milestones=15/30,factor=0.5"
    )


def test_one_vocabulary_old_names_are_refused():
    for name, params, old in [
        ("constant", {"lr": 0.3}, "lr"),
        ("factor", {"base_lr": 2.0, "factor": 0.9, "min_lr": 0.01}, "min_lr"),
        ("multi_factor", {"base_lr": 0.5, "steps": [15], "factor": 0.5}, "steps"),
        ("linear_decay", {"base_lr": 0.3, "total_steps": 30}, "total_steps"),
    ]:
        with pytest.raises(ValueError, match=f"unknown: {old}$"):
            S.make(name, **params)
    with pytest.raises(ValueError, match="unknown: lr"):
        S.parse_spec("constant:lr=0.3")
    assert S.FAMILIES == ("constant", "square_root", "factor", "multi_factor", "cosine", "poly")
    assert not hasattr(S, "KINDS")
    assert S.linear_decay(0.3, 10).family == "poly"


def test_make_constant_warmup_of_cosine_counts_it_in_max_steps():
    """warmup_mode reaches cosine and poly too (it used to be dropped silently)."""
    s = S.make(
        "cosine",
        base_lr=0.5,
        max_steps=25,
        final_lr=0.01,
        warmup_steps=5,
        warmup_begin_lr=0.05,
        warmup_mode="constant",
    )
    assert s == S.warmup(S.cosine(0.5, 20, 0.01), 5, 0.05, "constant")
    assert [round(float(s(t)), 6) for t in (0, 4, 5, 25)] == [0.05, 0.05, 0.5, 0.01]
    with pytest.raises(ValueError, match="shorter than max_steps"):
        S.make("poly", base_lr=0.5, max_steps=5, warmup_steps=5, warmup_mode="constant")


def test_make_applies_the_offset_after_the_warmup():
    s = S.make("multi_factor", base_lr=0.5, milestones=[4], factor=0.5, warmup_steps=2, offset=1)
    # read at count + 1: the ramp 0 -> 0.5 over 2 counts, then the decay at t = count + 1 - 2 >= 4
    expected = [0.25, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    np.testing.assert_allclose(jax.vmap(s)(jnp.arange(7)), expected, rtol=1e-7)
    with pytest.raises(ValueError, match="apply warmup before the offset"):
        S.warmup(S.constant(0.5, offset=1), 2)


def test_from_mxnet_refuses_a_step_inside_the_warmup():
    """MXNet ramps to base_lr and applies such a step after the ramp; a shifted
    milestone at or below 0 would ramp to the decayed rate instead."""
    with pytest.raises(ValueError, match=r"step inside the warmup \(3 < warmup_steps 5\)"):
        S.from_mxnet("MultiFactorScheduler", step=[3, 30], factor=0.5, warmup_steps=5)
    S.from_mxnet("MultiFactorScheduler", step=[5, 30], factor=0.5, warmup_steps=5)


def test_spec_errors():
    with pytest.raises(ValueError, match="must be a number"):
        S.parse_spec("cosine:base_lr=0.3,max_steps=x")
    with pytest.raises(ValueError, match="key=value"):
        S.parse_spec("cosine:base_lr")
    with pytest.raises(ValueError, match="warmup_mode must be"):
        S.parse_spec("factor:base_lr=1,factor=0.5,warmup_steps=2,warmup_mode=cubic")
    with pytest.raises(ValueError, match="spec is text"):
        S.parse_spec(0.3)


def test_schedule_as_descent_rule_shares_compiled_program():
    from gdjax.descent import _descend

    quad = gdjax.surfaces.get("quadratic")
    traj = gdjax.descend(quad, 2.0, steps=30, rule=S.cosine(0.1, 20, 0.01))
    np.testing.assert_allclose(
        traj.lr, jax.vmap(S.cosine(0.1, 20, 0.01))(jnp.arange(30)), rtol=1e-6
    )
    before = _descend._cache_size()
    gdjax.descend(quad, 1.0, steps=30, rule=S.cosine(0.1, 20, 0.01))  # equal, built anew
    assert _descend._cache_size() == before


def test_time_rule_is_the_linear_decay_schedule():
    quad = gdjax.surfaces.get("quadratic")
    a = gdjax.descend(quad, 2.0, steps=25, lr=0.2, rule="time")
    b = gdjax.descend(quad, 2.0, steps=25, rule=S.linear_decay(0.2, 25))
    np.testing.assert_array_equal(a.params, b.params)


_FAMILY_EXAMPLES = {
    "constant": dict(base_lr=0.3),
    "square_root": dict(base_lr=0.3),
    "factor": dict(base_lr=0.3, factor=0.9, final_lr=0.01, every=2),
    "multi_factor": dict(base_lr=0.3, milestones=(3, 6), factor=0.5),
    "cosine": dict(base_lr=0.3, max_steps=10, final_lr=0.01),
    "poly": dict(base_lr=0.3, max_steps=10, power=2.0, final_lr=0.01),
}


def test_the_family_registry_is_one_record_per_family():
    """FAMILIES, the formulas, the spec keys and the factories come from one
    record each: every family's factory builds a schedule of that family whose
    spec names exactly its keys (and reads back equal)."""
    assert S.FAMILIES == tuple(S.REGISTRY)
    examples = _FAMILY_EXAMPLES
    assert set(examples) == set(S.REGISTRY)
    for name, family in S.REGISTRY.items():
        s = family.factory(**examples[name])
        assert s.family == name
        assert [k for k, _ in s.args] == list(family.keys)
        again = S.parse_spec(s.spec)
        for count in (0, 1, 4, 11):
            assert float(again(count)) == float(s(count))
            assert float(S.evaluate(s.params(), count)) == pytest.approx(float(s(count)), rel=1e-6)


def test_a_spec_that_repeats_a_parameter_is_refused():
    with pytest.raises(ValueError, match="base_lr is given twice"):
        S.parse_spec("cosine:base_lr=0.1,base_lr=5,max_steps=10")


@pytest.mark.parametrize("name", sorted(S.REGISTRY))
def test_a_negative_count_reads_as_zero(name):
    """Before the first update the rate is the first one, never negative."""
    s = S.make(name, **_FAMILY_EXAMPLES[name])
    assert float(s(-5)) == float(s(0)) > 0
    w = S.warmup(S.constant(0.3), 4)
    assert float(w(-3)) == float(w(0)) == 0.0
