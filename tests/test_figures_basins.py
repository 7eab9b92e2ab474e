"""Basins, optimizers and LeNet figures as a reader sees them (issue 21):
every outcome is seen, one minimum reads one value everywhere, every mark
is in the legend, a colour scale spans the values it shows, ticks and
titles read as words, and a running average is not drawn across the epoch
where it restarts. Figures are read back from the matplotlib objects,
reports from their HTML text."""

from __future__ import annotations

import html
import io
import json
import re
from types import SimpleNamespace

import jax
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import colors as mcolors
from matplotlib.lines import Line2D
from PIL import Image

from gdjax import basins, plot, runs, train
from gdjax import continuation as C
from gdjax.cli import main as cli_main
from gdjax.lessons import local_minima, optimizer_maps
from gdjax.lessons.chapter import chapter_schedule
from gdjax.plot._style import _luminance
from gdjax.plot.training import training_curves
from gdjax.report import write_training_report

SAVED_DPI = 110  # png_bytes


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _contrast(c1, c2) -> float:
    l1, l2 = _luminance(mcolors.to_rgba(c1)), _luminance(mcolors.to_rgba(c2))
    hi, lo = max(l1, l2), min(l1, l2)
    return (hi + 0.05) / (lo + 0.05)


def _page(folder) -> str:
    return (folder / "report.html").read_text()


def _text(page: str) -> str:
    page = re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _tables(page: str) -> dict[str, list[list[str]]]:
    """Each table of a report, by the heading before it: rows of cell texts."""
    out = {}
    for part in re.split(r"<h2>", page)[1:]:
        heading = html.unescape(part.split("</h2>")[0])
        table = re.search(r"<table>(.*?)</table>", part, flags=re.S)
        if table:
            out[heading] = [
                [html.unescape(c) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", row)]
                for row in re.findall(r"<tr>(.*?)</tr>", table.group(1))
            ]
    return out


def _legend(ax) -> dict[str, object]:
    legend = ax.get_legend()
    return {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}


# --------------------------------------------------------------------------
# 1. basin_scatter: a start that did not converge is seen on the white axes,
# as the legend draws it.


def test_basin_scatter_draws_not_converged_starts_visibly_as_its_legend_does():
    bmap = basins.map_basins("peaks", starts=20000, key=jax.random.key(0))
    labels = np.asarray(bmap.labels)
    assert 0.3 < np.mean(labels == basins.NOT_CONVERGED) < 0.6  # the flat outer plateau
    fig = plot.basin_scatter(bmap, basins.critical_points("peaks"))
    ax = fig.axes[0]
    points = next(c for c in ax.collections if len(c.get_offsets()) == len(labels))
    offsets = np.asarray(points.get_offsets(), dtype=np.float64)
    starts = np.asarray(bmap.starts, np.float64)
    by_start = {tuple(p): lab for p, lab in zip(starts, labels, strict=True)}
    white = np.array([by_start[tuple(p)] == basins.NOT_CONVERGED for p in offsets])
    n = len(labels)
    faces = np.broadcast_to(points.get_facecolors(), (n, 4))[white]
    edges = np.broadcast_to(points.get_edgecolors(), (n, 4))[white]
    widths = np.broadcast_to(points.get_linewidths(), (n,))[white]
    background = ax.get_facecolor()
    assert all(mcolors.to_hex(f) == "#ffffff" for f in faces)  # white, as basin_map draws them
    # seen by their edge: dark on white, and at least 0.6 px wide in the saved PNG
    assert min(_contrast(e, background) for e in edges) >= 7.0
    assert widths.min() * SAVED_DPI / 72 >= 0.6
    # the legend draws a point that did not converge as the points are drawn
    legend = _legend(ax)
    handle = next(h for t, h in legend.items() if t.startswith("not converged"))
    assert isinstance(handle, Line2D) and handle.get_marker() == "o"
    assert mcolors.to_hex(handle.get_markerfacecolor()) == "#ffffff"
    assert _contrast(handle.get_markeredgecolor(), background) >= 7.0


# --------------------------------------------------------------------------
# 2. The basins report: one minimum, one value (the same text in the legend,
# the minima table, the critical points and the sentence); no lesson's name
# in a command's report; no unset field in its configuration.


@pytest.fixture(scope="module")
def himmelblau_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("himmelblau")
    argv = ["basins", "--surface", "himmelblau", "--starts", "3000", "--out", str(out)]
    assert cli_main([*argv, "--no-progress"]) == 0
    return out


def test_basins_report_shows_one_value_per_minimum(himmelblau_report):
    res = json.loads((himmelblau_report / "basins.json").read_text())
    values = [m["value"] for m in res["minima"]]
    crit = [c for c in res["critical_points"] if c["kind"] == "min"]
    assert len(values) == 4 == len(crit)
    # the refinements differ at round-off (0, 7.9e-31, 4e-26): what the report must not show
    assert len({*values, *(c["value"] for c in crit)}) > 1
    assert max(abs(v) for v in values + [c["value"] for c in crit]) < 1e-20
    page = _page(himmelblau_report)
    tables = _tables(page)
    minima = next(rows for h, rows in tables.items() if h.startswith("Minima found"))
    f_col = minima[0].index("f")
    shown = {row[0].rstrip("*"): row[f_col] for row in minima[1:] if row[0].rstrip("*").isdigit()}
    assert shown == {str(i): "0" for i in range(4)}
    critical = tables["Critical points"]
    mins = [row for row in critical[1:] if row[0].startswith("min")]
    assert [row[critical[0].index("f")] for row in mins] == ["0"] * 4
    assert sorted(re.search(r"label (\d)", row[0]).group(1) for row in mins) == list("0123")
    text = _text(page)
    assert "f = 0," in text and "e-31" not in text and "e-26" not in text and "e-27" not in text
    # the figure's legend, from the same map
    bmap = basins.map_basins("himmelblau", starts=3000, key=jax.random.key(0))
    crit_points = basins.critical_points("himmelblau", domain=bmap.domain)
    legend = _legend(plot.basin_scatter(bmap, crit_points).axes[0])
    f_texts = [re.search(r"f = ([^,]+),", t).group(1) for t in legend if t.startswith("min ")]
    assert f_texts == ["0"] * 4


def test_basins_report_names_no_lesson_and_no_unset_field(himmelblau_report):
    text = _text(_page(himmelblau_report))
    # (the page also shows the command line that made it: pytest's, here)
    text = text.replace(runs.command_line(), "")
    assert "lesson" not in text.lower()
    assert "Random restarts" in text
    config = re.findall(r"<pre>(.*?)</pre>", _page(himmelblau_report), flags=re.S)[-1]
    lines = dict(line.split(": ", 1) for line in html.unescape(config).splitlines())
    assert "grid" not in lines and "batch" not in lines
    assert lines["mode"] == "random" and lines["starts"] == "3000"
    assert not [k for k, v in lines.items() if v in ("None", "[]", "")]


def test_value_text_reads_round_off_as_zero_and_the_rest_to_four_digits():
    assert plot.basins.value_text(0.0) == "0"
    assert plot.basins.value_text(7.889e-31, 181.6) == "0"
    assert plot.basins.value_text(-4e-26) == "0"
    assert plot.basins.value_text(-6.551133) == "-6.551"
    assert plot.basins.value_text(-0.0649359) == "-0.06494"
    assert plot.basins.value_text(1e-9) == "1e-09"  # far above round-off: shown as it is
    assert plot.basins.value_scale([0.0, -6.5, 8.1, float("nan")]) == 8.1


# --------------------------------------------------------------------------
# 3. Lesson C's basin map: the example paths are in the legend, and none
# starts in a corner of the box (where peaks is flat: a lone dot, no path).


def test_basin_map_names_its_example_paths_and_none_starts_in_a_corner():
    config = local_minima.config("peaks", grid=32, steps=300)
    study = local_minima.compute(config)
    starts = np.asarray(study.trajs.params)[:, 0]
    assert len(starts) == local_minima.SHOWN_PATHS
    (x0, x1), (y0, y1) = study.bmap.domain
    corners = np.array([[x, y] for x in (x0, x1) for y in (y0, y1)])
    cell = (x1 - x0) / 32
    nearest = np.min(np.linalg.norm(starts[:, None] - corners[None], axis=-1), axis=1)
    assert nearest.min() > 4 * cell
    fig = plot.basin_map(study.bmap, study.critical, study.trajs)
    ax = fig.axes[0]
    legend = _legend(ax)
    name = next(t for t in legend if "example path" in t)
    assert name.startswith(f"{local_minima.SHOWN_PATHS} example paths")
    handle = legend[name]
    assert handle.get_color() == "k" and handle.get_marker() == "o"
    # what the legend names is what is drawn: black lines from a dot at each start
    dots = [ln for ln in ax.get_lines() if ln.get_marker() == "o" and len(ln.get_xdata()) == 1]
    assert sorted((ln.get_xdata()[0], ln.get_ydata()[0]) for ln in dots) == sorted(
        map(tuple, starts)
    )


# --------------------------------------------------------------------------
# 4. The optimizers' agreement: the colours span the values shown (0.550 to
# 0.595 were one colour on a 0-1 scale), and every number reads on its cell.


def _agreement(values) -> SimpleNamespace:
    names = ["gd", "momentum", "nesterov", "adam"][: len(values)]
    return SimpleNamespace(agreement=np.asarray(values), names=names)


def test_agreement_colours_span_the_values_and_every_number_reads_on_its_cell():
    a = np.array(
        [
            [0.595, 0.550, 0.560, 0.571],
            [0.550, 0.590, 0.585, 0.552],
            [0.560, 0.585, 0.593, 0.566],
            [0.571, 0.552, 0.566, 0.580],
        ]
    )
    fig = plot.optimizers.agreement_matrix(_agreement(a))
    ax, cax = fig.axes
    im = ax.images[0]
    assert im.norm.vmin == pytest.approx(0.550) and im.norm.vmax == pytest.approx(0.595)
    cells = im.cmap(im.norm(a))
    lum = np.array([[_luminance(c) for c in row] for row in cells])
    assert lum.max() - lum.min() > 0.5  # the lowest and the highest cells differ
    assert "0.550 to 0.595" in cax.get_ylabel()  # the colour bar says what it spans
    ticks = [t.get_text() for t in cax.get_yticklabels()]
    assert ticks[0] == "0.550" and ticks[-1] == "0.595"
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    for (i, j), t in texts.items():
        assert t.get_text() == f"{a[i, j]:.3f}"
        assert _contrast(t.get_color(), cells[i, j]) >= 4.5


def test_agreement_of_one_value_draws_one_colour_and_says_so():
    fig = plot.optimizers.agreement_matrix(_agreement(np.full((2, 2), 0.5)))
    ax, cax = fig.axes
    im = ax.images[0]
    assert im.norm.vmin < 0.5 < im.norm.vmax
    assert "every cell 0.500" in cax.get_ylabel()
    assert [t.get_text() for t in cax.get_yticklabels()] == ["0.500"]


# --------------------------------------------------------------------------
# 5. The optimizers' maps: tick labels at least 9 points (13.75 px in the PNG).


@pytest.fixture(scope="module")
def comparison():
    return optimizer_maps.compute("peaks", grid=16, steps=200, optimizers=["gd", "momentum"])


def test_optimizer_maps_ticks_read_at_nine_points_or_more(comparison):
    fig = plot.optimizers.maps_side_by_side(comparison)
    fig.canvas.draw()
    maps = [ax for ax in fig.axes if ax.images]
    assert len(maps) == 2
    for ax in maps:
        labels = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
        assert labels and min(t.get_fontsize() for t in labels) >= 9
        assert ax.xaxis.label.get_fontsize() >= 9 and ax.yaxis.label.get_fontsize() >= 9


# --------------------------------------------------------------------------
# 6. LeNet curves: a running average restarts with every epoch, so the line
# breaks there and a dot marks each epoch's mean; the title is in words.


def _lenet_result(epochs=3, per_epoch=3, schedules=("constant",), seeds=(0,)):
    configs = [
        train.TrainConfig(schedule=chapter_schedule(s), epochs=epochs, seed=k)
        for s in schedules
        for k in seeds
    ]
    rows, curves = [], []
    for _ in configs:
        # within an epoch the average falls from 2 - e; the epoch's mean is 1.5 - e
        curve = [
            {
                "epoch": e + (i + 1) / (per_epoch + 0.5),  # no point at the epoch's end
                "train_loss": 2.0 - e - 0.1 * i,
                "train_acc": 0.3 + 0.2 * e + 0.01 * i,
            }
            for e in range(epochs)
            for i in range(per_epoch)
        ]
        rows.append(
            [
                {
                    "epoch": e + 1,
                    "train_loss": 1.5 - e,
                    "train_acc": 0.4 + 0.2 * e,
                    "test_acc": 0.35 + 0.2 * e,
                    "lr": 0.3,
                    "seconds": 1.0,
                }
                for e in range(epochs)
            ]
        )
        curves.append(curve)
    return train.RunResult(configs, rows, curves, 0.0, None, {"steps_per_epoch": 4})


@pytest.mark.parametrize("key", ["train_loss", "train_acc"])
def test_training_curves_break_at_each_epoch_and_mark_its_mean(key):
    result = _lenet_result()
    fig = plot.training_curves(result)
    ax = fig.axes[0 if key == "train_loss" else 1]
    name = "train loss" if key == "train_loss" else "train accuracy"
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    mine = {label: ln for label, ln in lines.items() if label.startswith(name)}
    running = next(ln for label, ln in mine.items() if "running" in label)
    xs, ys = np.asarray(running.get_xdata(), float), np.asarray(running.get_ydata(), float)
    # drawn where measured, and no segment joins two epochs
    curve = result.curves[0]
    assert xs[np.isfinite(ys)].tolist() == [p["epoch"] for p in curve]
    for a, b, ya, yb in zip(xs[:-1], xs[1:], ys[:-1], ys[1:], strict=True):
        if np.isfinite(ya) and np.isfinite(yb):
            assert np.ceil(a) == np.ceil(b), (a, b)
    assert np.isnan(ys).sum() == 2  # two breaks between three epochs
    # each epoch's mean (the value at its end), drawn as a dot and named
    means = next(ln for label, ln in mine.items() if "epoch mean" in label)
    assert means is not running and means.get_marker() == "o" and means.get_linestyle() == "None"
    assert list(means.get_xdata()) == [1, 2, 3]
    assert list(means.get_ydata()) == [e[key] for e in result.epochs[0]]
    legend = fig.axes[0 if key == "train_loss" else 1].get_legend()
    assert {t.get_text() for t in legend.get_texts()} >= {running.get_label(), means.get_label()}


def test_training_curves_titles_are_words_not_slugs():
    fig = plot.training_curves(_lenet_result())
    assert fig.axes[0].get_title() == "constant, base lr 0.3"
    seeds = _lenet_result(schedules=("constant", "multi_factor"), seeds=(0, 1))
    titles = [ax.get_title() for ax in plot.training_curves(seeds).axes if ax.get_title()]
    assert titles[0] == "constant, base lr 0.3, seed 0"
    assert titles[3].replace("\n", " ") == (
        "multi factor, base lr 0.5, milestones 15/30, factor 0.5, seed 1"
    )
    assert not [t for t in titles if "_" in t or ":" in t or "=" in t]


def test_lenet_report_titles_its_curves_in_words(tmp_path, monkeypatch):
    """The report passed the models' file-safe names (constant_base_lr_0.3)
    as the curves' titles."""
    drawn = []

    def spy(result, **kwargs):
        fig = training_curves(result, **kwargs)
        drawn.append([ax.get_title() for ax in fig.axes if ax.get_title()])
        return fig

    monkeypatch.setattr(plot, "training_curves", spy)
    result = _lenet_result()
    result.meta.update(
        train_examples=12, test_examples=4, param_count=1, mode="single", backend="cpu", devices=1
    )
    write_training_report(tmp_path, result, ["constant_base_lr_0.3"], "LeNet")
    assert drawn == [["constant, base lr 0.3"]]
    assert "the line breaks where an epoch starts its average again" in _text(_page(tmp_path))


# --------------------------------------------------------------------------
# 5b. The continuation's maps.gif: every frame has axes, its rate and share
# in the title, and the maps' legend (its frames had no ticks and no legend);
# maps.png's ticks at 9 points.


@pytest.fixture(scope="module")
def small_continuation():
    return C.continuation("peaks", lrs=np.geomspace(1e-3, 0.2, 4), grid=16, steps=200)


def test_continuation_gif_frames_have_axes_title_and_legend(small_continuation, monkeypatch):
    closed = []
    close = plt.close

    def spy(fig=None):
        closed.append(fig)
        close(fig)

    monkeypatch.setattr(plt, "close", spy)
    gif = plot.continuation.animation(small_continuation)
    fig = closed[-1]  # the figure every frame was drawn on, as its last frame left it
    (ax,) = fig.axes
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"
    labels = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 4 and min(t.get_fontsize() for t in labels) >= 9
    assert "lr = 0.2" in ax.get_title() and "to the global min" in ax.get_title()
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts[-2:] == ["not converged", "diverged"]
    assert sum(t.startswith("min ") for t in texts) == len(small_continuation.bmap.minima) >= 3
    frames = Image.open(io.BytesIO(gif))
    assert frames.n_frames == 4
    width, height = frames.size
    assert width > height  # the legend beside the map


def test_continuation_gif_frames_keep_their_layout_and_show_their_own_map(
    small_continuation, monkeypatch
):
    """Each frame redraws the map and the title over the parts that stay: the
    legend, ticks and axis labels are the same pixels in every frame, and
    every cell shows its own rate's outcome, in that outcome's colour."""
    rgb, closed = [], []
    fromarray, close = Image.fromarray, plt.close
    monkeypatch.setattr(Image, "fromarray", lambda a: rgb.append(a.copy()) or fromarray(a))
    monkeypatch.setattr(plt, "close", lambda fig=None: closed.append(fig) or close(fig))
    plot.continuation.animation(small_continuation)
    (ax,) = closed[-1].axes
    bmap = small_continuation.bmap
    grids = bmap.label_grid()
    assert len(rgb) == len(grids) == 4
    height = rgb[0].shape[0]
    # the map's pixels, and the title's band above it left of the legend
    # (display y counts up, rows down)
    moving = np.zeros(rgb[0].shape[:2], bool)
    x0, y0, x1, y1 = ax.get_window_extent().extents
    moving[int(height - y1) - 2 : int(height - y0) + 3, int(x0) - 2 : int(x1) + 3] = True
    (legend,) = closed[-1].legends
    moving[: int(height - y1), : int(legend.get_window_extent().x0)] = True
    for frame in rgb[1:]:
        assert np.array_equal(frame[~moving], rgb[0][~moving])
    styles = plot.basins.outcome_styles(bmap)
    (x0, x1), (y0, y1) = bmap.domain
    n = grids.shape[-1]
    centres = (np.arange(n) + 0.5) / n
    xs, ys = np.meshgrid(x0 + (x1 - x0) * centres, y0 + (y1 - y0) * centres)
    px, py = ax.transData.transform(np.stack([xs.ravel(), ys.ravel()], 1)).T
    rows, cols = (height - py).astype(int), px.astype(int)
    for frame, labels in zip(rgb, grids, strict=True):
        want = np.asarray([mcolors.to_rgb(styles[int(v)][0]) for v in labels.ravel()])
        got = frame[rows, cols] / 255.0
        same = np.all(np.abs(got - want) < 1.5 / 255, axis=1)
        assert same.mean() > 0.9, same.mean()  # markers cover a few cells
    assert len({g.tobytes() for g in grids}) >= 3  # the maps differ: each frame its own


def test_continuation_map_panel_ticks_read_at_nine_points_or_more(small_continuation):
    fig = plot.continuation.map_panel(small_continuation)
    fig.canvas.draw()
    maps = [ax for ax in fig.axes if ax.images]
    assert maps
    for ax in maps:
        labels = [t for t in ax.get_xticklabels() + ax.get_yticklabels() if t.get_text()]
        assert labels and min(t.get_fontsize() for t in labels) >= 9


# --------------------------------------------------------------------------
# One word per outcome: "not converged" (basins.json's not_converged)
# everywhere, where some figures said "reached no minimum" or "no minimum".

_OTHER_WORDS = re.compile(r"reached no minimum|\bno minimum\b(?! reached)")


def _figure_text(fig) -> str:
    texts = [t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text"))]
    return " | ".join(texts)


def test_every_outcome_has_one_word_in_figures_and_reports(comparison, tmp_path):
    bmap = basins.map_basins("peaks", grid=24, lr=0.01, steps=200)
    for fig in (
        plot.basins.convergence_time_map(bmap),
        plot.optimizers.maps_side_by_side(comparison),
    ):
        words = _figure_text(fig)
        assert "not converged" in words and not _OTHER_WORDS.search(words), words
    optimizer_maps.write(tmp_path, comparison)
    tables = _tables(_page(tmp_path))
    header = next(t[0] for t in tables.values() if t and "optimizer" in t[0])
    assert "not converged" in header and not _OTHER_WORDS.search(" ".join(header)), header


def test_the_printed_summary_says_not_converged_in_words(himmelblau_report):
    """The terminal summary printed the JSON key, "not_converged: 49.10%"."""
    res = json.loads((himmelblau_report / "basins.json").read_text())
    text = local_minima.summary(res)
    assert "  not converged: " in text and "not_converged" not in text
