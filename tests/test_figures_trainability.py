"""The trainability figures as a reader sees them (issue 21), read back from
the matplotlib objects: the zoom windows outlined on the map they were taken
from, colour bars that say what a shade means, and box counting with ticks
at the sizes counted and a dimension with its error."""

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import colors as mcolors
from matplotlib.patches import Rectangle

from gdjax import fractal, plot
from gdjax import trainability as T
from gdjax.lessons import trainability_maps as TM
from gdjax.plot._style import _luminance

NAMES, LOGS = ("lr_0", "lr_1"), (True, True)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _synthetic(window: T.Window, n: int = 32, seed: int = 0) -> T.TrainabilityMap:
    """A map of ``window`` without training: a wavy boundary, random scores."""
    x, y = window.axes(NAMES, LOGS, n)
    gx, gy = np.meshgrid(np.log10(x.values), np.log10(y.values))
    u = (gx - window.cx) / window.wx + 0.1 * np.sin(20 * (gy - window.cy) / window.wy)
    conv = u < 0
    score = np.random.default_rng(seed).uniform(1, 100, conv.shape) * np.where(conv, -1, 1)
    return T.TrainabilityMap(x, y, conv, score, np.abs(score), window, 0.0)


def _rectangles(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _at(patch, window) -> bool:
    x, y = patch.get_xy()
    return np.allclose(
        [x, y, patch.get_width(), patch.get_height()],
        [window.cx - window.wx / 2, window.cy - window.wy / 2, window.wx, window.wy],
    )


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


# --------------------------------------------------------------------------
# Zoom windows on the maps they were taken from.


def test_the_map_outlines_zoom_0_and_each_zoom_the_next():
    """The main map did not outline zoom 0 (and zoom 0 was as wide as the
    map, half outside it): each zoom's window is now a rectangle on the map
    it was taken from, whole inside that map's axes."""
    main = _synthetic(T.NETWORK_WINDOW)
    windows = T.zoom_windows(main.window, (3.9, -3.9), levels=3)
    zooms = [_synthetic(w, seed=k + 1) for k, w in enumerate(windows)]
    fig = plot.trainability.trainability_map(main, "t", zoom=windows[0])
    (ax,) = _image_axes(fig)
    (rect,) = _rectangles(ax)
    assert _at(rect, windows[0])
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    box = rect.get_bbox()
    assert x0 <= box.x0 < box.x1 <= x1 and y0 <= box.y0 < box.y1 <= y1
    assert any(t.get_text() == "zoom 0" for t in ax.texts)
    # the label sits inside the figure
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    (label,) = [t for t in ax.texts if t.get_text() == "zoom 0"]
    lb, ab = label.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert ab.x0 - 1 <= lb.x0 and lb.x1 <= ab.x1 + 1 and ab.y0 - 1 <= lb.y0 and lb.y1 <= ab.y1 + 1

    seq = plot.trainability.zoom_sequence(zooms)
    panels = _image_axes(seq)
    assert len(panels) == 3
    for k, ax in enumerate(panels):
        rects = _rectangles(ax)
        if k + 1 < len(zooms):
            assert len(rects) == 1 and _at(rects[0], windows[k + 1])
        else:
            assert rects == []


def test_the_report_map_outlines_the_zoom_taken_from_it(tmp_path, monkeypatch):
    """The study's own figure: the map outlines zoom 0's window, 8x
    narrower than the map and inside it."""
    drawn = {}
    original = plot.trainability.trainability_map

    def keep(*args, **kwargs):
        drawn["fig"] = original(*args, **kwargs)
        return drawn["fig"]

    monkeypatch.setattr(plot.trainability, "trainability_map", keep)
    study = TM.compute(grid=16, steps=40, zoom_grid=16, zoom_levels=1, uncertainty=0)
    TM.write(tmp_path, study)
    (ax,) = _image_axes(drawn["fig"])
    (rect,) = _rectangles(ax)
    zw = study.zooms[0].window
    assert _at(rect, zw) and zw.wx == study.main.window.wx / 8
    assert "window of zoom 0 is outlined" in (tmp_path / "report.html").read_text()


def test_deep_zoom_tick_labels_do_not_overlap():
    """At 0.00195 decades the labels (3.31075, 3.31100, ...) ran together."""
    w = T.Window(3.31165, -3.8036, 8 / 8**4, 8 / 8**4)
    fig = plot.trainability.zoom_sequence([_synthetic(w)])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = _image_axes(fig)
    for axis in (ax.xaxis, ax.yaxis):
        lo, hi = sorted(axis.get_view_interval())
        boxes = [
            t.get_window_extent(renderer)
            for t, v in zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=False)
            if t.get_text() and lo <= v <= hi
        ]
        assert len(boxes) >= 2
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


# --------------------------------------------------------------------------
# What a shade means.


def _bars(fig):
    return [ax for ax in fig.axes if not ax.images and ax.get_label() == "<colorbar>"]


def _bar_colour(bar_ax, u):
    """The colour the bar draws at ``u`` (0: its light end, 1: its dark end)."""
    return np.asarray(bar_ax._colorbar.cmap(bar_ax._colorbar.norm(u)))[:3]


def test_the_map_has_colour_bars_that_say_what_the_shade_means():
    """There was no colour bar, and the docstring said dark blue trains
    best: darker is slower, on both sides. The bars' dark ends hold the
    darkest pixels, and on a real map the slowest training (lr 1e-4) is
    darker than the fastest."""
    tmap = T.network_map(resolution=16, steps=40)
    fig = plot.trainability.trainability_map(tmap, "t")
    bars = _bars(fig)
    assert len(bars) == 2
    labels = [b.xaxis.get_label().get_text() for b in bars]
    assert "trained (blue): rank of the sum of its losses / first loss" in labels
    assert "diverged (red): rank of the sum of first loss / its losses" in labels
    for b in bars:
        ticks = [t.get_text() for t in b.xaxis.get_ticklabels()]
        assert ticks == ["fastest", "median", "slowest"]
    rgb = plot.trainability.colours(tmap)
    score = np.abs(tmap.score)
    conv = tmap.converged
    for bar, side in zip(bars, (conv, ~conv), strict=True):
        assert side.any()
        slowest = np.unravel_index(np.argmax(np.where(side, score, -np.inf)), score.shape)
        np.testing.assert_allclose(rgb[slowest], _bar_colour(bar, 1.0), atol=0.02)
        fastest = np.unravel_index(np.argmin(np.where(side, score, np.inf)), score.shape)
        np.testing.assert_allclose(rgb[fastest], _bar_colour(bar, 0.0), atol=0.02)
    # lr 1e-4 on both layers barely moves the loss in 40 steps: the slowest
    slow, fast = (0, 0), np.unravel_index(np.argmin(np.where(conv, score, np.inf)), score.shape)
    assert score[slow] > score[fast]
    assert _luminance(mcolors.to_rgba(rgb[slow])) < _luminance(mcolors.to_rgba(rgb[fast]))
    # the zooms carry the same bars
    seq = plot.trainability.zoom_sequence([tmap, tmap])
    assert len(_bars(seq)) == 2


def test_a_surface_maps_bars_say_what_its_shade_means():
    tmap = _synthetic(T.NETWORK_WINDOW)
    x = T.Axis("lr", tmap.x.values, True)
    y = T.Axis("momentum", np.linspace(0, 0.99, tmap.y.values.size), False)
    # red: a descent that stayed bounded (score 0) or diverged (score 1)
    diverged = (np.arange(32 * 32).reshape(32, 32) % 7 == 0).astype(np.float64)
    score = np.where(tmap.converged, tmap.score, diverged)
    surface = tmap._replace(x=x, y=y, score=score)
    fig = plot.trainability.trainability_map(surface)
    blue, red = _bars(fig)
    assert blue.xaxis.get_label().get_text().startswith("converged (blue): rank of |final loss|")
    assert red.xaxis.get_label().get_text() == "did not converge (red): stayed bounded or diverged"
    assert [t.get_text() for t in red.xaxis.get_ticklabels()] == ["bounded", "diverged"]
    # two shades, not ranks: every bounded pixel one, every diverged one
    rgb = plot.trainability.colours(surface)
    for flag, u in ((0, 0.25), (1, 0.75)):
        pixels = rgb[~surface.converged & (score == flag)]
        assert len(pixels) > 5
        np.testing.assert_allclose(pixels, np.broadcast_to(_bar_colour(red, u), pixels.shape))
    # all bounded: still the bounded shade (a rank made them the median)
    only = surface._replace(score=np.where(surface.converged, score, 0.0))
    pixels = plot.trainability.colours(only)[~surface.converged]
    np.testing.assert_allclose(pixels, np.broadcast_to(_bar_colour(red, 0.25), pixels.shape))


def test_equal_scores_share_a_shade():
    """Ranks broke ties by pixel order: equal scores got different shades,
    drawing structure that is not there."""
    tmap = _synthetic(T.NETWORK_WINDOW)
    score = np.where(tmap.converged, tmap.score, 1.0000481)  # every divergent pixel ties
    rgb = plot.trainability.colours(tmap._replace(score=score))
    red = rgb[~tmap.converged]
    assert len(red) > 10 and np.all(red == red[0])
    u = plot.trainability.shade_ranks(tmap._replace(score=score))
    assert np.all(u[~tmap.converged] == 0.5)  # the mean rank
    assert len(np.unique(u[tmap.converged])) == tmap.converged.sum()  # distinct scores


# --------------------------------------------------------------------------
# Box counting.


def test_box_counting_ticks_at_the_sizes_and_the_dimension_with_its_error():
    """Ticks at 2^0..., 3x10^0 did not mark the four sizes counted; the
    dimension read 1.404 with no error."""
    tmap = T.network_map(resolution=128, steps=20)
    box = tmap.box_dimension()
    assert list(box.sizes) == [2, 4, 8, 16]
    se = T.box_dimension_se(box)
    assert 0 < se < 0.5
    fig = plot.trainability.box_counting(box, se=se)
    (ax,) = fig.axes
    lo, hi = ax.get_xlim()
    shown = [v for v in ax.get_xticks() if lo <= v <= hi]
    np.testing.assert_array_equal(shown, box.sizes)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "8", "16"]
    assert len(ax.xaxis.get_minorticklocs()) == 0
    lo, hi = ax.get_ylim()
    np.testing.assert_array_equal(
        [v for v in ax.get_yticks() if lo <= v <= hi], np.unique(box.counts)
    )
    (fit,) = [t.get_text() for t in ax.get_legend().get_texts() if t.get_text().startswith("fit")]
    text = T.with_error(box.dimension, se)
    assert f"dimension {text} (standard error of the slope)" in fit
    value, err = text.split(" ± ")
    # no more digits than the error supports
    assert len(value.split(".")[-1]) == len(err.split(".")[-1])
    assert float(err) == pytest.approx(se, rel=0.5)


def test_box_counting_without_an_error_says_no_more_than_two_decimals():
    box = fractal.box_dimension(np.tri(32, dtype=np.int8))  # sizes 2 and 4
    fig = plot.trainability.box_counting(box, se=T.box_dimension_se(box))
    (fit,) = [t.get_text() for t in fig.axes[0].get_legend().get_texts() if "fit" in t.get_text()]
    assert fit == f"fit: dimension {box.dimension:.2f}"


def test_the_zoom_table_gives_no_dimension_the_sample_cannot_resolve():
    """The zoom table printed the fitted 2 - alpha of an unresolved fit."""
    eps = np.geomspace(8e-6, 0.8, 12)  # the lesson's 512-point case: flat at small eps
    counts = [2, 2, 3, 1, 2, 5, 1, 6, 9, 12, 26, 82]
    u = fractal.Uncertainty.from_counts(eps, counts, 512)
    assert not u.resolved
    cell = TM._short(u.to_json())
    assert cell.startswith("not resolved") and f"{u.dimension:.2f}" not in cell
