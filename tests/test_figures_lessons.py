"""Lessons A (1D) and D (dynamic lr) as a reader sees them (issue 21): an
exact 0 reads as 0, never as a made-up 1e-12; a tie reads as a tie; a run
that never arrives or that diverged says so in words, with the step; the
numbers in a header are there. Figures are read back from the matplotlib
objects, reports from their HTML text."""

from __future__ import annotations

import html
import json
import re

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib import colors as mcolors

import gdjax
from gdjax import plot
from gdjax.cli import main as cli_main
from gdjax.lessons import dynamic_lr, gd_1d

X0 = 1.79  # a start of the quadratic (minimum at 0.5): lr 0.1 lands on 0.5 exactly in float32


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _report_text(folder) -> str:
    text = (folder / "report.html").read_text()
    text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)))


# --------------------------------------------------------------------------
# 1. An exact 0 reads as 0.


def test_error_grid_exact_zero_reads_0_in_its_own_colour():
    quad = gdjax.surfaces.get("quadratic")
    lrs = jnp.array([0.01, 0.1, 1.0])
    sw = gdjax.sweep(quad, jnp.float32(X0), lrs, epochs=(10, 100), target=0.5, tol=0.01)
    err = np.abs(np.asarray(sw.value[0, 0]) - 0.5)
    assert err[1, 1] == 0  # lr 0.1, 100 epochs: exactly at the minimum
    fig = plot.error_grid(sw)
    ax = fig.axes[0]
    texts = {tuple(round(v) for v in t.get_position()): t for t in ax.texts}
    assert texts[(1, 1)].get_text() == "0"
    assert not any("e-12" in t.get_text() for t in ax.texts)
    # the colour scale spans what was measured, not a floor of 1e-12
    im = ax.images[0]
    positive = err[(err > 0) & ~np.asarray(sw.diverged[0, 0])]
    assert im.norm.vmin == pytest.approx(positive.min(), rel=1e-6)
    # the zero cell's colour is drawn, and is no colour of the scale nor the diverged grey
    zero_images = [i for i in ax.images if i is not im]
    assert len(zero_images) == 1
    zero = zero_images[0].get_array()
    assert not np.ma.is_masked(zero[1, 1]) and np.ma.is_masked(zero[0, 0])
    colour = np.asarray(zero_images[0].cmap(zero_images[0].norm(zero[1, 1])))
    scale = im.cmap(np.linspace(0, 1, 256))
    assert np.min(np.abs(scale - colour).sum(-1)) > 0.3
    assert np.abs(np.asarray(mcolors.to_rgba(im.cmap.get_bad())) - colour).sum() > 0.3
    # the title says what the colour means
    assert "exactly 0" in ax.get_title()


def test_rules_comparison_marks_exact_zero_at_the_axis_bottom():
    rules = dynamic_lr.compute()
    dist = np.abs(np.asarray(rules.trajs.params) - 0.5)
    assert (dist[1] == 0).any()  # the time rule lands on 0.5 exactly
    labels = ["fixed", "time", "grad"]
    fig = plot.rules_comparison(rules.trajs, labels, target=0.5, tol=0.01)
    ax = fig.axes[1]
    assert ax.get_yscale() == "log"
    lo = ax.get_ylim()[0]
    for line in ax.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        if line.get_transform() == ax.transData:
            # no point drawn at a made-up floor: every y drawn on the data axis is measured
            assert not np.any(np.isclose(y, 1e-12)), line.get_label()
    # the zeros are marked on the axis bottom (axes coordinates), one marker per epoch at 0
    marks = [
        line
        for line in ax.get_lines()
        if line.get_transform() != ax.transData and line.get_marker() not in ("None", None, "")
    ]
    assert marks, "no marker for exact zeros"
    xs = np.concatenate([np.asarray(m.get_xdata(), dtype=float) for m in marks])
    assert set(xs.astype(int)) == set(np.flatnonzero(dist[1] == 0))
    assert all(np.allclose(m.get_ydata(), 0) for m in marks)
    assert lo < dist[dist > 0].min()
    (legend,) = fig.legends
    assert "exactly 0" in " ".join(t.get_text() for t in legend.get_texts())


# --------------------------------------------------------------------------
# 2. Lesson D: a tie is a tie; never reads "never".


def test_dynamic_lr_ties_are_ties(tmp_path):
    res = dynamic_lr.write(tmp_path, dynamic_lr.compute())
    by_lr = {w["lr"]: w for w in res["fastest_by_lr"]}
    # lr_0 0.1 and 0.15: fixed and time arrive at the same epoch; neither is fastest
    for lr in (0.1, 0.15):
        k = by_lr[lr]["epochs_to_arrive"]
        assert k["fixed"] == k["time"]
        assert by_lr[lr]["first_to_arrive"] == ["fixed", "time"]
        assert by_lr[lr]["fastest"] is None
    assert by_lr[0.3]["first_to_arrive"] == ["time"] and by_lr[0.3]["fastest"] == "time"
    assert by_lr[0.001]["first_to_arrive"] == [] and by_lr[0.001]["fastest"] is None
    text = _report_text(tmp_path)
    assert "0.1 6 6 never tie (fixed, time)" in text
    assert "0.15 3 3 never tie (fixed, time)" in text
    assert "0.3 22 11 never time" in text
    assert "ties for fastest at lr_0 in [0.1, 0.15]" in text
    summary = dynamic_lr.summary(res)
    assert "0.1: tie (fixed, time)" in summary and "0.3: time" in summary


def test_dynamic_lr_never_in_words_and_json_null(tmp_path):
    dynamic_lr.write(tmp_path, dynamic_lr.compute())
    text = _report_text(tmp_path)
    assert "-1" not in text.split(" Command ")[0]
    assert "time-based arrives at epoch 11; fixed arrives at epoch 22" in text
    # rules that never arrive: "never" in words, null in JSON
    res = dynamic_lr.write(tmp_path / "b", dynamic_lr.compute(lr=0.001))
    text = _report_text(tmp_path / "b")
    assert "time-based never arrives within 50 epochs; fixed never arrives within 50" in text
    assert "-1" not in text.split(" Command ")[0]
    assert "does not arrive" in dynamic_lr.summary(res)
    on_disk = json.loads((tmp_path / "b" / "results.json").read_text())
    assert on_disk["side_by_side"]["fixed"]["epochs_to_arrive"] is None
    assert on_disk["sweep"]["epochs_to_arrive"][0][0] is None
    assert on_disk["fastest_by_lr"][0]["epochs_to_arrive"]["fixed"] is None
    assert "null" in on_disk["sweep"]["note"]
    # a diverged run's final error is null, not -1
    grad_div = on_disk["sweep"]["diverged"][2]
    assert any(grad_div)
    assert all(
        (e is None) == d for e, d in zip(on_disk["sweep"]["final_error"][2], grad_div, strict=True)
    )


# --------------------------------------------------------------------------
# 3. Lesson A's table: the number of epochs; where a diverged run stopped.


def test_lesson_1d_table_says_epochs_and_where_it_diverged(tmp_path):
    res = gd_1d.write(tmp_path, gd_1d.compute(epochs=100))
    text = _report_text(tmp_path)
    assert "x after 100 epochs" in text
    large = res["runs"]["large_lr"]
    assert large["diverged"] and large["diverged_step"] == 15
    # the value shown is the last finite one, and the row says at which step
    assert re.search(r"1 -9\.6\d*e\+18 \(last finite, step 27\)", text), text
    assert "yes, at step 15" in text
    assert res["runs"]["large_lr"]["last_finite_step"] == 27
    assert res["runs"]["main"]["last_finite_step"] is None
    # a run that did not diverge shows its x plainly
    assert re.search(r"0\.01 0\.50\d+ ", text)


# --------------------------------------------------------------------------
# 4. gdjax lesson 1d refuses a rate float32 cannot hold before any compute.


@pytest.mark.parametrize(
    ("lesson", "option", "value"),
    [
        ("1d", "--large-lr", "1e300"),
        ("1d", "--lr", "1e300"),
        ("1d", "--small-lr", "1e-300"),
        ("1d", "--lr", "1e-40"),
        ("1d", "--tol", "1e300"),
        ("1d", "--tol", "1e-300"),
        ("1d", "--large-lr", "0"),
        ("1d", "--lr", "-1"),
        ("1d", "--small-lr", "nan"),
        ("1d", "--tol", "inf"),
        ("1d", "--epochs", "0"),
        ("dynamic-lr", "--lr", "1e300"),
        ("dynamic-lr", "--grad-scale", "1e-300"),
    ],
)
def test_lessons_refuse_options_float32_cannot_hold(
    tmp_path, capsys, monkeypatch, lesson, option, value
):
    def no_compute(*args, **kwargs):
        raise AssertionError("computed before refusing")

    monkeypatch.setattr(gd_1d, "compute", no_compute)
    monkeypatch.setattr(dynamic_lr, "compute", no_compute)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        cli_main(["lesson", lesson, "--out", str(out), option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert option in err
    assert not out.exists() or not any(out.iterdir())


def test_lesson_1d_library_refuses_before_compute(monkeypatch):
    def no_compute(seed):
        raise AssertionError("computed before refusing")

    monkeypatch.setattr(gd_1d, "quadratic_problem", no_compute)
    with pytest.raises(ValueError, match="large_lr must be between .* float32"):
        gd_1d.compute(large_lr=1e300)
    with pytest.raises(ValueError, match="tol must be between"):
        dynamic_lr.compute(tol=1e-300)
    # more epochs than memory holds: refused with the most that fit
    monkeypatch.setattr(gd_1d, "available_memory", lambda: 2 * 2**30)
    with pytest.raises(ValueError, match=r"epochs 100,000,000: .* use at most 2,684,353 epochs"):
        gd_1d.compute(epochs=10**8)


def test_cli_lesson_1d_refuses_epochs_beyond_memory(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gd_1d, "available_memory", lambda: 2 * 2**30)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        cli_main(["lesson", "1d", "--out", str(out), "--epochs", "1e8"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "epochs 100,000,000" in err, err
    assert not (out / "results.json").exists()
