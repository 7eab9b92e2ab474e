"""The lesson experiments write their files and reproduce the lessons' numbers."""

import contextlib
import io
import json
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from gdjax.cli import _build_parser, main
from gdjax.lessons import LESSONS, bifurcation, gd_2d_peaks, high_dim


def _load(out):
    data = json.loads((out / "results.json").read_text())
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert not re.search(r"<td>[^<]*(nan|inf)[^<]*</td>", page), "a NaN or inf reached a table"
    return data


def test_lesson_1d(main_job):
    """Lesson A in the main job (seed 0)."""
    folder = main_job[0] / "lesson_1d"
    data = _load(folder)
    for name in ["journey", "curve", "lr_compare", "lr_epochs_grid", "epochs_to_arrive"]:
        assert (folder / f"{name}.png").stat().st_size > 5000
    runs = data["runs"]
    assert runs["main"]["distance"] < 0.01 and not runs["main"]["diverged"]
    # (1 - 0.006)^100 = 0.548 of the start's distance remains
    x0 = data["x0"]
    assert runs["small_lr"]["distance"] == pytest.approx(0.994**100 * abs(x0 - 0.5), rel=1e-3)
    assert runs["large_lr"]["diverged"]
    expected = 0.5 + (-5.0) ** 100 * (x0 - 0.5)
    assert runs["large_lr"]["final_x_float64"] == pytest.approx(expected, rel=1e-6)
    ratios = {p["lr"]: p["ratio"] for p in data["epochs_ratio_for_10x_smaller_lr"]}
    assert 9.5 < ratios[0.01] < 11


def test_lesson_2d_peaks(tmp_path):
    res = gd_2d_peaks.run(tmp_path, seed=0, starts=6, steps=400)
    data = _load(tmp_path)
    assert (tmp_path / "paths.png").exists() and (tmp_path / "loss.png").exists()
    assert len(data["runs"]) == 6 and sum(data["counts"].values()) == 6
    for r in res["runs"]:
        if r["minimum_index"] >= 0:
            m = data["minima"][r["minimum_index"]]
            assert np.linalg.norm(np.subtract(r["end"], m["location"])) < 1e-3
            assert r["grad_norm_end"] < data["tol"]


@pytest.mark.parametrize(
    "option, words",
    [
        (["--starts", "100000000"], "at most 10,000 starts"),
        (["--steps", "2000000000"], "use fewer --steps"),
    ],
)
def test_lesson_2d_refuses_paths_it_cannot_keep_before_compute(tmp_path, capsys, option, words):
    """`gdjax lesson 2d --starts 100000000` ran out of memory."""
    from gdjax.cli import main

    with pytest.raises(SystemExit) as info:
        main(["lesson", "2d", *option, "--out", str(tmp_path / "r")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_lesson_2d_global_start_reaches_global():
    from gdjax import surfaces

    peaks = surfaces.get("peaks")
    labels = gd_2d_peaks.classify(
        peaks,
        np.array([[0.2283, -1.6255], [2.9, 2.9]]),
        np.array([0.0, 0.1]),
        np.array([False, False]),
        tol=1e-3,
    )
    assert labels.tolist() == [0, -1]


def test_lesson_dynamic_lr(main_job):
    """Lesson D in the main job (seed 0)."""
    folder = main_job[0] / "lesson_dynamic_lr"
    data = _load(folder)
    side = data["side_by_side"]
    # at lr_0 = 0.3 > 1/6 the fixed rule oscillates; time-based decay arrives first
    assert 0 < side["time"]["epochs_to_arrive"] < side["fixed"]["epochs_to_arrive"]
    fastest = {w["lr"]: w["fastest"] for w in data["fastest_by_lr"]}
    assert fastest[0.05] == "fixed" and fastest[0.3] == "time"
    assert (folder / "rules.png").exists()


def test_cli_lesson_and_all(tmp_path, capsys):
    assert main(["lesson", "dynamic-lr", "--out", str(tmp_path / "d"), "--epochs", "20"]) == 0
    assert "Lesson D" in capsys.readouterr().out
    assert json.loads((tmp_path / "d" / "results.json").read_text())["epochs"] == 20


README = (Path(__file__).parent.parent / "README.md").read_text()


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    """The README's main job, ``gdjax lessons``, run once for the tests below:
    (its folder, what it printed)."""
    out = tmp_path_factory.mktemp("main_job")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["lessons", "--out", str(out)]) == 0
    return out, printed.getvalue()


def _strict(text: str):
    """JSON with no NaN or Infinity (json.loads accepts them by default)."""

    def refuse(name):
        raise AssertionError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_cli_lessons_main_job(main_job):
    tmp_path, printed = main_job
    index = (tmp_path / "index.html").read_text()
    # the README says which JSON each experiment writes: true of every lesson
    (row,) = [line for line in README.splitlines() if line.startswith("| `experiments/` |")]
    for name in LESSONS:
        folder = tmp_path / f"lesson_{name.replace('-', '_')}"
        written = {p.name for p in folder.glob("*.json") if not p.name.startswith(".")}
        assert written and all(f"`{j}`" in row for j in written), (name, written)
    for name in LESSONS:
        folder = f"lesson_{name.replace('-', '_')}"
        assert (tmp_path / folder / "report.html").exists()
        assert f'href="{folder}/report.html"' in index  # one line per lesson
        assert json.loads((tmp_path / folder / ".gdjax-run.json").read_text())["complete"]
    assert index.count("<li>") == len(LESSONS)
    assert "all lessons done" in printed


def test_the_edge_of_stability_lesson_in_the_main_job(main_job):
    """On its defaults: 6 float64 doublings of the double well at the exact
    cascade's ratios, peaks' 128^2 maps from convergence to chaos, the
    network at the edge of stability."""
    out = main_job[0] / "lesson_edge_of_stability"
    res = _strict((out / "edge_of_stability.json").read_text())
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "double_well.png", "double_well_doublings.png", "peaks.png"} <= names
    assert {"attractor_maps.png", "sharpness.png"} <= names
    dw = res["double_well"]
    assert dw["period_doublings"]["period"] == [2, 4, 8, 16, 32, 64]
    ratios = dw["feigenbaum"]["ratios"]
    np.testing.assert_allclose(ratios, bifurcation.EXACT_DOUBLE_WELL[:4], atol=2e-3)
    assert "points" not in dw and res["peaks"]["period_doublings"] is None
    for panel in res["maps"]["panels"]:
        cats = panel["categories"]
        assert sum(c["count"] for c in cats.values()) == 128 * 128
        assert max(cats, key=lambda k: cats[k]["count"]).endswith("min 0 (global)")
    kinds = [
        max(p["categories"], key=lambda k: p["categories"][k]["count"])
        for p in res["maps"]["panels"]
    ]
    assert [k.split(" ")[0] for k in kinds] == ["converged", "period", "period", "chaotic"]
    runs = res["edge_of_stability"]["runs"]
    assert runs[0]["median_ratio_second_half"] < 0.5  # far below its limit
    for r in runs[1:]:  # at the edge
        assert 0.9 < r["median_ratio_second_half"] < 1.1
    page = (out / "report.html").read_text()
    assert "gdjax lenet --sharpness" in page and "Feigenbaum" in page


def test_the_high_dim_lesson_in_the_main_job(main_job):
    out = main_job[0] / "lesson_high_dim"
    data = _strict((out / "results.json").read_text())
    goe, land = data["goe"], data["landscapes"]
    assert goe["d"] == list(range(1, len(goe["d"]) + 1)) and len(goe["d"]) >= 5
    for key in ("minimum_fraction", "ci_low", "ci_high"):
        assert len(goe[key]) == len(goe["d"])
    # the fraction of GOE matrices with every eigenvalue positive falls with d
    # (to 0 once no sample has one), and the effective rate -d log P / d(d^2)
    # from d = 4 to 5 approaches ln(3)/4 from above
    frac = np.asarray(goe["minimum_fraction"])
    seen = frac[frac > 0]
    assert np.all(np.diff(seen) < 0) and np.all(frac[len(seen) :] == 0) and len(seen) >= 5
    rate = -(np.log(frac[4]) - np.log(frac[3])) / (25 - 16)
    assert high_dim.THETA < rate < 2 * high_dim.THETA
    assert land["d"] == list(range(1, len(land["d"]) + 1)) and len(land["d"]) >= 4
    for d, counts, crit in zip(
        land["d"], land["index_counts"], land["critical_points"], strict=True
    ):
        assert len(counts) == d + 1 and sum(counts) == crit
    assert (out / "minimum_fraction.png").exists() and (out / "report.html").exists()


def test_the_lessons_options_parse():
    """The options of the lessons the main job runs on their defaults."""
    argv = ["lesson", "edge-of-stability", "--lrs", "64", "--grid", "16", "--doublings", "3"]
    args = vars(_build_parser().parse_args([*argv, "--steps", "600"]))
    assert (args["lrs"], args["grid"], args["doublings"], args["steps"]) == (64, 16, 3, 600)
    argv = ["lesson", "high-dim", "--dims", "4", "--samples", "65536", "--landscapes", "2"]
    args = vars(_build_parser().parse_args([*argv, "--starts", "256"]))
    assert (args["dims"], args["samples"], args["landscapes"], args["starts"]) == (4, 65536, 2, 256)


def test_cli_lessons_runs_again_over_its_own_lessons(tmp_path, capsys, monkeypatch):
    """The README's first command runs twice: a lesson folder that holds that
    lesson's earlier run (finished, or cut short) is replaced; a folder that
    holds another command's run is still refused, and nothing runs."""
    from gdjax.cli import lessons as cli_lessons

    two = {k: cli_lessons.LESSONS[k] for k in ("local-minima", "2d")}  # two short ones
    monkeypatch.setattr(cli_lessons, "LESSONS", two)
    assert main(["lessons", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "lesson_2d" / "results.json").stat().st_mtime_ns
    # a run cut short leaves an unfinished manifest: replaced as well
    manifest = tmp_path / "lesson_local_minima" / ".gdjax-run.json"
    manifest.write_text(manifest.read_text().replace('"complete": true', '"complete": false'))
    assert main(["lessons", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "lesson_2d" / "results.json").stat().st_mtime_ns > first
    assert json.loads(manifest.read_text())["complete"]
    # another command's run in a lesson folder: refused before any lesson runs
    other = json.loads((tmp_path / "lesson_2d" / ".gdjax-run.json").read_text())
    other["command"] = "basins"
    (tmp_path / "lesson_2d" / ".gdjax-run.json").write_text(json.dumps(other))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(SystemExit) as err:
        main(["lessons", "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "holds an earlier gdjax basins run" in capsys.readouterr().err
    # the lesson opened before the refusal keeps its finished manifest, and no lock
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_ctrl_c_in_lessons_leaves_the_lessons_not_started_as_they_were(tmp_path, monkeypatch):
    """Ctrl-C in `gdjax lessons` left every later lesson's folder with an
    unfinished manifest (and its lock) though it said nothing was written."""
    import dataclasses

    from gdjax.cli import lessons as cli_lessons

    def interrupted(out, **kwargs):
        raise KeyboardInterrupt

    real = {k: cli_lessons.LESSONS[k] for k in ("schedules", "1d")}
    cut = {**real, "schedules": dataclasses.replace(real["schedules"], run=interrupted)}
    monkeypatch.setattr(cli_lessons, "LESSONS", cut)
    with pytest.raises(SystemExit) as err:
        main(["lessons", "--out", str(tmp_path / "new")])
    assert err.value.code == 130
    assert list((tmp_path / "new").iterdir()) == []  # every folder it made is gone
    # over an earlier finished run: every folder keeps that run, manifest and all
    monkeypatch.setattr(cli_lessons, "LESSONS", real)
    assert main(["lessons", "--out", str(tmp_path / "old")]) == 0
    before = {p: p.read_bytes() for p in (tmp_path / "old").rglob("*") if p.is_file()}
    monkeypatch.setattr(cli_lessons, "LESSONS", cut)
    with pytest.raises(SystemExit):
        main(["lessons", "--out", str(tmp_path / "old")])
    after = {p: p.read_bytes() for p in (tmp_path / "old").rglob("*") if p.is_file()}
    assert after == before


def test_cli_surfaces(capsys):
    assert main(["surfaces"]) == 0
    out = capsys.readouterr().out
    assert "himmelblau" in out and "-6.55113" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["lesson", "1d", "--lr", "-1"],
        ["lesson", "2d", "--starts", "0"],
        ["lesson", "3d"],
        ["lesson", "1d", "--tol", "nan"],
    ],
)
def test_cli_bad_input(argv, capsys):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2
    assert "error" in capsys.readouterr().err


def test_schedule_plots(tmp_path):
    from gdjax.lessons import schedule_plots

    res = schedule_plots.run(tmp_path)
    data = _load(tmp_path)
    assert data == json.loads(json.dumps(res))
    e = data["schedules"]
    assert e["square_root"]["optax"] is None
    for name in ["factor", "multi_factor", "cosine", "cosine_warmup"]:
        assert e[name]["optax_max_rel_diff"] < 2e-6
        assert (tmp_path / f"schedule_{name}.png").exists()
    assert e["multi_factor"]["gdjax"][14:16] == [0.5, 0.25]
    np.testing.assert_allclose(e["cosine_warmup"]["gdjax"][:3], [0.0, 0.1, 0.2], rtol=1e-6)
    assert len(e["factor"]["gdjax"]) == 50


def test_cli_schedules(tmp_path, capsys):
    assert main(["schedules", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "schedules.png").exists()
    assert "no optax twin" in capsys.readouterr().out


def test_lessons_are_course_content_only():
    """Lessons compute; gdjax.plot draws and gdjax.report writes. No lesson
    module plots, parses arguments, draws a progress bar or imports the CLI."""
    import ast
    from pathlib import Path

    import gdjax.lessons

    for path in Path(gdjax.lessons.__file__).parent.glob("*.py"):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
        bad = {
            m
            for m in imported
            if m.split(".")[0] in ("matplotlib", "argparse", "tqdm") or m.startswith("gdjax.cli")
        }
        assert not bad, (path.name, bad)


def test_every_lesson_has_a_command():
    from gdjax.cli import lessons as cli_lessons
    from gdjax.lessons import STUDIES

    assert list(cli_lessons.LESSONS) == list(LESSONS)
    assert list(cli_lessons.STUDIES) == list(STUDIES)
    for name, command in {**cli_lessons.LESSONS, **cli_lessons.STUDIES}.items():
        module = {**LESSONS, **STUDIES}[name]
        assert command.doc == module.__doc__ and command.summary is module.summary


def test_every_lesson_has_its_script_and_its_readme_row_in_order():
    """trainability had no experiments script and no row; the README gave
    the lessons in another order than `gdjax lessons` runs them."""
    root = Path(__file__).parent.parent
    scripts = "".join(p.read_text() for p in (root / "experiments").glob("*.py"))
    for name in [*LESSONS, "lr-scheduling"]:
        assert f'main(["lesson", "{name}", *args])' in scripts, name
    rows = [
        line for line in README.splitlines() if line.startswith("| ") and "experiments/" in line
    ]
    named = [re.search(r"`gdjax (?:lesson )?([a-z0-9-]+)`", r).group(1) for r in rows[1:]]
    assert [n for n in named if n != "lr-scheduling"] == list(LESSONS)


@pytest.mark.parametrize(
    "script", sorted(p.name for p in (Path(__file__).parent.parent / "experiments").glob("*.py"))
)
def test_experiment_scripts_reach_their_command(script, monkeypatch, capsys):
    """Every experiments/*.py script runs its lesson's command (--help: no
    compute), run as ``python SCRIPT --help`` runs it (in this process: a new
    interpreter per script only repeated the imports)."""
    path = Path(__file__).parent.parent / "experiments" / script
    monkeypatch.setattr(sys, "argv", [str(path), "--help"])
    monkeypatch.syspath_prepend(str(path.parent))
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(path), run_name="__main__")
    assert done.value.code in (0, None)
    assert capsys.readouterr().out.startswith("usage: gdjax lesson ")


MARKUP = re.compile(r"``|:(?:mod|func|class|meth|data|attr|obj):`")


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["lesson", "--help"],
        ["lessons", "--help"],
        *[["lesson", name, "--help"] for name in [*LESSONS, "lr-scheduling"]],
        *[[c, "--help"] for c in ("basins", "continuation", "optimizers", "trainability", "lenet")],
    ],
)
def test_help_shows_no_docstring_markup(argv, capsys):
    """`gdjax lesson --help` showed literal ``gdjax continuation``."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert not MARKUP.search(out), MARKUP.search(out)


def test_the_lessons_index_shows_no_docstring_markup(tmp_path):
    from gdjax.cli import lessons as cli_lessons

    page = cli_lessons._write_index(tmp_path, list(cli_lessons.LESSONS.items())).read_text()
    assert not MARKUP.search(page)
    assert "<code>gdjax continuation</code>" in page
