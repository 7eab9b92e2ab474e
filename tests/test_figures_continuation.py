"""The continuation's figures and numbers as a reader sees them (issue 21):
fractions drawn where they were measured, labels apart, uncertainty
dimensions only where the sample resolves them, split fits told apart,
error bars, and the runs that failed to write their report or aborted
after compute. Figures are read back from the matplotlib objects."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import types

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from gdjax import continuation as C
from gdjax import fractal
from gdjax.cli import continuation as cli_continuation
from gdjax.cli._common import run_and_print
from gdjax.lessons import rate_continuation as L
from gdjax.plot import continuation as P
from gdjax.plot.fractal import uncertainty_fits

# The trainability lesson's main window at its default 512 starts per size
# (gdjax lesson trainability, seed 0): flat at about 0.5% from eps 8e-6 to
# 4e-3, then rising. The fit over every size read 1.69 ± 0.05, said as one
# power law.
TRAIN_EPS = np.geomspace(8e-6, 0.8, 12)
TRAIN_512 = [2, 2, 3, 1, 2, 5, 1, 6, 9, 12, 26, 82]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def wide():
    """Peaks over four decades of rates: the global minimum's basin vanishes
    inside the grid, and its stability limit lies 0.28 decades from the
    other two minima's (their labels ran together)."""
    return C.continuation("peaks", lrs=np.geomspace(1e-3, 10, 8), grid=32, steps=600)


def _band(ax, label):
    """The path (data coordinates) of the artist drawn with ``label``."""
    for artist in ax.get_children():
        if artist.get_label() == label:
            if hasattr(artist, "get_paths"):
                return artist.get_paths()[0]
            return artist.get_path()
    raise AssertionError(f"nothing drawn as {label!r}")


def test_fractions_are_drawn_at_the_measured_rates_not_between(wide):
    """The global basin is drawn at its measured fraction up to the cell
    boundary of its last rate and not at all past it (the stacked areas
    faded it across the rates to the next, where the JSON has 0)."""
    fig = P.fractions_vs_rate(wide)
    ax = fig.axes[0]
    g = wide.bmap.global_minima[0]
    assert g == 0  # the bottom band: its baseline is 0
    fr = wide.fraction(str(g))
    k = int(np.flatnonzero(fr > 0)[-1])
    assert k + 1 < len(wide.lrs) and fr[k + 1] == 0  # it vanishes inside the grid
    band = _band(ax, P.minimum_name(wide.bmap, g))
    lo, hi = wide.lrs[k], wide.lrs[k + 1]
    before_mid = lo * (hi / lo) ** 0.25
    past_mid = lo * (hi / lo) ** 0.75
    assert band.contains_point((before_mid, 0.9 * fr[k]))  # its measured height
    assert not band.contains_point((before_mid, 1.1 * fr[k]))
    assert not band.contains_point((past_mid, 0.1 * fr[k]))  # measured 0 there
    for i, lr in enumerate(wide.lrs[1:-1], start=1):  # each rate: its own fraction
        if fr[i] > 0:
            assert band.contains_point((lr, 0.98 * fr[i])), i
            assert not band.contains_point((lr, 1.02 * fr[i])), i
    np.testing.assert_allclose(P.rate_cells([1.0, 4.0, 16.0]), [1.0, 2.0, 8.0, 16.0])


def test_stability_limit_labels_do_not_overlap(wide):
    fig = P.fractions_vs_rate(wide)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text().startswith("2/λ of min")]
    assert len(labels) == 2  # min 0's, and min 1's and 2's (within 3%)
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    title = ax.title.get_window_extent(renderer)
    assert not any(b.overlaps(title) for b in boxes)


def test_a_flat_run_at_512_starts_is_not_reported_as_a_dimension():
    """The trainability lesson's 512 starts: flat over the smaller half of
    the sizes, so no dimension is resolved (the same map at 4,096 starts is
    not one power law); the words say why, and the figure draws no fit."""
    u = fractal.Uncertainty.from_counts(TRAIN_EPS, TRAIN_512, 512)
    assert abs(u.dimension - 1.69) < 0.01 and abs(u.alpha_se - 0.05) < 0.01  # the fit
    words = u.words()  # was "1.69 ± 0.05"
    assert words.startswith("not resolved: the fraction of uncertain starts does not fall")
    assert "1.69" not in words
    assert u.power_law  # chi-square cannot tell at these counts
    assert not u.resolved
    lo, hi = u.flat()
    assert lo == TRAIN_EPS[0] and 5e-4 < hi < 6e-4  # the smaller half
    assert u.floor_ratio() < 1
    assert u.brief() == "not resolved: flat for ε from 8e-06 to 0.00053"
    again = fractal.Uncertainty.from_json(json.loads(json.dumps(u.to_json())))
    assert not again.resolved and again.words() == words
    assert u.to_json()["resolved"] is False
    fig = uncertainty_fits([("window", u)])
    ax = fig.axes[0]
    assert not [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    (text,) = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "no dimension resolved" in text and "flat" in text
    # 4,096 starts of the same shape: the split-fit test finds the bend
    p = np.where(TRAIN_EPS < 1e-3, 0.005, 0.005 * (TRAIN_EPS / 1e-3) ** 0.55)
    more = fractal.Uncertainty.from_counts(TRAIN_EPS, np.rint(4096 * p).astype(int), 4096)
    assert more.bend_p < fractal.BEND_P and not more.power_law and not more.resolved
    assert more.words().startswith("not resolved: not one power law")


def test_resolved_dimensions_and_the_other_reasons():
    eps = np.geomspace(1e-6, 1e-1, 12)
    disc = np.rint(1e6 * 2.4 * eps * 0.05).astype(int)  # f ~ eps: dimension 1
    u = fractal.Uncertainty.from_counts(eps, disc, 10**6)
    flat = fractal.Uncertainty.from_counts(eps, [5] * 12, 1000)
    assert "does not fall with ε from 1e-06 to 0.1" in flat.words()  # was "2.00 ± 0.04"
    assert not flat.resolved and flat.flat() == (eps[0], eps[-1])
    assert u.resolved and u.words().startswith("1.00 ± ") and u.brief() == u.words()
    two = fractal.Uncertainty.from_counts(eps, [0] * 10 + [5, 50], 1000)
    assert math.isfinite(two.alpha) and two.uncertain_sizes == 2 and not two.resolved
    assert two.words() == (
        "not resolved: uncertain starts at 2 of the 12 fitted sizes (3 needed to test a power law)"
    )


def test_smallest_sizes_off_the_power_law_are_not_averaged_in():
    """gdjax continuation's default run at lr 0.121 (65,536 starts per
    size, seed 0): the smaller sizes hold 1, 2, 3, 5, 7 uncertain starts,
    falling far more slowly than the f ~ eps of the larger ones. The fit
    read 1.01 ± 0.01 (chi-square 1.5, split test p = 0.02); the small-eps
    limit is not resolved, and both halves are given with their ranges."""
    eps = np.geomspace(6e-6, 0.6, 12)
    counts = [1, 2, 3, 5, 7, 34, 85, 254, 739, 2131, 5877, 16013]
    u = fractal.Uncertainty.from_counts(eps, counts, 1 << 16)
    assert abs(u.dimension - 1.01) < 0.01 and u.power_law
    words = u.words()  # was "1.01 ± 0.01"
    assert words.startswith("not resolved: for ε from 6e-06 to 0.00039 the fraction")
    assert words.endswith(": 1.57 ± 0.18 there, 1.01 ± 0.01 for ε from 0.0011 to 0.21")
    assert u.departure() == (eps[0], eps[4]) and u.flat() is None and not u.resolved
    fig = uncertainty_fits([("lr 0.121", u)])
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(texts) == 3 and "fall more slowly than the law" in texts[0]


def test_split_fits_are_told_apart_and_rest_on_counts():
    """Where one power law does not fit, each half's line has its own style
    and shade, spans only the sizes of its half with uncertain starts, and
    no line is drawn for the whole."""
    eps = np.geomspace(1e-6, 1e-1, 12)
    p = np.where(eps < 1e-4, 2e-4, 2e-4 * (eps / 1e-4) ** 0.9)
    counts = np.rint(20000 * p).astype(int)
    counts[0] = 0  # a size with no uncertain start in the smaller half
    u = fractal.Uncertainty.from_counts(eps, counts, 20000)
    small, large = u.scales()
    assert math.isfinite(small.dimension) and math.isfinite(large.dimension)
    cont = types.SimpleNamespace(lrs=np.asarray([0.05]), uncertainty={0: u})
    fig = P.uncertainty_fits(cont)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label().strip().startswith("dimension")]
    assert len(lines) == 2
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    assert lines[0].get_color() != lines[1].get_color()
    assert not [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]  # no whole fit
    for line, part in zip(lines, (small, large), strict=True):
        x = line.get_xdata()
        inside = (eps >= part.eps_low) & (eps <= part.eps_high) & (counts > 0)
        assert x.min() == pytest.approx(eps[inside].min())
        assert x.max() == pytest.approx(eps[inside].max())
    assert lines[0].get_xdata().min() > eps[0]  # not across the size with none
    assert not u.power_law and not u.resolved


def test_fractal_measures_has_error_bars_and_names_unresolved_rates(wide):
    eps = np.geomspace(1e-6, 1e-1, 12)
    good = fractal.Uncertainty.from_counts(eps, np.rint(2.4e5 * eps).astype(int) + 1, 10**5)
    bad = fractal.Uncertainty.from_counts(TRAIN_EPS, TRAIN_512, 512)
    cont = dataclasses.replace(wide, uncertainty={1: good, 3: bad})
    fig = P.fractal_measures(cont)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 1
    data, _, (ycol,) = bars[0].lines
    np.testing.assert_allclose(np.asarray(data.get_xdata(), float), [wide.lrs[1]])
    np.testing.assert_allclose(np.asarray(data.get_ydata(), float), [2 - good.alpha])
    seg = ycol.get_segments()[0]
    assert seg[1][1] - seg[0][1] == pytest.approx(2 * good.alpha_se)
    notes = [t.get_text() for t in ax.get_legend().get_texts() if "not resolved" in t.get_text()]
    assert len(notes) == 1 and f"{wide.lrs[3]:.3g}" in notes[0]
    assert good.resolved and not bad.resolved


def test_a_continuation_where_no_basin_appears_writes_its_report(tmp_path):
    out = tmp_path / "none"
    res = L.run(out, grid=16, lrs=4, lr_min=10, lr_max=100, steps=200, uncertainty="auto")
    assert all(v["last_seen"] is None for v in res["vanishing"].values())
    names = {p.name for p in out.iterdir()}
    assert {"fractions_vs_rate.png", "fractal_measures.png", "maps.png", "report.html"} <= names
    page = (out / "report.html").read_text()
    assert "No start reached a minimum at any rate of the grid" in page
    assert "No map of the grid has a boundary" in page
    cont = L.compute(grid=16, lrs=4, lr_min=10, lr_max=100, steps=200, uncertainty=0)
    texts = [t.get_text() for t in P.fractions_vs_rate(cont).axes[0].texts]
    assert "no start reached a minimum at any rate" in texts
    texts = [t.get_text() for t in P.fractal_measures(cont).axes[0].texts]
    assert any(t.startswith("no boundary at any rate") for t in texts)


def test_rates_up_to_the_float64_maximum_are_drawn(tmp_path):
    """--lr-max 1e300 --x64 ended in an OverflowError inside matplotlib."""
    cont = L.compute(grid=16, lrs=3, lr_max=1e300, x64=True, steps=50, uncertainty=0)
    L.write(tmp_path / "huge", cont)
    for fig in (P.fractions_vs_rate(cont), P.fractal_measures(cont)):
        fig.canvas.draw()
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            assert lo <= 1e-3 and 1e300 <= hi < np.inf
            assert np.all(np.isfinite(ax.get_xticks()))


def test_too_many_uncertainty_starts_are_refused_before_compute(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as e:
        run_and_print(
            cli_continuation.COMMAND,
            {"out": tmp_path / "x", "seed": 0, "overwrite": False, "grid": 16,
             "uncertainty": 100_000_000_000, "no_progress": True},
        )  # fmt: skip
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--uncertainty 100,000,000,000" in err
    assert "GiB of memory" in err and "use at most" in err
    assert not (tmp_path / "x").exists()
    # the estimate, and what fits, against a known amount of memory
    need = fractal.uncertainty_memory(1 << 20)
    assert fractal.uncertainty_memory(1 << 21) - need == (1 << 20) * 12 * 144
    monkeypatch.setattr(fractal, "available_memory", lambda: need)
    fractal.check_uncertainty_memory(1 << 20)  # fits exactly
    with pytest.raises(ValueError, match=r"n 2,097,152: .* use at most 1,048,576 starts"):
        fractal.check_uncertainty_memory(1 << 21)
