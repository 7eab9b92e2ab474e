"""gdjax.continuation and ``gdjax continuation``: basin maps over a grid of
rates, in one program, against each minimum's stability limit."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest
from PIL import Image

from gdjax import basins
from gdjax import continuation as C
from gdjax.cli import continuation as cli_continuation
from gdjax.cli._common import run_and_print
from gdjax.lessons.rate_continuation import three_rates
from gdjax.maps import runner


def test_stability_limit_and_vanishing_exactly():
    assert C.stability_limit([4.0, 10.0]) == 0.2
    assert C.stability_limit([-1.0, 0.0]) == math.inf
    lrs = np.asarray([0.1, 0.2, 0.3, 0.4])
    assert C.vanishing(lrs, [0.5, 0.2, 0.0, 0.0]) == (0.2, 0.3)
    assert C.vanishing(lrs, [0.5, 0.0, 0.1, 0.0]) == (0.3, 0.4)  # gone for good after 0.3
    assert C.vanishing(lrs, [0.5, 0.2, 0.1, 0.1]) == (0.4, None)
    assert C.vanishing(lrs, [0.0] * 4) == (None, None)


@pytest.fixture(scope="module")
def small():
    lrs = np.geomspace(0.01, 0.2, 8)
    return C.continuation("peaks", lrs=lrs, grid=48, steps=800)


def test_one_program_for_every_rate(small):
    programs = runner.compiled_programs()
    again = C.continuation("peaks", lrs=small.lrs * 0.9, grid=48, steps=800)
    assert runner.compiled_programs() == programs  # new rates are data: no new descent program
    assert again.bmap.batch == (8,)


def test_basins_vanish_at_their_stability_limits(small):
    """Gradient descent converges to a minimum only below 2 / lambda_max:
    each basin is present well below its limit and absent beyond it."""
    assert len(small.bmap.minima) == 3  # peaks' three minima
    for v in small.vanishing:
        fr = small.fraction(str(v.minimum))
        limit = small.stability_limits[v.minimum]
        eig = max(small.bmap.minima[v.minimum].eigenvalues)
        assert limit == pytest.approx(2 / eig)
        assert np.all(fr[small.lrs < 0.8 * limit] > 0), v
        assert np.all(fr[small.lrs > 1.05 * limit] == 0), v
        assert v.last_seen is not None and v.last_seen <= 1.05 * limit
        assert v.vanished_at is not None and v.vanished_at > 0.8 * limit


def test_fractal_measures_per_rate(small):
    f = small.fractal
    for series in f:
        assert series.shape == (8,)
    single = np.asarray([len(np.unique(g)) == 1 for g in small.bmap.label_grid()])
    assert single[-1]  # at lr 0.2 every start fails to converge: no boundary
    np.testing.assert_array_equal(np.isnan(f.box_dimension), single)
    dims = f.box_dimension[~single]
    assert np.all((dims >= 0.9) & (dims <= 2.0))
    assert np.all(f.boundary_entropy >= 0) and np.all(f.basin_entropy >= 0)
    assert np.all(f.basin_entropy <= f.boundary_entropy + 1e-12)


def test_cli_writes_json_gif_and_report(tmp_path):
    out = tmp_path / "run"
    res = run_and_print(
        cli_continuation.COMMAND,
        {
            "out": out,
            "seed": 0,
            "overwrite": False,
            "grid": 32,
            "lrs": 6,
            "lr_min": 0.01,
            "lr_max": 0.2,
            "steps": 400,
            "panels": 4,
            "uncertainty": "auto",  # a small map: the fewest starts, 256
            "no_progress": True,
        },
    )
    data = json.loads((out / "continuation.json").read_text())
    assert data == json.loads(json.dumps(res))
    assert len(data["lrs"]) == 6
    assert data["lrs"][0] == pytest.approx(0.01) and data["lrs"][-1] == pytest.approx(0.2)
    n_min = len(data["minima"])
    attractors = [row["name"] for row in data["attractors"]["table"]]  # labelled by default
    assert "chaotic" in attractors  # at lr 0.2
    assert set(data["fractions"]) == {"diverged", "moving", *map(str, range(n_min)), *attractors}
    total = np.sum([data["fractions"][k] for k in data["fractions"]], axis=0)
    np.testing.assert_allclose(total, 1.0)
    assert set(data["stability_limits"]) == set(map(str, range(n_min)))
    for key in ("box_dimension", "basin_entropy", "boundary_entropy"):
        assert len(data["fractal"][key]) == 6
    unc = data["fractal"]["uncertainty"]
    dims = np.asarray([np.nan if d is None else d for d in data["fractal"]["box_dimension"]])
    assert [u["rate_index"] for u in unc] == three_rates(dims)  # the three rates quoted
    for u in unc:
        assert u["lr"] == pytest.approx(data["lrs"][u["rate_index"]])
        assert u["starts_per_eps"] == 256 and len(u["fraction"]) == len(u["eps"]) == 12
        assert u["dimension"] == pytest.approx(2 - u["alpha"])
    with Image.open(out / "maps.gif") as gif:
        assert gif.n_frames == 6
    names = {p.name for p in out.iterdir()}
    assert {"fractions_vs_rate.png", "maps.png", "fractal_measures.png", "report.html"} <= names
    assert "uncertainty.png" in names
    page = (out / "report.html").read_text()
    assert "Where each basin vanishes" in page and "2/λ_max" in page
    assert "uncertainty dimension" in page


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lr_min": 0.2, "lr_max": 0.1}, "must be below --lr-max"),
        ({"lrs": 1}, "--lrs must be at least 2"),
        ({"box": 40}, "--box must be in 2..--grid"),
        ({"uncertainty": 100}, "--uncertainty must be 0 (not measured) or at least 256 starts"),
        ({"surface": "nope"}, "nope"),
    ],
)
def test_cli_refuses_bad_options_before_compute(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as e:
        run_and_print(
            cli_continuation.COMMAND,
            {"out": tmp_path / "x", "seed": 0, "overwrite": False, "grid": 16, **options},
        )
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_classifier_labels_starts_as_the_map_does(small):
    """classifier(cont, i) re-runs descents at the map's rate i with its
    settings: at the map's own starts it gives the map's labels."""
    starts = basins.grid_starts(small.bmap.domain, 48)
    for i in (0, 4, 7):
        got = np.asarray(C.classifier(small, i)(starts))
        np.testing.assert_array_equal(got, small.bmap.labels[i])
    with pytest.raises(ValueError, match="rate index 8 is outside 0..7"):
        C.classifier(small, 8)


def test_uncertainty_dimension_of_smooth_boundaries(small):
    """Peaks' basin boundaries are smooth curves: f(eps) ~ eps, dimension 1.
    Every rate runs the same compiled program."""
    from gdjax import fractal

    eps = np.geomspace(3e-3, 0.3, 5)
    got = C.uncertainty(small, [1], key=jax.random.key(0), n=4096, eps=eps)
    compiled = fractal._classify._cache_size()
    got.update(C.uncertainty(small, [4], key=jax.random.key(0), n=4096, eps=eps))
    assert fractal._classify._cache_size() == compiled  # a new rate is data
    assert sorted(got) == [1, 4]
    for u in got.values():
        np.testing.assert_array_equal(u.eps, eps)
        assert np.all(u.fraction > 0) and np.all(np.diff(u.fraction) > 0)
        assert 0.85 <= u.dimension <= 1.15, u
    with pytest.raises(ValueError, match="rate index -1 is outside"):
        C.uncertainty(small, [-1], key=jax.random.key(0))


def test_progress_covers_the_maps_then_the_uncertainty_descents():
    from gdjax.lessons import rate_continuation as L

    calls = []
    L.compute(grid=32, lrs=4, steps=200, uncertainty=256, progress=lambda *a: calls.append(a))
    assert all(len(c) == 2 for c in calls)  # (done, total): one signature everywhere
    totals = [t for _, t in calls]
    maps, descents = totals[0], totals[-1]
    assert maps == 32 * 32 * 4 and descents % (3 * 256 * 12) == 0 and descents > maps
    # each phase counts up to its total
    for total in (maps, descents):
        done = [d for d, t in calls if t == total]
        assert done == sorted(done) and done[-1] == total


def test_the_summary_names_rates_where_nothing_could_be_fitted():
    from gdjax import fractal
    from gdjax.lessons import rate_continuation as L

    eps = np.geomspace(1e-4, 1e-1, 6)
    full = fractal.Uncertainty(eps, np.full(6, 0.4), np.full(6, 0.38), np.full(6, 0.42), 1000,
                               math.nan, math.nan, math.nan)  # fmt: skip
    res = {
        "lrs": [0.01, 0.1],
        "vanishing": {},
        "stability_limits": {},
        "fractal": {
            "box_dimension": [1.1, None],
            "uncertainty": [{"lr": 0.01, "rate_index": 0, **full.to_json()}],
        },
    }
    text = L.summary(res)
    assert "uncertainty dimension (re-run descents): no power law to fit" in text
    assert text.endswith("domain at these scales) at lr 0.01")


def test_a_continuation_takes_a_map_config():
    """continuation(MapConfig) is the keyword form's map; a config that is
    not plain descent over increasing rates is refused."""
    lrs = np.geomspace(0.01, 0.2, 3)
    config = basins.MapConfig("peaks", grid=16, steps=200, lr=lrs)
    a = C.continuation(config)
    b = C.continuation("peaks", lrs=lrs, grid=16, steps=200)
    np.testing.assert_array_equal(a.bmap.labels, b.bmap.labels)
    with pytest.raises(ValueError, match="not both"):
        C.continuation(config, lrs=lrs)
    with pytest.raises(ValueError, match="lrs must increase"):
        C.continuation(config.replace(lr=lrs[::-1].copy()))
