"""gdjax.fractal on cases with known answers: a smooth boundary, the
McDonald-Grebogi-Ott-Yorke map's Weierstrass-curve boundary, Newton's
method's Wada basins."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdjax import basins, fractal

LOG2 = math.log(2)


def _disc(n=1024):
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n
    return ((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.3**2).astype(np.int32)


def test_boundary_pixels_exactly():
    lab = np.zeros((4, 4), np.int32)
    lab[:, 2:] = 1
    expected = np.zeros((4, 4), bool)
    expected[:, 1:3] = True  # both sides of the edge
    np.testing.assert_array_equal(fractal.boundary(lab), expected)


def test_basin_entropy_exactly():
    lab = np.zeros((2, 4), np.int32)
    lab[0, 2] = lab[1, 3] = 1  # the right box is half and half
    ent = fractal.basin_entropy(lab, box=2)
    assert ent.Sb == pytest.approx(LOG2 / 2)
    assert ent.Sbb == pytest.approx(LOG2)
    sb, sbb = ent  # unpacks as (Sb, Sbb)
    assert (sb, sbb) == (ent.Sb, ent.Sbb)
    assert fractal.basin_entropy(np.zeros((10, 10), np.int32)) == (0.0, 0.0)


def test_smooth_boundary_has_dimension_one():
    disc = _disc()
    dim = fractal.box_dimension(disc)
    assert abs(float(dim) - 1.0) < 0.08, dim
    assert dim.counts[0] > dim.counts[-1] > 0
    ent = fractal.basin_entropy(disc)
    assert not ent.fractal_boundary and ent.Sbb < LOG2

    def classify(p):  # the disc, as a function of the start
        return (jnp.sum(jnp.square(p - 0.5), axis=-1) < 0.09).astype(jnp.int32)

    u = fractal.uncertainty_exponent(
        jax.jit(classify), ((0, 1), (0, 1)), key=jax.random.key(0), n=1 << 14
    )
    assert abs(u.alpha - 1.0) < 0.1, u.alpha  # f(eps) ~ eps: a smooth boundary
    assert abs(u.dimension - 1.0) < 0.1
    assert 0 < u.alpha_se < 0.05 and u.power_law, u  # one power law, within sampling error
    assert u.words().startswith(f"{u.dimension:.2f} ± ")


def test_a_slope_that_changes_with_eps_is_flagged():
    """Below 1e-2 of the domain the outcome flips at random inside a band
    (the uncertain fraction stops falling), above it a straight boundary
    shows: no single power law, and the fit says so."""

    def classify(p):
        x, y = p[:, 0], p[:, 1]
        noise = jnp.floor(x * 1e9 + y * 1e9).astype(jnp.int64) % 2
        return jnp.where(jnp.abs(x - 0.5) < 0.005, noise, (x > 0.5).astype(jnp.int64)).astype(
            jnp.int32
        )

    with jax.enable_x64(True):
        u = fractal.uncertainty_exponent(
            jax.jit(classify), ((0, 1), (0, 1)), key=jax.random.key(0), n=1 << 13
        )
    assert u.chi2_dof > fractal.POWER_LAW_CHI2 and not u.power_law, u
    assert "not one power law" in u.words()
    (lo_small, hi_small, d_small, _, _), (lo_large, _, d_large, _, _) = u.scales()
    assert lo_small == u.eps[0] and hi_small < lo_large
    assert abs(d_small - 2.0) < 0.15 and d_large < d_small - 0.2  # random flips fill the plane
    assert f"{d_small:.2f}" in u.words()
    again = fractal.Uncertainty.from_json(u.to_json())
    assert again.to_json() == u.to_json() and again.words() == u.words()


def test_no_boundary_gives_nan():
    dim = fractal.box_dimension(np.ones((64, 64), np.int32))
    assert math.isnan(dim.dimension) and dim.boundary_pixels == 0


LX, LY = 3.0, 1.5  # McDonald, Grebogi, Ott, Yorke, Physica D 17, 125 (1985)
MGOY_DIMENSION = 2 - math.log(LY) / math.log(LX)  # 1.6309: a Weierstrass curve


def _mgoy(p):
    """The map x' = 3x mod 1, y' = 1.5y + cos(2 pi x): which attractor,
    y -> +inf (1) or y -> -inf (0), a start goes to."""

    def body(_, s):
        x, y = s
        return jnp.mod(LX * x, 1.0), LY * y + jnp.cos(2 * jnp.pi * x)

    _, y = jax.lax.fori_loop(0, 80, body, (p[..., 0], p[..., 1]))
    return (y > 0).astype(jnp.int32)


def test_mgoy_fractal_boundary_has_its_published_dimension():
    """The uncertainty exponent gives the published dimension 2 - ln 1.5/ln 3;
    box counting at 1024^2 underestimates it (1.49; 1.52 at 4096^2: this
    Weierstrass curve converges slowly), but finds it well above a smooth
    curve's 1."""
    with jax.enable_x64(True):
        classify = jax.jit(_mgoy)
        u = fractal.uncertainty_exponent(
            classify, ((0, 1), (-2.5, 2.5)), key=jax.random.key(1), n=1 << 14
        )
        n = 1024
        xs = (np.arange(n) + 0.5) / n
        ys = np.linspace(-2.0, 2.0, n)
        grid = np.stack(np.meshgrid(xs, ys), axis=-1)
        labels = np.asarray(classify(jnp.asarray(grid)))
    assert abs(u.dimension - MGOY_DIMENSION) < 0.03, u
    assert abs(u.alpha - math.log(LY) / math.log(LX)) < 0.03
    assert np.all(np.diff(u.fraction) > 0)  # more uncertain starts at larger eps
    dim = float(fractal.box_dimension(labels))
    assert 1.4 < dim < MGOY_DIMENSION + 0.05, dim


def _newton(p):
    """Newton's method on z^3 = 1: which root a start reaches."""
    z = jax.lax.complex(p[..., 0], p[..., 1])
    z = jax.lax.fori_loop(0, 60, lambda _, z: z - (z**3 - 1) / (3 * z**2), z)
    angle = 2 * jnp.pi * jnp.arange(3, dtype=p.dtype) / 3
    roots = jax.lax.complex(jnp.cos(angle), jnp.sin(angle))
    return jnp.argmin(jnp.abs(z[..., None] - roots[None, None]), axis=-1).astype(jnp.int32)


def test_newton_wada_basins_pass_the_log2_criterion():
    """Newton's method for z^3 - 1 has three basins sharing one fractal
    boundary (Wada): Sbb > log 2, Daza et al.'s sufficient condition."""
    xs = np.linspace(-2, 2, 512, dtype=np.float32)
    grid = np.stack(np.meshgrid(xs, xs), axis=-1)
    labels = np.asarray(jax.jit(_newton)(jnp.asarray(grid)))
    assert set(np.unique(labels)) == {0, 1, 2}
    ent = fractal.basin_entropy(labels)
    assert ent.fractal_boundary and ent.Sbb > LOG2
    assert float(fractal.box_dimension(labels)) > 1.3


def test_descent_classifier_gives_map_basins_labels():
    bmap = basins.map_basins("peaks", grid=32, steps=400, lr=0.02)
    classify = fractal.descent_classifier("peaks", lr=0.02, steps=400, minima=bmap.minima)
    labels = np.asarray(classify(jnp.asarray(bmap.starts)))
    assert (labels == bmap.labels).mean() >= 0.998
    assert set(np.unique(labels)) >= {0, 1, 2, -1}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fractal.box_dimension(np.zeros(10, np.int32)), "2-D image"),
        (lambda: fractal.box_dimension(np.zeros((32, 32))), "integers"),
        (lambda: fractal.box_dimension(np.zeros((8, 8), np.int32)), "at least 16"),
        (lambda: fractal.basin_entropy(np.zeros((8, 8), np.int32), box=1), "box must be"),
        (lambda: fractal.basin_entropy(np.zeros((8, 8), np.int32), box=9), "box must be"),
        (
            lambda: fractal.uncertainty_exponent(
                lambda p: p[:, 0], ((0, 1), (0, 1)), key=jax.random.key(0), eps=[0.1, -1]
            ),
            "eps must be",
        ),
    ],
)
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_power_law_fit_is_the_binomial_maximum_likelihood():
    """Drawn counts with a known exponent: the fit is unbiased over many
    draws, where a least-squares fit of log f weighted by the counts it
    happened to draw read alpha 0.03 low at 4096 starts; its standard error
    is the spread of the draws; sizes with no uncertain start count."""
    from gdjax.fractal import _fit_power_law, _fitted

    eps = np.geomspace(1e-6, 1e-1, 12) * 6
    n, alpha = 4096, 1.0
    p = 0.65 * eps**alpha
    rng = np.random.default_rng(0)
    fits = []
    for _ in range(300):
        counts = rng.binomial(n, p)
        fits.append(_fit_power_law(eps, counts, n, _fitted(counts, n)))
    got, _, se, chi2 = np.asarray(fits).T
    assert abs(got.mean() - alpha) < 3 * got.std() / np.sqrt(len(got)), got.mean()
    assert abs(se.mean() / got.std() - 1) < 0.15 and abs(chi2.mean() - 1) < 0.15
    # exact counts of a huge sample: the exponent itself
    big = 10**12
    counts = np.rint(big * 1e-3 * eps**0.37).astype(np.int64)
    a, b, _, _ = _fit_power_law(eps, counts, big, np.ones(eps.size, bool))
    assert abs(a - 0.37) < 1e-6 and abs(b - math.log(1e-3)) < 1e-5
    # a size with no uncertain start pulls the line down; one alone fits nothing
    counts = np.array([0, 0, 4, 40, 400])
    mask = np.ones(5, bool)
    few = np.geomspace(1e-4, 1, 5)
    with_zeros = _fit_power_law(few, counts, 10**4, mask)[0]
    without = _fit_power_law(few, counts, 10**4, counts > 0)[0]
    assert with_zeros > without
    assert all(math.isnan(v) for v in _fit_power_law(few, np.array([0, 0, 0, 0, 9]), 99, mask))


def test_perturbations_below_the_float_resolution_are_refused():
    """float32 cannot move a start at x = 1000 by 1e-6: such a size would
    count no uncertain start whatever the boundary. The default sizes start
    at MIN_EPS_SPACINGS spacings there; explicit smaller ones are refused,
    and so is a domain too narrow to perturb at all."""

    def classify(p):
        return (p[:, 0] > 1000.0).astype(jnp.int32)

    dom = ((999.9, 1000.1), (0.0, 0.2))
    spacing = float(np.spacing(np.float32(1000.1)))
    u = fractal.uncertainty_exponent(jax.jit(classify), dom, key=jax.random.key(0), n=1024)
    assert u.eps[0] == pytest.approx(fractal.MIN_EPS_SPACINGS * spacing)  # not 2e-7
    assert u.eps[-1] == pytest.approx(0.02) and np.all(u.fraction[1:] > 0)
    with pytest.raises(ValueError, match="below 8 float32 spacings .* compute in float64"):
        fractal.uncertainty_exponent(classify, dom, key=jax.random.key(0), eps=[1e-4, 1e-3])
    with pytest.raises(ValueError, match="too narrow for float32 perturbations"):
        fractal.uncertainty_exponent(
            classify, ((1e4, 1e4 + 0.01), (0, 0.01)), key=jax.random.key(0)
        )
    with jax.enable_x64(True):  # float64 resolves them: f = (4 / pi) eps L / A
        u = fractal.uncertainty_exponent(
            jax.jit(classify), dom, key=jax.random.key(0), n=1 << 14, eps=[1e-4, 1e-3]
        )
    np.testing.assert_allclose(u.fraction, 4 / np.pi * u.eps * 0.2 / 0.04, rtol=0.5)


def test_a_boundary_that_fills_the_domain_is_said_so():
    """Above FIT_MAX_FRACTION at every size there is no small-eps range to
    fit: the words say the boundary fills the domain, not that there are
    too few uncertain starts."""

    def classify(p):  # stripes far finer than every eps
        return (jnp.floor(p[:, 0] * 1e5) % 2).astype(jnp.int32)

    with jax.enable_x64(True):
        u = fractal.uncertainty_exponent(
            jax.jit(classify), ((0, 1), (0, 1)), key=jax.random.key(0), n=512,
            eps=np.geomspace(1e-4, 1e-1, 6),
        )  # fmt: skip
    assert np.all(u.fraction > fractal.FIT_MAX_FRACTION) and math.isnan(u.dimension)
    assert u.words().startswith("no power law to fit") and "6 of 6 sizes" in u.words()
    empty = u._replace(fraction=np.zeros(6))
    assert empty.words() == "too few uncertain starts to fit"


def test_auto_uncertainty_costs_about_what_the_map_costs():
    """--uncertainty auto: 3 runs x 12 sizes x exponents per start cost at
    most the map's runs (a power of two), between 256 and the full size."""
    from gdjax._validate import EPS_SIZES, matched_uncertainty_starts

    assert EPS_SIZES == 12
    assert matched_uncertainty_starts(128 * 128 * 8, 3, 1 << 16) == 1024  # 131072 // 108 = 1213
    assert matched_uncertainty_starts(512 * 512 * 64, 3, 1 << 16) == 1 << 16  # full size
    assert matched_uncertainty_starts(32 * 32, 1, 4096) == 256  # never below 256
    assert matched_uncertainty_starts(384 * 384, 1, 4096) == 4096
    assert matched_uncertainty_starts(383 * 383, 1, 4096) == 2048
    for runs in (10**5, 3 * 10**6, 10**7):
        n = matched_uncertainty_starts(runs, 3, 1 << 20)
        assert n & (n - 1) == 0 and 3 * 12 * 3 * n <= runs < 2 * 3 * 12 * 3 * n


def test_a_descent_classifier_takes_a_map_config():
    """The classifier of one map's MapConfig labels its starts as the map does;
    a batch of rates, or an optimizer, is refused."""
    import jax.numpy as jnp
    import numpy as np
    import optax

    import gdjax
    from gdjax import basins, fractal

    config = basins.MapConfig("peaks", grid=12, steps=300, lr=0.02)
    bmap = basins.run_map(config)
    got = fractal.descent_classifier(config, minima=bmap.minima)(jnp.asarray(bmap.starts))
    np.testing.assert_array_equal(np.asarray(got), bmap.labels)
    with pytest.raises(ValueError, match="one rate"):
        fractal.descent_classifier(config.replace(lr=np.asarray([0.01, 0.02])))
    with pytest.raises(ValueError, match="one rate"):
        fractal.descent_classifier(config.replace(rule=gdjax.optimizer(optax.sgd, momentum=0.5)))
    with pytest.raises(ValueError, match="needs lr= and steps="):
        fractal.descent_classifier("peaks")
