"""gdjax bifurcation and the lesson edge-of-stability (issue 22): the files,
strict JSON, the first doublings of the double well, the figure against the
JSON, refusals before any compute, Ctrl-C; and two period_doublings cases
(a scan bracket read with too short a transient; a jump into divergence)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gdjax import attractors as A
from gdjax.cli import main
from gdjax.lessons import bifurcation as lesson
from gdjax.plot import attractors as P
from gdjax.plot._style import plt

SMALL = ["--lrs", "300", "--transient", "1000", "--doublings", "3", "--doubling-transient", "5000"]
SETTINGS = dict(lrs=300, transient=1000, doublings=3, doubling_transient=5000)


def _strict(text: str):
    """JSON with no NaN or Infinity (json.loads accepts them by default)."""

    def refuse(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bif") / "run"
    assert main(["bifurcation", *SMALL, "--out", str(out)]) == 0
    return out, _strict((out / "bifurcation.json").read_text())


def test_the_command_writes_the_diagram_the_doublings_and_the_report(run):
    out, res = run
    names = {p.name for p in out.iterdir()}
    assert {"bifurcation.json", "bifurcation.png", "doublings.png", "report.html"} <= names
    assert res["surface"] == "double_well" and res["start"] == [0.5] and res["dtype"] == "float32"
    n = len(res["lrs"])
    assert n == 300 and res["lrs"][0] == pytest.approx(0.9) and res["lrs"][-1] == pytest.approx(1.4)
    for key in ("kind", "period", "lyapunov", "points"):
        assert len(res[key]) == n, key
    assert set(res["kind"]) <= set(A.KINDS)
    for kind, pts in zip(res["kind"], res["points"], strict=True):
        assert (pts is None) == (kind == "diverged")
        assert pts is None or (len(pts) == 64 and all(len(p) == 1 for p in pts))
    assert res["stability_limit"] == pytest.approx(1.0, rel=1e-6)
    # below the limit a fixed point, just past it period 2, chaos near the end
    lrs, period = np.asarray(res["lrs"]), np.asarray(res["period"])
    assert np.all(period[lrs < 0.99] == 1) and np.all(period[(lrs > 1.01) & (lrs < 1.2)] == 2)
    assert res["first_chaotic"] == pytest.approx(1.3023, abs=2e-3)
    d = res["period_doublings"]
    assert d["period"] == [2, 4, 8]
    assert abs(d["lr"][0] - 1.0) < 1e-3 and abs(d["lr"][1] - (math.sqrt(5) - 1)) < 1e-3
    assert all(lo <= lr <= hi for lo, lr, hi in zip(d["lo"], d["lr"], d["hi"], strict=True))
    assert d["exact"][:2] == pytest.approx([1.0, math.sqrt(5) - 1])
    f = res["feigenbaum"]
    assert len(f["ratios"]) == 1 and f["ratios"][0] == pytest.approx(4.5429, abs=0.01)
    assert f["delta"] == pytest.approx(4.6692016) and f["exact_cascade"] == [4.5429]
    page = (out / "report.html").read_text()
    for words in ("Each column of dots", "Feigenbaum", "exact r_k", "Why not closer", "Settings"):
        assert words in page, words


def test_the_figure_shows_what_the_json_says(run):
    """The dots are the JSON's points on its axis; one dotted line per
    doubling in each panel, one at 2/lambda_max; a new period label per
    doubling that has room."""
    _, res = run
    study = lesson.compute(lesson.resolve(**SETTINGS))  # the same settings: the same numbers
    assert study.bifurcation.lrs.tolist() == pytest.approx(res["lrs"])
    assert study.doublings.lr.tolist() == pytest.approx(res["period_doublings"]["lr"], abs=1e-6)
    ax = res["axis"]
    fig = P.bifurcation_diagram(
        study.bifurcation, study.doublings, origin=ax["origin"], direction=ax["direction"]
    )
    try:
        top, low = fig.axes
        for panel in (top, low):
            gids = [line.get_gid() for line in panel.get_lines()]
            assert gids.count(P.DOUBLING_GID) == len(res["period_doublings"]["lr"])
            assert gids.count(P.LIMIT_GID) == 1
        xs = [line.get_xdata()[0] for line in top.get_lines() if line.get_gid() == P.DOUBLING_GID]
        assert xs == pytest.approx(res["period_doublings"]["lr"])
        dots = np.concatenate([c.get_offsets() for c in top.collections if len(c.get_offsets())])
        want = [
            (lr, (p[0] - ax["origin"][0]) * ax["direction"][0])
            for lr, pts in zip(res["lrs"], res["points"], strict=True)
            if pts is not None
            for p in pts
        ]
        assert len(dots) == len(want)
        np.testing.assert_allclose(np.sort(dots[:, 1]), np.sort([w[1] for w in want]), atol=1e-5)
        labels = [t.get_text() for t in top.texts if t.get_text().isdigit()]
        assert labels and set(labels) <= {"2", "4", "8"}
    finally:
        plt.close(fig)


def test_a_two_dimensional_surface_is_drawn_along_its_sharpest_direction():
    """Peaks' defaults; its diagram's axis is the offset from the global
    minimum along the Hessian's top eigenvector (lambda_max 30.18)."""
    from gdjax import surfaces

    s = lesson.resolve("peaks", lrs=4, doublings=0)
    assert s.start == (0.25, -1.6) and (s.lr_min, s.lr_max) == (0.05, 0.2)
    peaks = surfaces.get("peaks")
    limit, v = lesson.sharpest(peaks, peaks.global_minimum.location)
    assert limit == pytest.approx(2 / 30.1822, rel=1e-3)
    np.testing.assert_allclose(v, [0.326, -0.945], atol=2e-3)
    axis = lesson.Axis(peaks.global_minimum.location, tuple(v), "along v")
    assert axis.project(np.asarray([peaks.global_minimum.location])) == pytest.approx([0.0])
    assert axis.project(np.asarray(peaks.global_minimum.location) + v) == pytest.approx(1.0)
    # elsewhere the start defaults next to the global minimum
    assert lesson.resolve("himmelblau", lrs=4).start == pytest.approx((3.1, 2.1))


REFUSED = [
    (["--lr-min", "1.2", "--lr-max", "1.1"], "must be below --lr-max"),
    (["--lr-min", "1.5"], "the other is double_well's default"),
    (["--lr-min", "nan"], "--lr-min must be finite and > 0"),
    (["--lr-max", "inf"], "--lr-max must be finite and > 0"),
    (["--lr-min", "-1"], "--lr-min must be finite and > 0"),
    (["--lr-max", "0"], "--lr-max must be finite and > 0"),
    (["--lr-max", "1e39"], "not representable in float32"),
    (["--lr-min", "1", "--lr-max", "1.00000001"], "the same rate in float32"),
    (["--lrs", "0"], "--lrs must be >= 1"),
    (["--lrs", "1"], "--lrs must be at least 2"),
    (["--lrs", "1e12"], "GiB of memory is needed"),
    (["--start", "1,2"], "--start must have 1 coordinate for double_well"),
    (["--surface", "peaks", "--start", "0.5"], "--start must have 2 coordinates for peaks"),
    (["--start", "nan"], "--start must be finite"),
    (["--start", "x"], "--start takes numbers"),
    (["--surface", "nope"], "unknown surface 'nope'"),
    (["--transient", "-1"], "--transient must be an integer >= 0"),
    (["--transient", "1e10"], "--transient must be below 2^31"),
    (["--keep", "0"], "--keep must be >= 1"),
    (["--keep", "5000"], "--keep must be at most 4096"),
    (["--max-period", "2000"], "--max-period must be at most 1024"),
    (["--doublings", "17"], "--doublings must be at most 16"),
    (["--doublings", "1.5"], "--doublings must be an integer >= 0"),
    (["--doubling-transient", "1e9"], "above 2^31"),
    (["--tol", "0"], "--tol must be finite and > 0"),
    (["--coordinator", "127.0.0.1:1234"], "unrecognized arguments: --coordinator"),
]


@pytest.mark.parametrize("argv, message", REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_bad_input_is_refused_in_one_line_before_compute(tmp_path, capsys, argv, message):
    out = tmp_path / "x"
    with pytest.raises(SystemExit) as e:
        main(["bifurcation", *argv, "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_ctrl_c_leaves_nothing(tmp_path, capsys, monkeypatch):
    """Ctrl-C during the doublings (after the diagram): exit 130, one line,
    the folder this run made is gone. (In-process: a real SIGINT while XLA
    compiles can end the interpreter's exit in a segfault, whatever the
    command: see the report of issue 22.)"""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(A, "period_doublings", interrupted)
    out = tmp_path / "b"
    with pytest.raises(SystemExit) as e:
        main(["bifurcation", *SMALL, "--no-progress", "--out", str(out)])
    assert e.value.code == 130
    err = capsys.readouterr().err.strip()
    assert err == f"gdjax: interrupted; nothing was written; {out} is as it was"
    assert not out.exists()


def test_doublings_do_not_depend_on_the_scan(x64):
    """The scan's transient read a rate below the 4th doubling as period 16;
    the bisection of that bracket ended at the scan rate 1.2992172 (exact
    1.2992279): the doubling's own transient re-reads the bracket now."""
    d = A.period_doublings("double_well", 0.5, 0.9, 1.4, max_doublings=4)
    assert d.period.tolist() == [2, 4, 8, 16]
    exact = np.asarray(lesson.EXACT_DOUBLE_WELL_RATES[:4])
    # each found low by about the same share of its interval (it was 9.5e-4 for the 4th)
    share = (d.lr - exact) / np.diff(exact, prepend=0.0)
    assert np.all((share < 0) & (share > -4e-4)), share


def test_a_jump_into_divergence_is_no_doubling():
    """Past 2/lambda a quadratic diverges: that crossing counted as doublings
    to 4 and 8 (a Feigenbaum ratio of -3.7)."""
    d = A.period_doublings("quadratic", 0.54, 0.25, 0.5, max_doublings=3, transient=2000)
    assert d.period.tolist() in ([], [2])  # the flip at 1/3 itself, at most
    assert A.feigenbaum(d).size == 0
