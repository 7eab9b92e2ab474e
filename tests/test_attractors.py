"""gdjax.attractors: kinds, periods, Lyapunov exponents, canonical orbits,
bifurcation diagrams and period doublings, against closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import _orbits, surfaces
from gdjax import attractors as A

PEAKS_START = (0.25, -1.6)
# small runs: the closed forms below are reached in a few hundred steps
FAST = dict(transient=300, window=256, keep=8, max_period=16)


def _two_cycle(r: float) -> tuple[float, float]:
    """The double well's 2-cycle around +1 at rate r > 1: x - r(x^3 - x) = y,
    y - r(y^3 - y) = x with x + y != 0 give x^2 - xy + y^2 = 1 and
    xy = 1/r, so x, y = (sqrt(1 + 3/r) -+ sqrt(1 - 1/r)) / 2."""
    s, d = math.sqrt(1 + 3 / r), math.sqrt(1 - 1 / r)
    return (s - d) / 2, (s + d) / 2


# --------------------------------------------------------------------------
# The double well.


def test_double_well_surface():
    s = surfaces.get("double_well")
    assert s.dim == 1 and s.shape == () and s.domain == ((-2.0, 2.0),)
    assert [m.location for m in s.minima] == [(-1.0,), (1.0,)]
    assert all(m.is_global and m.value == -0.25 for m in s.minima)
    assert "double_well" in surfaces.__all__
    x = 1.3
    assert float(s(jnp.asarray(x))) == pytest.approx(x**4 / 4 - x**2 / 2)
    assert float(jax.grad(s.fn)(jnp.asarray(x))) == pytest.approx(x**3 - x, rel=1e-6)
    assert float(jax.hessian(s.fn)(jnp.asarray(1.0))) == pytest.approx(2.0)


def test_double_well_refused_by_2d_commands_as_quadratic(tmp_path, capsys):
    from gdjax.cli import main

    for name in ("quadratic", "double_well"):
        with pytest.raises(SystemExit) as e:
            main(["basins", "--surface", name, "--grid", "8", "--out", str(tmp_path / name)])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err == f"gdjax: error: a basin map needs a 2D surface; {name!r} is 1D"


# --------------------------------------------------------------------------
# Lyapunov exponents against closed forms (float64).


def test_quadratic_lyapunov_is_log_of_the_multiplier(x64):
    """From the minimum (which float64 keeps exactly) the exponent is
    ln|1 - lr f''|, below and above the stability limit 2/f'' = 1/3."""
    lrs = np.array([0.05, 0.1, 0.2, 0.3, 0.34, 0.4, 0.6])
    o = A.orbits("quadratic", 0.5, lrs, dtype="float64", **FAST)
    np.testing.assert_allclose(o.lyapunov, np.log(np.abs(1 - 6 * lrs)), rtol=0, atol=1e-6)
    assert np.all(o.kind == A.FIXED) and np.all(o.period == 1)
    assert o.lyapunov.dtype == np.float64


def test_2d_quadratic_lyapunov_follows_the_largest_multiplier(x64):
    """The tangent turns to the most expanding direction: the exponent is
    max_i ln|1 - lr a_i| (at lr 0.1 the flat direction dominates)."""
    a = np.array([1.0, 5.0])

    def f(p):
        return 0.5 * (a[0] * p[0] ** 2 + a[1] * p[1] ** 2)

    lrs = np.array([0.1, 0.3, 0.39, 0.5, 0.7])
    o = A.orbits(f, [0.0, 0.0], lrs, dtype="float64", **FAST)
    want = np.max(np.log(np.abs(1 - lrs[:, None] * a[None, :])), axis=1)
    np.testing.assert_allclose(o.lyapunov, want, rtol=0, atol=1e-6)
    assert np.all(o.minimum == -1)  # a function with no minima given


def test_momentum_state_is_part_of_the_map(x64):
    """Heavy ball on a x^2 / 2: the multipliers are the roots of z^2 - (1 +
    beta - lr a) z + beta; the tangent runs over the velocity too."""
    beta, a, lr = 0.5, 4.0, 0.9
    rule = gdjax.optimizer(optax.sgd, momentum=beta)
    o = A.orbits(lambda x: 0.5 * a * x[0] ** 2, [0.0], lr, rule=rule, dtype="float64", **FAST)
    z = np.roots([1.0, -(1 + beta - lr * a), beta])
    assert float(o.lyapunov) == pytest.approx(math.log(np.max(np.abs(z))), abs=1e-6)


# --------------------------------------------------------------------------
# Orbits, kinds and canonical records.

# double well at lr 1.1: starts reaching the 2-cycle around +1 (both phases),
# around -1, and one that overflows
WELL_STARTS = [1.2, 0.9, -1.2, -0.9, 1.05, 3.0]
PEAKS_LRS = [0.065, 0.068, 0.075, 0.09, 0.15, 0.2]


@pytest.fixture(scope="module")
def well():
    return A.orbits("double_well", WELL_STARTS, 1.1, **FAST)


@pytest.fixture(scope="module")
def peaks():
    """Two starts near the global minimum at the issue's rates (defaults)."""
    return A.orbits("peaks", [PEAKS_START, (0.2, -1.7)], PEAKS_LRS)


def test_paired_orbits_equal_each_rate_run_alone():
    """paired: start i at rate i only, one program over every pair; each run
    as when its rate's starts run alone in a batch of the same size, bit for
    bit (a run's last bits may depend on the batch's size, as XLA's CPU code
    does: map labelling keeps one size). A batch that does not pair is
    refused before any compute."""
    starts = np.asarray([PEAKS_START, (0.2, -1.7), (0.3, -1.55), (-0.3, 1.5)] * 4)
    lrs = np.repeat([0.068, 0.15, 0.2, 0.09], 4)
    o = A.orbits("peaks", starts, lrs, paired=True, **FAST)
    assert o.kind.shape == (16,) and o.cycle.shape[:1] == o.tail.shape[:1] == (16,)
    np.testing.assert_array_equal(o.lr, lrs.astype(np.float32))
    assert {A.PERIODIC, A.FIXED} <= set(o.kind.tolist())
    for r in np.unique(lrs):
        rows = np.flatnonzero(lrs == r)
        batch = np.concatenate([rows, np.repeat(rows[-1], 16 - len(rows))])  # 16 starts too
        alone = A.orbits("peaks", starts[batch], float(r), **FAST)  # axes (start,): one rate
        for name in ("kind", "period", "lyapunov", "centroid", "minimum", "distance", "cycle"):
            got, want = getattr(o, name)[rows], getattr(alone, name)[: len(rows)]
            np.testing.assert_array_equal(got, want, name)
        np.testing.assert_array_equal(o.tail[rows], alone.tail[: len(rows)])
    for bad in (dict(starts=starts, lrs=[0.1, 0.2]), dict(starts=PEAKS_START, lrs=0.1)):
        with pytest.raises(ValueError, match="paired runs start i at rate"):
            A.orbits("peaks", bad["starts"], bad["lrs"], paired=True)


def test_double_well_two_cycle_matches_the_closed_form(x64):
    """The 2-cycle at lr 1.1. From 1.0, the minimum, float64 stays on the
    fixed point: unstable at lr 1.1 (exponent ln|1 - 2 lr| = ln 1.2 > 0),
    superstable at lr 0.5 (the map's slope is exactly 0: exponent -inf)."""
    r = 1.1
    x, y = _two_cycle(r)
    assert x - r * (x**3 - x) == pytest.approx(y) and y - r * (y**3 - y) == pytest.approx(x)
    o = A.orbits("double_well", [1.2, 1.0], [r, 0.5], dtype="float64", **FAST)
    assert o.kind.tolist() == [[A.PERIODIC, A.FIXED], [A.FIXED, A.FIXED]]
    assert int(o.period[0, 0]) == 2
    np.testing.assert_allclose(o.cycle[0, 0, :2, 0], [x, y], rtol=0, atol=1e-9)
    assert np.all(np.isnan(o.cycle[0, 0, 2:]))
    assert int(o.minimum[0, 0]) == 1  # the minimum at +1
    assert float(o.centroid[0, 0, 0]) == pytest.approx((x + y) / 2, abs=1e-9)
    g = [1 + r - 3 * r * p**2 for p in (x, y)]  # the map's slope at the two points
    assert float(o.lyapunov[0, 0]) == pytest.approx(math.log(abs(g[0] * g[1])) / 2, abs=1e-6)
    assert float(o.lyapunov[1, 0]) == pytest.approx(math.log(1.2), abs=1e-12)
    assert o.lyapunov[1, 1] == -np.inf and float(o.cycle[1, 1, 0, 0]) == 1.0


def test_two_starts_on_one_orbit_give_one_record(well, peaks):
    """Starts reaching a cycle in different phases store it alike."""
    assert well.tail[0, -1, 0] != well.tail[1, -1, 0]  # opposite phases at the end
    np.testing.assert_allclose(well.cycle[0], well.cycle[1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(well.cycle[2, :2], -well.cycle[0, 1::-1], rtol=0, atol=1e-5)
    assert np.all(peaks.period[:, 2] == 2)  # lr 0.075
    np.testing.assert_allclose(peaks.cycle[0, 2], peaks.cycle[1, 2], rtol=0, atol=1e-4)


def test_distinct_table_labels_every_start(well):
    table = A.distinct(well)
    assert table.labels.tolist() == [0, 0, 1, 1, 0, 2]
    assert table.kind.tolist() == [A.PERIODIC, A.PERIODIC, A.DIVERGED]
    assert table.period.tolist() == [2, 2, 0] and table.minimum.tolist() == [1, 0, -1]
    assert table.count.tolist() == [3, 2, 1]
    assert table.describe(0) == "period 2 around minimum 1" and table.describe(2) == "diverged"
    x, y = _two_cycle(1.1)
    np.testing.assert_allclose(table.points[0, :2, 0], [x, y], atol=1e-5)
    np.testing.assert_allclose(table.centroid[:2, 0], [(x + y) / 2, -(x + y) / 2], atol=1e-5)
    # runs on one cycle agree exactly here; any tolerance keeps the two
    # minima's cycles apart
    assert A.distinct(well, tol=1e-30).labels.tolist() == table.labels.tolist()
    assert A.distinct(well, tol=10.0).labels.tolist() == table.labels.tolist()
    with pytest.raises(ValueError, match="tol must be finite and > 0"):
        A.distinct(well, tol=0.0)
    # across starts and rates at once: the batch shape is kept
    both = A.distinct(A.Orbits(*[np.stack([f, f]) for f in well[:-2]], well.rtol, well.chaos))
    assert both.labels.shape == (2, 6) and both.count.tolist() == [6, 4, 2]


def test_peaks_beyond_the_stability_limit(peaks):
    """From (0.25, -1.6): a fixed point at 0.065, 2-cycles around the global
    minimum at 0.068 and 0.075, period 4 at 0.09, chaos at 0.15 and 0.2."""
    kinds = [A.FIXED, A.PERIODIC, A.PERIODIC, A.PERIODIC, A.CHAOTIC, A.CHAOTIC]
    assert peaks.kind[0].tolist() == kinds
    assert peaks.period[0].tolist() == [1, 2, 2, 4, 0, 0]
    minima = surfaces.get("peaks").minima
    best = minima.index(surfaces.get("peaks").global_minimum)
    assert np.all(peaks.minimum[0] == best)
    assert np.all(peaks.lyapunov[0, :4] < 0)
    assert np.all(peaks.lyapunov[0, 4:] > 0.2)  # about +0.4 to +0.5
    assert np.all(np.isnan(peaks.cycle[0, 4:]))
    assert peaks.cycle.shape == (2, 6, A.MAX_PERIOD, 2)
    assert peaks.tail.shape == (2, 6, A.KEEP, 2)
    np.testing.assert_allclose(peaks.lr, PEAKS_LRS, rtol=1e-7)


def test_divergence_by_overflow_and_by_the_bound(well):
    assert well.kind[-1] == A.DIVERGED and well.period[-1] == 0 and well.minimum[-1] == -1
    assert np.isnan(well.lyapunov[-1]) and np.all(np.isnan(well.centroid[-1]))
    assert np.all(np.isfinite(well.tail[-1]))  # frozen at the last finite point


def test_bound_and_a_new_rate_or_transient_do_not_recompile():
    """|1 - 0.35 * 6| = 1.1: |x - 0.5| grows past the bound 10 long before
    overflow (diverged by the bound); new rates, starts and transients run
    the same compiled program."""
    kw = dict(window=256, keep=8, max_period=16, bound=10.0)
    o = A.orbits("quadratic", 1.0, [0.35, 0.1], transient=0, **kw)
    assert o.kind.tolist() == [A.DIVERGED, A.FIXED] and np.all(np.isfinite(o.tail))
    before = _orbits._program._cache_size()
    A.orbits("quadratic", 1.5, [0.3, 0.2], transient=10, **kw)
    A.orbits("quadratic", -0.7, [0.01, 0.02], transient=300, **kw)
    assert _orbits._program._cache_size() == before


# --------------------------------------------------------------------------
# Bifurcation diagrams and period doublings.


def test_bifurcation_over_rates_with_the_stability_limit():
    lrs = np.linspace(0.05, 0.1, 24)
    kw = dict(FAST, transient=600)
    b = A.bifurcation("peaks", PEAKS_START, lrs[::2], **kw)
    peaks = surfaces.get("peaks")
    assert b.nearest == peaks.minima.index(peaks.global_minimum)
    h = jax.hessian(peaks.fn)(jnp.asarray(peaks.global_minimum.location))
    assert b.stability_limit == pytest.approx(2 / float(np.max(np.linalg.eigvalsh(h))), rel=1e-5)
    assert 0.066 < b.stability_limit < 0.067
    below = b.lrs < b.stability_limit
    assert np.all(b.kind[below] == A.FIXED) and np.all(b.period[~below][:3] == 2)
    assert b.points.shape == (12, 8, 2) and b.lyapunov.shape == (12,)
    np.testing.assert_allclose(b.start, PEAKS_START)
    # in chunks of 12 (the same program): the same runs
    chunked = A.bifurcation("peaks", PEAKS_START, lrs, chunk_size=12, **kw)
    np.testing.assert_array_equal(chunked.period[::2], b.period)
    np.testing.assert_allclose(chunked.points[::2], b.points, rtol=1e-5)


# one compiled program per dtype: the scan and the refinement both run 15 rates
DOUBLING = dict(max_doublings=5, scan=15, sections=16)


def test_double_well_first_doublings(x64):
    """The 2-cycle is born at lr = 1 (f''(1) = 2), period 4 at sqrt(5) - 1."""
    d = A.period_doublings("double_well", 1.2, 0.9, 1.26, **DOUBLING)
    assert d.period.tolist() == [2, 4]
    assert abs(d.lr[0] - 1.0) < 1e-3 and abs(d.lr[1] - (math.sqrt(5) - 1)) < 1e-3
    assert np.all(d.lo <= d.hi) and np.all(d.hi - d.lo <= d.tol)
    f32 = A.period_doublings("double_well", 1.2, 0.9, 1.1, dtype="float32", **DOUBLING)
    assert f32.period.tolist() == [2] and abs(f32.lr[0] - 1.0) < 1e-3


def test_feigenbaum_ratios():
    np.testing.assert_allclose(A.feigenbaum([0.0, 4.0, 5.0, 5.25]), [4.0, 4.0])
    assert A.feigenbaum([1.0, 2.0]).shape == (0,)


def test_feigenbaum_ratio_of_the_double_well(x64):
    """The exact cascade's ratios are 4.5429, 4.6412, 4.6632 (Newton on the
    cycles' multipliers); the bisection's agree to 3e-3 with a short
    transient."""
    d = A.period_doublings("double_well", 1.2, 0.95, 1.302, transient=5000, **DOUBLING)
    assert d.period.tolist() == [2, 4, 8, 16, 32]
    np.testing.assert_allclose(A.feigenbaum(d), [4.5429, 4.6412, 4.6632], atol=3e-3)


# --------------------------------------------------------------------------
# Refusals, before any compute.


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lrs=[]), "lrs must not be empty"),
        (dict(lrs=[0.1, float("nan")]), "lrs must be finite and > 0"),
        (dict(lrs=[-0.1]), "lrs must be finite and > 0"),
        (dict(lrs=[0.0]), "lrs must be finite and > 0"),
        (dict(max_period=0), "max_period must be a positive integer"),
        (dict(transient=-1), "transient must be an integer >= 0"),
        (dict(keep=0), "keep must be a positive integer"),
        (dict(window=8, max_period=8), "window must be at least"),
        (dict(starts=[0.25, -1.6, 0.0]), "takes points of shape"),
        (dict(starts=[[0.1], [0.2]]), "takes points of shape"),
        (dict(starts=[float("inf"), 0.0]), "NaN or inf"),
        (dict(tol=0.0), "tol must be finite and > 0"),
        (dict(tol=-1e-3), "tol must be finite and > 0"),
        (dict(chaos=float("nan")), "chaos must be a finite number"),
        (dict(rule="time"), "rate as its parameter"),
        (dict(rule=optax.sgd(0.1)), "rate as its parameter"),
        (dict(dtype="int32"), "dtype must be float32 or float64"),
        (dict(bound=0.0), "bound must be finite and > 0"),
        (dict(minima=[[0.0, 0.0, 0.0]]), "minima must be finite points"),
        (dict(surface="banana"), "unknown surface"),
    ],
)
def test_orbits_refuse_bad_arguments(kwargs, match):
    args = dict(surface="peaks", starts=PEAKS_START, lrs=[0.1])
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        A.orbits(args.pop("surface"), args.pop("starts"), args.pop("lrs"), **args)


def test_doublings_and_bifurcation_refuse_bad_arguments():
    with pytest.raises(ValueError, match="lr_min must be below lr_max"):
        A.period_doublings("double_well", 1.2, 1.2, 0.9)
    with pytest.raises(ValueError, match="lr_min and lr_max must be finite and > 0"):
        A.period_doublings("double_well", 1.2, 0.0, 0.9)
    with pytest.raises(ValueError, match="tol must be finite and > 0"):
        A.period_doublings("double_well", 1.2, 0.9, 1.3, tol=0.0)
    with pytest.raises(ValueError, match="max_doublings must be"):
        A.period_doublings("double_well", 1.2, 0.9, 1.3, max_doublings=0)
    with pytest.raises(ValueError, match="takes points of shape"):
        A.period_doublings("double_well", [1.2, 1.0], 0.9, 1.3)
    with pytest.raises(ValueError, match="1-D array of rates"):
        A.bifurcation("peaks", PEAKS_START, [[0.1, 0.2]])
    with pytest.raises(ValueError, match="takes points of shape"):
        A.bifurcation("peaks", [PEAKS_START, PEAKS_START], [0.1])
