"""The lesson experiments write their files and reproduce the lessons' numbers."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gdjax.cli import main
from gdjax.lessons import LESSONS, dynamic_lr, gd_1d, gd_2d_peaks


def _load(out):
    data = json.loads((out / "results.json").read_text())
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page
    assert not re.search(r"<td>[^<]*(nan|inf)[^<]*</td>", page), "a NaN or inf reached a table"
    return data


def test_lesson_1d(tmp_path):
    res = gd_1d.run(tmp_path, seed=3)
    data = _load(tmp_path)
    assert data == json.loads(json.dumps(res))
    for name in ["journey", "curve", "lr_compare", "lr_epochs_grid", "epochs_to_arrive"]:
        assert (tmp_path / f"{name}.png").stat().st_size > 5000
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


def test_lesson_dynamic_lr(tmp_path):
    gd = dynamic_lr.run(tmp_path, seed=0)
    data = _load(tmp_path)
    side = data["side_by_side"]
    # at lr_0 = 0.3 > 1/6 the fixed rule oscillates; time-based decay arrives first
    assert 0 < side["time"]["epochs_to_arrive"] < side["fixed"]["epochs_to_arrive"]
    fastest = {w["lr"]: w["fastest"] for w in gd["fastest_by_lr"]}
    assert fastest[0.05] == "fixed" and fastest[0.3] == "time"
    assert (tmp_path / "rules.png").exists()


def test_cli_lesson_and_all(tmp_path, capsys):
    assert main(["lesson", "dynamic-lr", "--out", str(tmp_path / "d"), "--epochs", "20"]) == 0
    assert "Lesson D" in capsys.readouterr().out
    assert json.loads((tmp_path / "d" / "results.json").read_text())["epochs"] == 20


README = (Path(__file__).parent.parent / "README.md").read_text()


def test_cli_lessons_main_job(tmp_path, capsys):
    assert main(["lessons", "--out", str(tmp_path)]) == 0
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
    assert "all lessons done" in capsys.readouterr().out


def test_cli_lessons_runs_again_over_its_own_lessons(tmp_path, capsys, monkeypatch):
    """The README's first command runs twice: a lesson folder that holds that
    lesson's earlier run (finished, or cut short) is replaced; a folder that
    holds another command's run is still refused, and nothing runs."""
    from gdjax.cli import lessons as cli_lessons

    two = {k: cli_lessons.LESSONS[k] for k in ("schedules", "1d")}
    monkeypatch.setattr(cli_lessons, "LESSONS", two)
    assert main(["lessons", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "lesson_1d" / "results.json").stat().st_mtime_ns
    # a run cut short leaves an unfinished manifest: replaced as well
    manifest = tmp_path / "lesson_schedules" / ".gdjax-run.json"
    manifest.write_text(manifest.read_text().replace('"complete": true', '"complete": false'))
    assert main(["lessons", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "lesson_1d" / "results.json").stat().st_mtime_ns > first
    assert json.loads(manifest.read_text())["complete"]
    # another command's run in a lesson folder: refused before any lesson runs
    other = json.loads((tmp_path / "lesson_1d" / ".gdjax-run.json").read_text())
    other["command"] = "basins"
    (tmp_path / "lesson_1d" / ".gdjax-run.json").write_text(json.dumps(other))
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
def test_experiment_scripts_reach_their_command(script):
    """Every experiments/*.py script runs its lesson's command (--help: no compute)."""
    import subprocess
    import sys

    path = Path(__file__).parent.parent / "experiments" / script
    done = subprocess.run(
        [sys.executable, str(path), "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: gdjax lesson ")


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
