"""Lesson E's study: the chapter's learning-rate policies on the LeNet, 30 epochs each.

Trains constant 0.3; square root (base 0.1); multi-factor (0.5, halved at
epochs 15 and 30); cosine (0.3 -> 0.01 over 20 epochs); cosine with 5 warmup
epochs; and, with --with-factor, factor (2.0 x 0.9 per epoch, floor 0.01).
Schedules are stepped per epoch, as in the book's PyTorch edition (--per
update steps them per minibatch, MXNet's way). Writes every model's curves,
a comparison figure, results.json with the final train loss, train accuracy
and test accuracy of each policy side by side with the book's published
numbers, and report.html. With --seeds, every policy is trained with each
seed and the table gives means, the range of test accuracy and how many
runs collapsed (a rate too high for the initialisation kills the network).

On an accelerator the policies train together as one vmapped population;
on a CPU one after another (measured faster there); --mode chooses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gdjax import sharpness as sharp_mod
from gdjax import train
from gdjax.data import fashion_mnist
from gdjax.lessons.chapter import CHAPTER_POLICIES, chapter_schedule
from gdjax.report import write_json, write_training_report
from gdjax.train.config import sharpness_fields

BOOK = {
    "constant": (0.145, 0.944, 0.877),
    "square_root": (0.273, 0.900, 0.886),
    "multi_factor": (0.194, 0.927, 0.869),
    "cosine": (0.159, 0.942, 0.904),
    "cosine_warmup": (0.181, 0.934, 0.901),
}
"""The book's results (PyTorch edition, per-epoch schedules, 30 epochs):
train loss, train accuracy, test accuracy."""


def run(
    out: Path,
    *,
    seed: int = 0,
    seeds: list[int] | None = None,
    epochs: int = 30,
    per: str = "epoch",
    mode: str = "auto",
    with_factor: bool = False,
    policies: list[str] | None = None,
    subset: int | None = None,
    test_subset: int | None = None,
    resume: bool = False,
    data_dir: str | None = None,
    no_progress: bool = False,
    sharpness: bool = False,
    sharpness_examples: int | None = None,
    sharpness_iters: int | None = None,
    scan_epochs: str = "auto",
) -> dict:
    policies = policies or [p for p in CHAPTER_POLICIES if p != "factor" or with_factor]
    seeds = seeds or [seed]
    runs = [(policy, s) for policy in policies for s in seeds]
    measured = sharpness_fields(sharpness, sharpness_examples, sharpness_iters)
    configs = [
        train.TrainConfig(
            schedule=chapter_schedule(CHAPTER_POLICIES[policy]),
            epochs=epochs,
            seed=s,
            per=per,
            subset=subset,
            test_subset=test_subset,
            **measured,
        )
        for policy, s in runs
    ]
    names = [policy if len(seeds) == 1 else f"{policy}_seed{s}" for policy, s in runs]
    if resume:  # before the data is loaded
        train.check_resume(out, mode=mode, names=names)
    result = train.train_many(
        configs,
        fashion_mnist(data_dir),
        names=names,
        mode=mode,
        out=out,
        resume=resume,
        progress=not no_progress,
        scan_epochs={"auto": None, "on": True, "off": False}[scan_epochs],
    )
    per_run = []
    edges = sharp_mod.edges(result)
    for (policy, s), epochs_, edge in zip(runs, result.epochs, edges, strict=True):
        last = epochs_[-1]
        per_run.append(
            {
                "policy": policy,
                "seed": s,
                "train_loss": last["train_loss"],
                "train_acc": last["train_acc"],
                "test_acc": last["test_acc"],
                "best_test_acc": max((e["test_acc"] or 0.0) for e in epochs_),
                "collapsed": _collapsed(last),
                "seconds": sum(e["seconds"] for e in epochs_),
                **_edge_fields(last, edge, sharpness),
            }
        )
    rows = [
        _aggregate(policy, [r for r in per_run if r["policy"] == policy], per, epochs)
        for policy in policies
    ]

    def table(report):
        report.heading("Final epoch against the book (PyTorch edition)")
        report.text(
            f"Schedules stepped per {per}; {len(seeds)} seed(s) per policy "
            f"({', '.join(map(str, seeds))}), values are means over the seeds whose run did "
            "not collapse (final train accuracy under 0.2: the network died at a rate too "
            "high for its initialisation and stayed at chance). The book's numbers are its "
            "published final-epoch train loss / train accuracy / test accuracy after 30 epochs "
            "(one run)."
        )
        report.table(
            [
                "policy",
                "per",
                "collapsed",
                "train loss",
                "book",
                "train acc",
                "book",
                "test acc",
                "(min-max)",
                "book",
            ],
            [
                [
                    r["policy"],
                    r["per"],
                    f"{r['collapsed']}/{r['runs']}",
                    _dash(r["train_loss"]),
                    _dash(r["book_train_loss"]),
                    _dash(r["train_acc"]),
                    _dash(r["book_train_acc"]),
                    _dash(r["test_acc"]),
                    "-"
                    if r["test_acc_min"] is None
                    else f"{r['test_acc_min']:.3f}-{r['test_acc_max']:.3f}",
                    _dash(r["book_test_acc"]),
                ]
                for r in rows
            ],
        )
        if sharpness:
            _edge_table(report, rows)

    write_training_report(
        out,
        result,
        names,
        "Lesson E: learning-rate scheduling on LeNet",
        extra=table,
        groups=[policy for policy, _ in runs],
    )
    write_json(
        out / "results.json",
        {
            "table": rows,
            "runs": per_run,
            "seeds": seeds,
            "per": per,
            "mode": result.meta["mode"],
            "backend": result.meta["backend"],
            "devices": result.meta["devices"],
            "compile_seconds": result.compile_seconds,
        },
    )
    return {"rows": rows, "mode": result.meta["mode"], "backend": result.meta["backend"]}


def _edge_fields(last: dict, edge, tracked: bool) -> dict:
    """A run's sharpness against its limit (results.json), when tracked."""
    if not tracked:
        return {}
    return {
        "sharpness": last.get("sharpness"),
        "edge_final": None if edge is None else edge.final,
        "edge_peak": None if edge is None else edge.peak,
        "edge_median": None if edge is None else edge.median,
        "edge_epochs": None if edge is None else edge.edge_epochs,
        "above_epochs": None if edge is None else edge.above_epochs,
        "edge_first": None if edge is None else edge.first_edge,
    }


def _edge_table(report, rows: list[dict]) -> None:
    report.heading("At the edge of stability? (per policy)")
    report.text(
        "Sharpness over its stability limit 2/lr, mean over the seeds that did not collapse: "
        "at the last epoch, at its peak, and its median over the epochs (about 1 for training "
        "that hovers at the edge); the epochs at the edge (ratio "
        f"{sharp_mod.EDGE[0]:g} to {sharp_mod.EDGE[1]:g}) and above it, summed over the seeds; "
        "and the first epoch any seed reached the edge."
    )
    report.table(
        [
            "policy",
            "final sharpness",
            "final / limit",
            "peak / limit",
            "median",
            "epochs at the edge",
            "above it",
            "first",
        ],
        [
            [
                r["policy"],
                _dash(r["sharpness"]),
                _dash(r["edge_final"]),
                _dash(r["edge_peak"]),
                _dash(r["edge_median"]),
                f"{r['edge_epochs']}/{r['edge_measured']}",
                f"{r['above_epochs']}/{r['edge_measured']}",
                _dash(r["edge_first"]),
            ]
            for r in rows
        ],
    )


def _collapsed(last: dict) -> bool:
    """Died: diverged (None) or stuck at chance (train accuracy under 0.2)."""
    return last["train_acc"] is None or last["train_acc"] < 0.2


def _aggregate(policy: str, runs: list[dict], per: str, epochs: int) -> dict:
    alive = [r for r in runs if not r["collapsed"]]
    book = BOOK.get(policy, (None, None, None))

    def mean(key):
        return float(np.mean([r[key] for r in alive])) if alive else None

    return {
        "policy": policy,
        "schedule": repr(chapter_schedule(CHAPTER_POLICIES[policy])),
        "per": per,
        "epochs": epochs,
        "runs": len(runs),
        "collapsed": len(runs) - len(alive),
        "train_loss": mean("train_loss"),
        "train_acc": mean("train_acc"),
        "test_acc": mean("test_acc"),
        "test_acc_min": min((r["test_acc"] for r in alive), default=None),
        "test_acc_max": max((r["test_acc"] for r in alive), default=None),
        "book_train_loss": book[0],
        "book_train_acc": book[1],
        "book_test_acc": book[2],
        **_edge_aggregate(runs, alive, epochs),
    }


def _edge_aggregate(runs: list[dict], alive: list[dict], epochs: int) -> dict:
    if not runs or "edge_final" not in runs[0]:
        return {}

    def mean(key):
        values = [r[key] for r in alive if r[key] is not None]
        return float(np.mean(values)) if values else None

    firsts = [r["edge_first"] for r in runs if r["edge_first"] is not None]
    return {
        "sharpness": mean("sharpness"),
        "edge_final": mean("edge_final"),
        "edge_peak": mean("edge_peak"),
        "edge_median": mean("edge_median"),
        "edge_epochs": sum(r["edge_epochs"] or 0 for r in runs),
        "above_epochs": sum(r["above_epochs"] or 0 for r in runs),
        "edge_measured": len(runs) * epochs,
        "edge_first": min(firsts, default=None),
    }


def _dash(v):
    return "-" if v is None else v


def summary(res: dict) -> str:
    lines = [
        f"Lesson E: LR scheduling on LeNet ({res['mode']}, {res['backend']}); "
        "final train loss / train acc / test acc, mean over seeds that did not collapse (book)"
    ]
    for r in res["rows"]:
        book = (
            f" (book {r['book_train_loss']:.3f}/{r['book_train_acc']:.3f}/{r['book_test_acc']:.3f})"
            if r["book_train_loss"] is not None
            else ""
        )
        vals = "/".join(
            "-" if r[k] is None else f"{r[k]:.3f}" for k in ("train_loss", "train_acc", "test_acc")
        )
        dead = f", {r['collapsed']}/{r['runs']} collapsed" if r["collapsed"] else ""
        edge = ""
        if "edge_final" in r:

            def f(v):
                return "-" if v is None else f"{v:.2f}"

            edge = (
                f"; sharpness/limit {f(r['edge_final'])} at the end, median "
                f"{f(r['edge_median'])}, peak {f(r['edge_peak'])}, "
                f"{r['edge_epochs']}/{r['edge_measured']} epochs at the edge, "
                f"{r['above_epochs']} above"
            )
        lines.append(f"  {r['policy']:14s} per {r['per']}: {vals}{book}{dead}{edge}")
    return "\n".join(lines)
