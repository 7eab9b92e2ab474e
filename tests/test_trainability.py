"""Trainability maps (gdjax.trainability, ``gdjax trainability``)."""

from __future__ import annotations

import json

import jax
import numpy as np
import optax
import pytest

from gdjax import surfaces
from gdjax import trainability as T
from gdjax.cli import trainability as cli_trainability
from gdjax.cli._common import run_and_print
from gdjax.descent import descend_final, optimizer
from gdjax.lessons.trainability_maps import summary as res_summary


@pytest.mark.parametrize("window", [T.Window(-2.0, -2.0, 1.0, 1.0), T.Window(1.0, 1.0, 6.0, 6.0)])
def test_each_pixel_equals_training_that_network_alone(window):
    m = T.network_map(window, resolution=8, steps=60)
    problem = T.make_problem(jax.random.key(0), 8)
    alone = jax.jit(T._train_one, static_argnums=3)  # one network at a time, compiled once
    disagree = 0
    for i in range(8):
        for j in range(8):
            conv, _, final = alone(problem, m.x.values[j], m.y.values[i], 60)
            disagree += bool(conv) != bool(m.converged[i, j])
            if window.cx < 0:  # small rates: the same numbers up to rounding
                assert float(final) == pytest.approx(float(m.final_loss[i, j]), rel=1e-5)
    # near the boundary training is chaotic: a different fusion of the same
    # operations (vmapped, sharded) may flip a pixel, rarely
    assert disagree <= 1
    if window.cx > 0:
        assert m.converged.any() and not m.converged.all()  # the window holds the boundary


def test_small_rates_train_and_huge_ones_diverge():
    m = T.network_map(T.Window(0.0, 0.0, 8.0, 8.0), resolution=16, steps=60)
    assert m.converged[0, 0]  # lr 1e-4 for both layers: trains
    assert not m.converged[-1, -1]  # lr 1e4: diverges
    assert m.final_loss[0, 0] < 1 and m.score[0, 0] < 0 < m.score[-1, -1]


def test_new_window_does_not_recompile():
    T.network_map(T.Window(0.0, 0.0, 2.0, 2.0), resolution=8, steps=40)
    from test_engine import count_compiles

    with count_compiles() as n:
        T.network_map(T.Window(1.0, -1.0, 0.5, 0.5), resolution=8, steps=40)
    assert n == []


def test_surface_map_equals_descend_final():
    w = T.Window(-1.5, 0.45, 2.0, 0.9)
    m = T.surface_map("peaks", w, start=(0.5, -0.5), resolution=6, steps=300)
    for i in (0, 3, 5):
        for j in (0, 2, 5):
            lr, mom = m.x.values[j], m.y.values[i]
            fin = descend_final(
                surfaces.get("peaks"),
                np.asarray([0.5, -0.5], np.float32),
                steps=300,
                lr=lr,
                rule=optimizer(optax.sgd, momentum=mom),
            )
            assert bool(fin.converged) == bool(m.converged[i, j])


def test_zoom_windows_and_boundary_point():
    m = T.network_map(T.Window(1.0, 1.0, 6.0, 6.0), resolution=32, steps=60)
    cx, cy = T.boundary_point(m)
    assert -2.0 <= cx <= 4.0 and -2.0 <= cy <= 4.0
    ws = T.zoom_windows(m.window, (cx, cy), levels=3)
    # zoom k is 8^(k+1) times narrower: zoom 0 was as wide as the map
    assert [w.wx for w in ws] == [0.75, 0.09375, 0.01171875]
    parents = [m.window, *ws[:-1]]
    for parent, w in zip(parents, ws, strict=True):  # each inside the one before
        assert _inside(w, parent)
    # a momentum axis stays below 1: the window shifts (and narrows if it must)
    held = T.zoom_windows(T.Window(-2.0, 0.495, 3.0, 0.99), (-1.0, 0.95), 3, y_limits=(0, 0.99))
    assert held[0].wy == pytest.approx(0.99 / 8) and held[0].cy == pytest.approx(0.99 - 0.99 / 16)
    assert all(w.cy + w.wy / 2 <= 0.99 + 1e-12 and w.cy - w.wy / 2 >= -1e-12 for w in held)
    assert held[2].cy == pytest.approx(0.95)
    with pytest.raises(ValueError, match="no boundary"):
        T.boundary_point(T.network_map(T.Window(-3.0, -3.0, 0.5, 0.5), resolution=8, steps=40))


def _inside(w, parent, slack=1e-12) -> bool:
    return (
        w.cx - w.wx / 2 >= parent.cx - parent.wx / 2 - slack
        and w.cx + w.wx / 2 <= parent.cx + parent.wx / 2 + slack
        and w.cy - w.wy / 2 >= parent.cy - parent.wy / 2 - slack
        and w.cy + w.wy / 2 <= parent.cy + parent.wy / 2 + slack
    )


def test_zoom_k_is_8_to_the_k_plus_1_narrower_and_inside_the_map_before_it():
    """Zoom 0 was a re-centred window as wide as the map (8 decades), half
    of it outside the map; now each zoom is 8x narrower than the map or
    zoom before it, and inside it."""
    from gdjax.lessons import trainability_maps as TM

    study = TM.compute(grid=32, steps=40, zoom_grid=16, zoom_levels=3, uncertainty=0)
    widths = [z.window.wx for z in study.zooms]
    assert widths == [8 / 8, 8 / 64, 8 / 512]
    parents = [study.main.window] + [z.window for z in study.zooms[:-1]]
    for parent, z in zip(parents, study.zooms, strict=True):
        assert _inside(z.window, parent)


def test_cli_writes_json_and_figures(tmp_path):
    out = tmp_path / "tr"
    res = run_and_print(
        cli_trainability.COMMAND,
        {
            "out": out,
            "seed": 0,
            "overwrite": False,
            "grid": 32,
            "steps": 40,
            "zoom_grid": "auto",  # half the map's side
            "zoom_levels": 2,
            "uncertainty": "auto",  # a small map: the fewest starts, 256
            "zoom_uncertainty": 256,
            "no_progress": True,
        },
    )
    data = json.loads((out / "trainability.json").read_text())
    u = data["uncertainty"]
    assert u["starts_per_eps"] == 256 and len(u["eps"]) == len(u["fraction"]) == 12
    assert u["dimension"] == pytest.approx(2 - u["alpha"])
    assert "uncertainty.png" in {p.name for p in out.iterdir()}
    assert "uncertainty dimension" in res_summary(data)
    assert data == json.loads(json.dumps(res))
    assert data["axes"]["x"]["name"] == "lr_0" and len(data["axes"]["y"]["values"]) == 32
    assert 0 < data["converged_fraction"] < 1
    assert data["box_dimension"] is not None and len(data["zooms"]) == 2
    # 32 pixels a side: box sizes 2 and 4, a line through two points, no error
    assert data["box_sizes"] == [2, 4] and data["box_dimension_se"] is None
    assert all("box_dimension_se" in z for z in data["zooms"])
    dim_text = f"{data['box_dimension']:.2f} (no error: 2 box sizes)"
    assert f"boundary dimension {dim_text}" in res_summary(data)
    assert f"boundary: {dim_text}" in (out / "report.html").read_text()
    assert {"trainability.png", "zoom_sequence.png", "box_counting.png", "report.html"} <= {
        p.name for p in out.iterdir()
    }
    # each zoom's uncertainty exponent, in its own window's units
    assert data["settings"]["zoom_uncertainty"] == 256 and data["settings"]["zoom_grid"] == 16
    for z in data["zooms"]:
        zu = z["uncertainty"]
        if z["box_dimension"] is None:
            assert zu is None
            continue
        assert zu["starts_per_eps"] == 256 and max(zu["eps"]) == pytest.approx(
            0.1 * z["window"]["wx"]
        )
    assert any(z["uncertainty"] is not None for z in data["zooms"])
    assert "uncertainty dimension</th>" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"x": "momentum"}, "this map's axes are lr_0 and lr_1"),
        ({"surface": "peaks", "y": "lr_1"}, "axes are lr and momentum"),
        ({"zoom": (0.0, 0.0, -1.0)}, "--zoom width must be > 0"),
        ({"steps": 5}, "steps must be at least 20"),
        ({"uncertainty": 64}, "--uncertainty must be 0 (not measured) or at least 256 starts"),
        ({"zoom_uncertainty": 9}, "--zoom-uncertainty must be 0 (not measured) or at least"),
        # refused before compute (they failed after it, or with a traceback)
        ({"grid": 2}, "--grid must be at least 16"),
        ({"zoom_grid": 8}, "--zoom-grid must be at least 16"),
        ({"width": 10_000_000}, "--width 10,000,000: at most 64 hidden units"),
        ({"surface": "quadratic"}, "--surface quadratic is 1D"),
        ({"grid": 10_000_000}, "use --grid"),
        # below the float resolution (issue 21): a map of 16 equal rates read
        # "100% trainable", and --zoom-levels 15 zooms with 1 to 3 distinct
        # float32 values per axis reported box dimensions
        ({"zoom": (0.0, 0.0, 1e-30)}, "nor would float64: give a wider window"),
        ({"zoom": (3.4, 0.0, 1e-6), "uncertainty": 0}, "--x64 may help: float64 resolves it"),
        ({"zoom_levels": 15}, "--zoom-levels 15: zoom 7, 8^8 times narrower"),
        ({"zoom_levels": 15}, "use --zoom-levels 7 or fewer; --x64 may help: float64 resolves"),
        ({"zoom_levels": 15, "zoom_grid": 256, "x64": True}, "use --zoom-levels 14 or fewer"),
        ({"zoom": (3.4, 0.0, 3e-5), "uncertainty": 256, "zoom_levels": 0}, "--uncertainty 256:"),
        ({"zoom_levels": 5, "zoom_uncertainty": 256}, "--zoom-uncertainty 256: zoom 4's window"),
    ],
)
def test_cli_refuses_bad_options(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as e:
        run_and_print(
            cli_trainability.COMMAND,
            {"out": tmp_path / "x", "seed": 0, "overwrite": False, "grid": 16, **options},
        )
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    if options.get("x64"):
        assert "--x64 may help" not in err  # already float64


def test_a_map_below_the_float_resolution_is_refused():
    """network_map(Window(0, 0, 1e-30, 1e-30)) gave 16 x 16 pixels at one
    rate, 1.0, all converged; pixels the precision does not tell apart are
    refused, and float64 resolves what float32 does not."""
    with pytest.raises(ValueError, match="would not be distinct"):
        T.network_map(T.Window(0.0, 0.0, 1e-30, 1e-30), resolution=16, steps=20)
    narrow = T.Window(3.4, 0.0, 1e-6, 1e-6)  # 6.7e-8 decades a pixel
    assert T.unresolved(narrow, (True, True), 16, np.float32)[0] == 0
    assert T.unresolved(narrow, (True, True), 16, np.float64) is None
    with pytest.raises(ValueError, match="below what float32 resolves"):
        T.surface_map("peaks", T.Window(-1.0, 0.5, 1e-6, 1e-6), resolution=16, steps=20)
    # what is resolved has distinct pixels in the working precision
    w = T.Window(3.4, 0.0, 3e-5, 3e-5)
    assert T.unresolved(w, (True, True), 16, np.float32) is None
    x, _ = w.axes(("a", "b"), (True, True), 16)
    assert np.all(np.diff(x.values.astype(np.float32)) > 0)


def test_x64_trains_the_same_network_in_float64(tmp_path):
    """--x64: the paper computes in float64. The network is the float32
    draw, held in float64; at small rates the losses agree with float32 to
    its rounding, and the pixels equal training alone in float64."""
    from gdjax.lessons import trainability_maps as TM

    w = T.Window(-2.0, -2.0, 1.0, 1.0)
    with jax.enable_x64(True):
        p64 = T.make_problem(jax.random.key(0), 8)
        m64 = T.network_map(w, resolution=4, steps=40)
        conv, _, final = T._train_one(p64, m64.x.values[1], m64.y.values[2], 40)
    p32 = T.make_problem(jax.random.key(0), 8)
    assert p64.w0.dtype == np.float64 and p32.w0.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(p64.w0), np.asarray(p32.w0, np.float64))
    assert m64.final_loss.dtype == np.float64
    assert float(final) == pytest.approx(float(m64.final_loss[2, 1]), rel=1e-12)
    m32 = T.network_map(w, resolution=4, steps=40)
    np.testing.assert_allclose(m64.final_loss, m32.final_loss, rtol=1e-4)
    # the command: a window float32 refuses runs in float64 and says so
    res = run_and_print(
        cli_trainability.COMMAND,
        {
            "out": tmp_path / "x64",
            "seed": 0,
            "overwrite": False,
            "grid": 16,
            "steps": 40,
            "zoom": (3.4, 0.0, 1e-6),
            "zoom_levels": 1,
            "uncertainty": 0,
            "x64": True,
            "no_progress": True,
        },
    )
    assert res["settings"]["precision"] == "float64"
    assert "(float64)" in res_summary(res)
    assert "in float64" in (tmp_path / "x64" / "report.html").read_text()
    study = TM.compute(grid=16, steps=40, zoom_levels=0, uncertainty=0)
    assert study.settings["precision"] == "float32"


def test_box_dimension_has_its_standard_error():
    """The dimension was printed to 3 decimals without an error; now with
    the standard error of the fitted slope, to the digits it supports."""
    from gdjax import fractal

    sizes = np.array([2, 4, 8, 16])
    counts = np.array([400, 150, 60, 20])
    slope, intercept = np.polyfit(np.log(sizes), np.log(counts), 1)
    box = fractal.BoxDimension(-slope, sizes, counts, intercept, 500)
    x, y = np.log(sizes), np.log(counts)
    resid = y - (intercept + slope * x)
    want = np.sqrt(resid @ resid / 2 / np.sum((x - x.mean()) ** 2))
    assert T.box_dimension_se(box) == pytest.approx(want)
    assert 0 < want < 0.1
    exact = box._replace(counts=np.array([512, 128, 32, 8]))
    exact = exact._replace(dimension=2.0, intercept=float(np.log(2048)))
    assert T.box_dimension_se(exact) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(T.box_dimension_se(box._replace(sizes=sizes[:2], counts=counts[:2])))
    assert T.with_error(1.4043, 0.0123) == "1.404 ± 0.012"
    assert T.with_error(1.4043, 0.047) == "1.40 ± 0.05"
    assert T.with_error(1.4043, 0.0096) == "1.40 ± 0.01"
    assert T.with_error(1.4043, 0.31) == "1.4 ± 0.3"
    assert T.with_error(1.4043, float("nan")) == "1.40"


@pytest.mark.parametrize("surface", [None, "peaks"])
def test_the_classifier_gives_the_map_at_its_pixel_centres(surface):
    """classifier(tmap) takes points in window units (log10 on a log axis):
    at the pixel centres it reproduces the map."""
    if surface is None:
        tmap = T.network_map(T.Window(1.0, 0.5, 6.0, 6.0), resolution=12, steps=40)
    else:
        tmap = T.surface_map(surface, resolution=12, steps=300)
    assert 0 < tmap.converged_fraction < 1

    def units(axis):
        return np.log10(axis.values) if axis.log else axis.values

    gx, gy = np.meshgrid(units(tmap.x), units(tmap.y))
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    got = T.classifier(tmap)(points)
    np.testing.assert_array_equal(got.reshape(tmap.converged.shape), tmap.converged)
    with pytest.raises(ValueError, match="no pixel function"):
        T.classifier(tmap._replace(fn=None))


def test_uncertainty_of_the_network_boundary():
    """The boundary is rough: more points are uncertain at larger eps, and
    its dimension lies between a smooth curve's 1 and the plane's 2."""
    tmap = T.network_map(resolution=16, steps=40)
    eps = np.geomspace(1e-3, 1e-1, 4) * 8
    u = T.uncertainty(tmap, key=jax.random.key(0), n=1024, eps=eps)
    np.testing.assert_array_equal(u.eps, eps)
    assert u.n == 1024 and np.all(u.fraction > 0)
    assert u.fraction[-1] > u.fraction[0]
    assert 1.0 < u.dimension < 2.0, u


def test_progress_covers_the_map_the_zooms_and_the_uncertainty():
    from gdjax.lessons import trainability_maps as TM

    calls = []
    TM.compute(
        grid=32, zoom_grid=16, zoom_levels=2, uncertainty=256, progress=lambda *a: calls.append(a)
    )
    totals = list(dict.fromkeys(t for _, t in calls))  # in order of first report
    assert totals == [32 * 32, 2 * 16 * 16, 3 * 256 * 12]
    for total in totals:  # each task counts up to its total
        done = [d for d, t in calls if t == total]
        assert done == sorted(done) and done[-1] == total


@pytest.mark.parametrize("zoom", ["nan,0,1", "0,0,inf", "-1,0.99"])
def test_cli_refuses_a_zoom_that_is_not_three_finite_numbers(tmp_path, capsys, zoom):
    from gdjax.cli import main

    with pytest.raises(SystemExit) as e:
        main(["trainability", "--zoom", zoom, "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--zoom takes 3 comma-separated finite numbers" in err
    assert "training" not in err  # no progress bar drawn for a refused run


def test_a_refused_run_draws_no_progress_bar(tmp_path, capsys):
    """An empty 'trainability: 0.00training' bar came before the error."""
    from gdjax.cli import main

    with pytest.raises(SystemExit) as e:
        main(["trainability", "--surface", "quadratic", "--grid", "16", "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        == "gdjax: error: --surface quadratic is 1D; a trainability map descends a 2D surface"
    )
