"""Figures as a reader sees them: what each plot draws, read back from the
matplotlib objects (colours, masks, limits, legends, text positions), not
from pixels, so the checks hold on any CPU."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import pytest
from matplotlib import colors as mcolors

import gdjax
from gdjax import basins, plot, train
from gdjax import schedules as S
from gdjax.lessons import dynamic_lr, gd_1d, gd_2d_peaks, schedule_plots
from gdjax.plot._style import _luminance

X0 = 1.79  # a start of the 1D lesson's quadratic (minimum at 0.5)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _drawn(fig):
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _inside_figure(fig, artist, slack=1.0) -> bool:
    box = artist.get_window_extent(_drawn(fig))
    w, h = fig.canvas.get_width_height()
    return box.x0 >= -slack and box.y0 >= -slack and box.x1 <= w + slack and box.y1 <= h + slack


def _overlap(boxes) -> bool:
    return any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def _tick_boxes(fig, axis):
    renderer = _drawn(fig)
    ticks = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
    lo, hi = sorted(axis.get_view_interval())
    # the tick labels drawn: those whose tick lies within the axis
    ticks = [t for t, v in zip(ticks, axis.get_ticklocs(), strict=False) if lo <= v <= hi]
    return [t.get_window_extent(renderer) for t in ticks]


def _contrast(c1, c2) -> float:
    l1, l2 = _luminance(mcolors.to_rgba(c1)), _luminance(mcolors.to_rgba(c2))
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


# --------------------------------------------------------------------------
# 1. lr_compare: an axis set by the bounded runs; the diverged run leaves it.


def _lr_compare(lrs=(0.01, 0.001, 1.0), steps=100, notes=None):
    quad = gdjax.surfaces.get("quadratic")
    trajs = jax.vmap(lambda r: gdjax.descend(quad, jnp.float32(X0), steps=steps, lr=r))(
        jnp.array(lrs)
    )
    labels = [f"lr = {v:g}" for v in lrs]
    return trajs, plot.learning_journey(trajs, labels, target=0.5, notes=notes)


def test_lr_compare_axis_from_bounded_runs_and_diverged_run_marked():
    trajs, fig = _lr_compare(notes=[None, None, "|x| -> 1e70"])
    assert bool(trajs.diverged[2]) and not bool(trajs.diverged[0])
    ax_x, ax_g = fig.axes[:2]
    for ax in (ax_x, ax_g):
        assert ax.get_yscale() == "linear"
        lo, hi = ax.get_ylim()
        lines = [ln for ln in ax.get_lines() if ln.get_label().startswith("lr =")]
        bounded, small, diverged = lines[:3]
        # the bounded runs set the range: each fills a good part of it, none is flattened
        for line in (bounded, small):
            y = np.asarray(line.get_ydata())
            assert np.all((y >= lo) & (y <= hi))
            assert np.ptp(y) > 0.25 * (hi - lo)
        # the diverged run is drawn until it leaves, ending on the edge, not along it
        y = np.asarray(diverged.get_ydata())
        assert len(y) < 10 and y[-1] in (lo, hi)
        assert np.max(np.asarray(diverged.get_xdata())) < 5
    notes = [t.get_text() for t in ax_x.texts]
    assert any("diverged" in t and "1e70" in t for t in notes)
    assert any("diverged" in t.get_text() for t in ax_g.texts)
    assert not _overlap(_tick_boxes(fig, ax_x.yaxis))


def test_lr_compare_two_runs_leaving_together_both_noted():
    _, fig = _lr_compare(lrs=(0.01, 100.0, 1.0))
    boxes = [t.get_window_extent(_drawn(fig)) for t in fig.axes[0].texts]
    assert len(boxes) == 2 and not _overlap(boxes)


# --------------------------------------------------------------------------
# 2. Every --tol the CLI accepts gives a report (tol 2: every lr arrives at
# once; tol 1e-30: none ever does).


@pytest.mark.parametrize("tol", [2.0, 1e-30])
def test_lesson_1d_any_tol_writes_its_report(tmp_path, tol):
    journey = gd_1d.compute(tol=tol)
    gd_1d.write(tmp_path, journey)
    assert (tmp_path / "report.html").exists() and (tmp_path / "epochs_to_arrive.png").exists()
    fig = plot.epochs_to_arrive(journey.sweep)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert ("0 epochs" in text) if tol == 2.0 else ("not within tol" in text)


@pytest.mark.parametrize(
    ("module", "kwargs"),
    [
        (gd_2d_peaks, {"starts": 1, "steps": 1}),
        (gd_2d_peaks, {"lr": 100.0, "steps": 20, "starts": 4}),
        (dynamic_lr, {"tol": 1e-30}),
        (dynamic_lr, {"epochs": 1, "lr": 100.0, "grad_scale": 100.0}),
    ],
)
def test_lessons_extreme_options_write_reports(tmp_path, module, kwargs):
    module.run(tmp_path, **kwargs)
    assert (tmp_path / "report.html").exists()


# --------------------------------------------------------------------------
# 3. peaks: one colour per run, the same in paths.png and loss.png; a path
# that leaves the frame ends in a marker on the edge.


def _peaks_runs(starts=12, steps=1000):
    surface = gdjax.surfaces.get("peaks")
    lo, hi = np.asarray(surface.domain).T
    x0 = jax.random.uniform(jax.random.key(0), (starts, 2), minval=lo, maxval=hi)
    trajs = jax.vmap(lambda x: gdjax.descend(surface, x, steps=steps, lr=0.01))(x0)
    labels = gd_2d_peaks.classify(
        surface, trajs.params[:, -1], trajs.grad_norm[:, -1], trajs.diverged, 1e-3
    )
    runs = [{"reached": f"label {int(lab)}"} for lab in labels]
    return surface, trajs, runs


def test_peaks_paths_and_loss_share_distinct_run_colours():
    surface, trajs, runs = _peaks_runs()
    colors = plot.run_colors(len(runs))
    paths = plot.landscape_2d(surface, trajs, labels=[r["reached"] for r in runs], colors=colors)
    loss = plot.loss_along_paths(trajs, [r["reached"] for r in runs], colors)
    ax_p, ax_l = paths.axes[0], loss.axes[0]
    path_lines = [ln for ln in ax_p.get_lines() if len(ln.get_xdata()) == trajs.params.shape[1]]
    path_cols = [mcolors.to_hex(ln.get_color()) for ln in path_lines]
    loss_cols = [mcolors.to_hex(ln.get_color()) for ln in ax_l.get_lines()]
    assert len(set(path_cols)) == len(runs) == len(path_cols)
    assert loss_cols == path_cols
    assert ax_l.get_title()
    # one legend entry per run (plus the key), the legend wholly in the figure
    legend = paths.legends[0]
    assert sum(t.get_text().split(":")[0].isdigit() for t in legend.get_texts()) == len(runs)
    assert _inside_figure(paths, legend)
    assert _inside_figure(loss, loss.legends[0])


def test_peaks_path_leaving_the_frame_gets_an_edge_marker():
    surface, trajs, runs = _peaks_runs()
    (x0, x1), (y0, y1) = surface.domain
    ends = np.asarray(trajs.params[:, -1])
    out = np.flatnonzero(
        (ends[:, 0] < x0) | (ends[:, 0] > x1) | (ends[:, 1] < y0) | (ends[:, 1] > y1)
    )
    assert out.size  # seed 0 has a run that climbs out of the top edge
    colors = plot.run_colors(len(runs))
    fig = plot.landscape_2d(surface, trajs, labels=[r["reached"] for r in runs], colors=colors)
    ax = fig.axes[0]
    for i in out:
        marks = [
            ln
            for ln in ax.get_lines()
            if len(ln.get_xdata()) == 1 and mcolors.to_hex(ln.get_color()) == colors[i]
        ]
        on_edge = [
            ln
            for ln in marks
            if np.isclose(ln.get_xdata()[0], [x0, x1], atol=1e-4).any()
            or np.isclose(ln.get_ydata()[0], [y0, y1], atol=1e-4).any()
        ]
        assert on_edge, f"run {i} leaves the frame without a marker on its edge"
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert sum("left the frame" in t for t in texts) >= len(out)


# --------------------------------------------------------------------------
# 4. arrival_vs_lr: runs that never arrive are shown, not dropped.


def _arrival_sweep():
    """Lesson D's sweep (N = 50) with arrivals where some rules never arrive
    and the gradient rule diverges at the larger scales."""
    sw = dynamic_lr.compute(epochs=50).sweep
    arrive = [
        [-1, -1, -1, 39, 14, 6, 3, 4, 8, 22],
        [-1, -1, -1, -1, 17, 6, 3, 3, 6, 11],
        [-1] * 10,
    ]
    diverged = [[False] * 10, [False] * 10, [False] * 4 + [True] * 6]
    return dataclasses.replace(
        sw,
        converged_step=jnp.asarray(arrive, dtype=jnp.int32)[:, None, :],
        diverged=jnp.asarray(diverged)[:, None, :, None],
    )


def test_arrival_plot_shows_runs_that_never_arrive():
    sw = _arrival_sweep()
    fig = plot.arrival_by_rule(sw, reference=(1 / 6, "lr = 1/6"))
    ax = fig.axes[0]
    missing = int(np.sum(np.asarray(sw.converged_step) < 0))
    assert missing == 17  # 3 + 4 + 10
    markers = [ln for ln in ax.get_lines() if ln.get_marker() in ("^", "x")]
    assert sum(len(ln.get_xdata()) for ln in markers) == missing
    assert all(np.all(np.asarray(ln.get_ydata()) > 50) for ln in markers)
    # no legend entry for a rule without data unless it says why
    legend = fig.legends[0] if fig.legends else ax.get_legend()
    rules = [t.get_text() for t in legend.get_texts() if t.get_text().split()[0] in sw.rules]
    assert len(rules) == len(sw.rules)
    assert "lr = 1/6" in [t.get_text() for t in legend.get_texts()]
    for text in rules:
        line = next(ln for ln in ax.get_lines() if ln.get_label() == text)
        has_points = np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any()
        assert has_points or "none arrived" in text, text
    assert not _overlap(_tick_boxes(fig, ax.xaxis))


# --------------------------------------------------------------------------
# 5. convergence_time: starts that did not converge are masked.


def test_convergence_time_masks_starts_that_reached_no_minimum():
    bmap = basins.map_basins("peaks", grid=16, steps=300)
    labels = bmap.label_grid()
    # the flat plateau corners: |grad| < tol from step 0, yet no minimum there
    plateau = (labels < 0) & (bmap.converged_step.reshape(bmap.grid) >= 0)
    assert plateau.any()
    fig = plot.convergence_time_map(bmap)
    data = fig.axes[0].images[0].get_array()
    np.testing.assert_array_equal(np.ma.getmaskarray(data), labels < 0)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("not converged" in t for t in texts)


# --------------------------------------------------------------------------
# 6. schedules.png: a grid that reads at ~1000 px; schedules drawn as steps.


def test_schedule_overview_is_a_readable_grid_of_steps():
    curves = schedule_plots.compute()
    fig = plot.schedule_grid(curves)
    w, h = fig.get_size_inches() * 110  # the report's dpi
    assert w <= 1100 and h <= 1000 and w / h < 2.5
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.lines]
    assert len(panels) == len(curves)
    assert len({round(ax.get_position().y0, 3) for ax in panels}) >= 2
    multi = next(ax for ax in panels if "multi" in ax.get_title())
    assert all(ln.get_drawstyle() == "steps-post" for ln in multi.lines)


# --------------------------------------------------------------------------
# 7. basin_map's title: the rule in words, never None or a repr, never clipped.


@pytest.mark.parametrize(
    ("rule", "lr", "word"),
    [
        (S.parse_spec("cosine:max_steps=1000,final_lr=0.001", base_lr=0.05), None, "cosine"),
        (gdjax.optimizer(optax.adam), 0.05, "adam"),
    ],
)
def test_basin_map_title_in_words_and_inside_the_figure(rule, lr, word):
    bmap = basins.map_basins("peaks", grid=8, steps=20, rule=rule, lr=lr)
    fig = plot.basin_map(bmap, basins.critical_points("peaks"))
    title = fig.axes[0].title
    text = title.get_text()
    assert word in text and "None" not in text and "0x" not in text and "Factory" not in text
    assert _inside_figure(fig, title)


def test_describe_rule():
    assert gdjax.describe_rule("fixed", 0.1 + 0.2) == "fixed lr 0.3"
    cosine = S.parse_spec("cosine:max_steps=1000", base_lr=0.05)
    assert "None" not in gdjax.describe_rule(cosine, None)
    words = gdjax.describe_rule(cosine)
    assert words == "cosine schedule (base_lr 0.05, max_steps 1000, final_lr 0)"
    sgd = gdjax.optimizer(optax.sgd, momentum=0.9)
    assert gdjax.describe_rule(sgd, 0.05) == "optax sgd (momentum 0.9), lr 0.05"
    words = gdjax.describe_rule(gdjax.optimizer(optax.adam), 0.05)
    assert words == "optax adam, lr 0.05"


# --------------------------------------------------------------------------
# 8. LeNet curves: loss and accuracy on separate labelled axes, from epoch 1.


def _run_result(models=1, epochs=3, per_epoch=4, within=True):
    configs = [train.TrainConfig(epochs=epochs) for _ in range(models)]
    ep = [
        [
            {
                "epoch": e + 1,
                "train_loss": 1.0 / (e + 1),
                "train_acc": 0.6 + 0.05 * e,
                "test_acc": 0.58 + 0.05 * e,
                "lr": 0.1,
                "seconds": 1.0,
            }
            for e in range(epochs)
        ]
        for _ in range(models)
    ]
    curves = [
        [
            {"epoch": e + (i + 1) / per_epoch, "train_loss": 1.0 / (e + 1), "train_acc": 0.6}
            for e in range(epochs)
            for i in range(per_epoch)
        ]
        if within
        else []
        for _ in range(models)
    ]
    return train.RunResult(configs, ep, curves, 0.0, None, {})


@pytest.mark.parametrize(("models", "within"), [(1, False), (1, True), (4, True)])
def test_training_curves_separate_labelled_axes(models, within):
    result = _run_result(models=models, within=within)
    fig = plot.training_curves(result)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2 * models
    for ax in axes:
        ylabel = ax.get_ylabel()
        labels = " ".join(ln.get_label() for ln in ax.get_lines())
        assert ylabel in ("train loss", "accuracy")
        if ylabel == "train loss":
            assert "accuracy" not in labels
        else:
            assert "loss" not in labels
        lo, hi = ax.get_xlim()
        first = 1.0 if not within else 0.25
        assert first - 0.1 <= lo <= first and hi >= 3
    assert _inside_figure(fig, axes[0].title)


def test_training_curves_one_epoch_without_within_epoch_points():
    fig = plot.training_curves(_run_result(epochs=1, within=False))
    _drawn(fig)
    ax = fig.axes[1]
    lo, hi = ax.get_xlim()
    assert lo < 1 < hi
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == ["1"]


# --------------------------------------------------------------------------
# 9. error_grid: the title fits on small grids; cell text reads on its cell.


@pytest.mark.parametrize(("lrs", "epochs"), [((0.01,), (10,)), ((0.01, 0.1), (10, 30))])
def test_error_grid_title_fits_small_grids(lrs, epochs):
    quad = gdjax.surfaces.get("quadratic")
    sw = gdjax.sweep(quad, jnp.float32(X0), jnp.array(lrs), epochs=epochs, target=0.5, tol=0.01)
    fig = plot.error_grid(sw)
    assert _inside_figure(fig, fig.axes[0].title)


def test_error_grid_text_contrasts_with_its_cell():
    quad = gdjax.surfaces.get("quadratic")
    lrs = jnp.array([1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0])
    sw = gdjax.sweep(quad, jnp.float32(X0), lrs, epochs=(1, 10, 100, 1000), target=0.5, tol=0.01)
    fig = plot.error_grid(sw)
    ax = fig.axes[0]
    im = ax.images[0]
    data = im.get_array()
    checked = 0
    for t in ax.texts:
        j, i = (round(v) for v in t.get_position())
        cell = im.cmap.get_bad() if np.ma.is_masked(data[i, j]) else im.cmap(im.norm(data[i, j]))
        assert _contrast(t.get_color(), cell) >= 3.0, (t.get_text(), cell)
        checked += 1
    assert checked == data.size


# --------------------------------------------------------------------------
# 10. Every basin plot draws every legitimate outcome.


@pytest.fixture(scope="module")
def outcomes():
    return {
        "nothing converged": basins.map_basins("peaks", grid=8, steps=1),
        "everything diverged": basins.map_basins("rosenbrock", grid=8, lr=1.0),
        "everything diverged (huge lr)": basins.map_basins("himmelblau", grid=8, lr=1e30),
    }


@pytest.mark.parametrize(
    "case", ["nothing converged", "everything diverged", "everything diverged (huge lr)"]
)
def test_basin_plots_draw_every_outcome(outcomes, case):
    bmap = outcomes[case]
    expected = -1 if case == "nothing converged" else -2
    assert bmap.minima == () and np.all(bmap.labels == expected)
    for fig in (
        plot.basin_map(bmap),
        plot.convergence_time_map(bmap),
        plot.basin_scatter(bmap),
    ):
        _drawn(fig)
    fig = plot.convergence_time_map(bmap)
    assert np.ma.getmaskarray(fig.axes[0].images[0].get_array()).all()
    assert any("no start reached a minimum" in t.get_text() for t in fig.axes[0].texts)


def test_best_of_k_with_no_global_start():
    ks = [1, 2, 5, 10, 100]
    fig = plot.best_of_k_curve(ks, basins.best_of_k(0.0, ks), np.zeros(len(ks)))
    _drawn(fig)
    assert any("p = 0" in t.get_text() for t in fig.axes[0].texts)


# --------------------------------------------------------------------------
# 11. basin_scatter for random-start maps.


def test_basin_scatter_colours_like_basin_map():
    bmap = basins.map_basins("peaks", starts=2000, key=jax.random.key(0))
    assert bmap.grid is None and len(bmap.minima) >= 3
    labels = np.asarray(bmap.labels).copy()
    labels[:50] = basins.DIVERGED  # make sure every kind of outcome is present
    bmap = dataclasses.replace(bmap, labels=labels)
    crit = basins.critical_points("peaks")
    fig = plot.basin_scatter(bmap, crit, max_points=500)
    ax = fig.axes[0]
    points = next(c for c in ax.collections if len(c.get_offsets()) == 500)
    faces = [mcolors.to_hex(c) for c in points.get_facecolors()]
    offsets = np.asarray(points.get_offsets())
    # the colour of each point is its label's, and labels' colours are distinct
    starts = np.asarray(bmap.starts, dtype=np.float64)
    by_start = {tuple(p): lab for p, lab in zip(starts, labels, strict=True)}
    colour_of = {}
    for p, face in zip(offsets.astype(np.float64), faces, strict=True):
        colour_of.setdefault(by_start[tuple(p)], set()).add(face)
    assert all(len(c) == 1 for c in colour_of.values())
    assert len({next(iter(c)) for c in colour_of.values()}) == len(colour_of)
    assert {-2, -1, 0}.issubset(colour_of)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("not converged") for t in texts)
    assert any(t.startswith("diverged") for t in texts)
    assert sum(t.startswith("min ") for t in texts) == len(bmap.minima)
    assert "random starts" in ax.get_title() and _inside_figure(fig, ax.title)
    # minima and the other critical points are marked
    assert len([ln for ln in ax.get_lines() if ln.get_marker() == "*"]) >= 3


# --------------------------------------------------------------------------
# 12. plot.live writes the PNG atomically: a crash while encoding it leaves
# the previous file whole.


def test_live_png_never_left_partial(tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "curves.png"
    callback = plot.live(path=str(path))
    callback(_run_result())
    good = path.read_bytes()
    assert good.startswith(b"\x89PNG")

    def dies_midway(im, fp, filename, *args, **kwargs):
        fp.write(b"\x89PNG partial")
        raise KeyboardInterrupt  # a kill while the PNG is being written

    monkeypatch.setitem(Image.SAVE, "PNG", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        callback(_run_result(epochs=4))
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary left


def test_training_curves_share_a_scale_that_holds_every_model():
    """Panels share one y scale: the union of the models' ranges (sharing
    first clipped every model to the first one's range)."""
    from gdjax import schedules as S
    from gdjax import train

    cfgs = [train.TrainConfig(schedule=S.constant(0.1), epochs=3, seed=k) for k in range(4)]
    loss = [[2.0 + 0.3 * k - 0.3 * e for e in range(3)] for k in range(4)]
    rows = [
        [
            {
                "epoch": e + 1,
                "train_loss": loss[k][e],
                "train_acc": 0.5 + 0.1 * k,
                "test_acc": 0.5 + 0.1 * k,
                "lr": 0.1,
                "seconds": 1.0,
            }
            for e in range(3)
        ]
        for k in range(4)
    ]
    curves = [
        [{key: r[key] for key in ("epoch", "train_loss", "train_acc")} for r in m] for m in rows
    ]
    fig = plot.training_curves(
        train.RunResult(cfgs, rows, curves, 0.0, None, {"steps_per_epoch": 1})
    )
    lows, highs = zip(*(ax.get_ylim() for ax in fig.axes if ax.get_visible()), strict=True)
    assert min(lows) <= 1.4 and max(highs) >= 2.9  # model 0's lowest, model 3's highest loss
    loss_axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_ylabel() == "train loss"]
    assert len(loss_axes) == 4 and len({ax.get_ylim() for ax in loss_axes}) == 1
    assert loss_axes[0].get_ylim()[1] >= 2.9


def test_uncertainty_fits_draw_each_scale_where_one_power_law_does_not_fit():
    from gdjax import fractal
    from gdjax.plot.fractal import uncertainty_fits

    eps = np.geomspace(1e-5, 1e-2, 8)
    n = 10**7  # flat (dimension 2) for the smaller four sizes, then f ~ eps (dimension 1)
    counts = np.rint(n * np.where(eps < 3e-4, 6e-4, 2 * eps)).astype(np.int64)
    frac, low, high = basins.wilson_interval(counts, n)
    alpha, intercept, se, chi2 = fractal._fit_power_law(eps, counts, n, counts / n <= 0.1)
    u = fractal.Uncertainty(eps, frac, low, high, n, alpha, 2 - alpha, intercept, se, chi2)
    assert not u.power_law
    small, large = u.scales()
    assert abs(small.dimension - 2) < 0.01 and abs(large.dimension - 1) < 0.01
    fig = uncertainty_fits([("band", u)])
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts[0].startswith("band: α = ") and "not one power law" in texts[0]
    assert texts[1].strip().startswith("dimension 2.00 ± ") and "from 1e-05 to" in texts[1]
    assert texts[2].strip().startswith("dimension 1.00 ± ")
    # a power law: one entry, no parts
    one = u._replace(chi2_dof=1.0)
    texts = [
        t.get_text() for t in uncertainty_fits([("disc", one)]).axes[0].get_legend().get_texts()
    ]
    assert len(texts) == 1


def test_uncertainty_fits_name_every_series_beside_the_axes_when_many():
    from gdjax import fractal
    from gdjax.plot.fractal import uncertainty_fits

    eps = np.geomspace(1e-4, 1e-1, 6)
    n = 1000

    def unc(counts):
        counts = np.asarray(counts)
        frac, low, high = basins.wilson_interval(counts, n)
        fit = fractal._fit_power_law(eps, counts, n, counts / n <= 0.1)
        return fractal.Uncertainty(eps, frac, low, high, n, fit[0], 2 - fit[0], *fit[1:])

    line = unc(np.rint(n * 0.5 * eps).astype(int) + 1)
    full = unc([400, 420, 450, 480, 500, 520])  # above 0.1 everywhere: nothing fitted
    none = unc([0, 0, 0, 0, 0, 1])
    assert full.fills_domain and not none.fills_domain and not line.fills_domain
    fig = uncertainty_fits([("a", line), ("b", full), ("c", none)])
    assert fig.axes[0].get_legend() is None and len(fig.legends) == 1  # beside the axes
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[0].startswith("a: α = ")
    assert texts[1] == "b: no fit, above 0.1\n(the boundary fills it)"
    assert texts[2] == "c: too few uncertain starts to fit"
