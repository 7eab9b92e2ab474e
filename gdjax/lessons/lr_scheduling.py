"""Lesson E's study: the chapter's learning-rate policies on the LeNet, 30 epochs each.

Trains constant 0.3; square root (base 0.1); multi-factor (0.5, halved at
epochs 15 and 30); cosine (0.3 -> 0.01 over 20 epochs); cosine with 5 warmup
epochs; and, with --with-factor, factor (2.0 x 0.9 per epoch, floor 0.01).
Schedules are stepped per epoch, as in the book's PyTorch edition (--per
update steps them per minibatch, MXNet's way). Writes every model's curves,
a comparison figure, results.json with the final train loss, train accuracy
and test accuracy of each policy side by side with the book's published
numbers, and report.html.

On an accelerator the policies train together as one vmapped population;
on a CPU one after another (measured faster there); --mode chooses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gdjax import train
from gdjax.lessons import _common
from gdjax.lessons.lenet import write_report
from gdjax.report import write_json

BOOK = {
    "constant": (0.145, 0.944, 0.877),
    "square_root": (0.273, 0.900, 0.886),
    "multi_factor": (0.194, 0.927, 0.869),
    "cosine": (0.159, 0.942, 0.904),
    "cosine_warmup": (0.181, 0.934, 0.901),
}
"""The book's results (PyTorch edition, per-epoch schedules, 30 epochs):
train loss, train accuracy, test accuracy."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--epochs", type=_common.positive_int("--epochs"), default=30, help="(default: 30)"
    )
    parser.add_argument(
        "--per",
        choices=("epoch", "update"),
        default="epoch",
        help="step schedules per epoch (the book's PyTorch edition) or per update",
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "population", "sequential"),
        default="auto",
        help="train the policies as one vmapped population or one after another "
        "(default auto: population on an accelerator, sequential on a CPU)",
    )
    parser.add_argument("--with-factor", action="store_true", help="also the factor schedule")
    parser.add_argument(
        "--policies",
        nargs="+",
        choices=list(train.CHAPTER_POLICIES),
        default=None,
        help="a subset of the policies (default: all five of the book's)",
    )
    parser.add_argument(
        "--subset", type=_common.positive_int("--subset"), default=None, help="first N train images"
    )
    parser.add_argument(
        "--test-subset",
        type=_common.positive_int("--test-subset"),
        default=None,
        help="first N test images",
    )
    parser.add_argument("--resume", action="store_true", help="continue a killed study")
    parser.add_argument("--data-dir", default=None, help="where the Fashion-MNIST files are")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(
    out: Path,
    *,
    seed: int = 0,
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
) -> dict:
    from gdjax.data import fashion_mnist

    names = policies or [p for p in train.CHAPTER_POLICIES if p != "factor" or with_factor]
    configs = [
        train.TrainConfig(
            schedule=train.CHAPTER_POLICIES[name],
            epochs=epochs,
            seed=seed,
            per=per,
            subset=subset,
            test_subset=test_subset,
        )
        for name in names
    ]
    result = train.train_many(
        configs,
        fashion_mnist(data_dir),
        names=names,
        mode=mode,
        out=out,
        resume=resume,
        progress=not no_progress,
    )
    rows = []
    for name, epochs_ in zip(names, result.epochs, strict=True):
        last = epochs_[-1]
        book = BOOK.get(name)
        rows.append(
            {
                "policy": name,
                "schedule": repr(train.chapter_schedule(train.CHAPTER_POLICIES[name])),
                "per": per,
                "epochs": last["epoch"],
                "train_loss": last["train_loss"],
                "train_acc": last["train_acc"],
                "test_acc": last["test_acc"],
                "best_test_acc": max((e["test_acc"] or 0.0) for e in epochs_),
                "book_train_loss": book[0] if book else None,
                "book_train_acc": book[1] if book else None,
                "book_test_acc": book[2] if book else None,
                "seconds": sum(e["seconds"] for e in epochs_),
            }
        )

    def table(report):
        report.heading("Final epoch against the book (PyTorch edition)")
        report.text(
            f"Schedules stepped per {per}. The book's numbers are its published final-epoch "
            "train loss / train accuracy / test accuracy after 30 epochs."
        )
        report.table(
            ["policy", "per", "train loss", "book", "train acc", "book", "test acc", "book"],
            [
                [
                    r["policy"],
                    r["per"],
                    r["train_loss"],
                    _dash(r["book_train_loss"]),
                    r["train_acc"],
                    _dash(r["book_train_acc"]),
                    r["test_acc"],
                    _dash(r["book_test_acc"]),
                ]
                for r in rows
            ],
        )

    write_report(out, result, names, "Lesson E: learning-rate scheduling on LeNet", extra=table)
    write_json(
        out / "results.json",
        {
            "table": rows,
            "mode": result.meta["mode"],
            "backend": result.meta["backend"],
            "devices": result.meta["devices"],
            "compile_seconds": result.compile_seconds,
            "seed": seed,
        },
    )
    return {"rows": rows, "mode": result.meta["mode"], "backend": result.meta["backend"]}


def _dash(v):
    return "-" if v is None else v


def summary(res: dict) -> str:
    lines = [
        f"Lesson E: LR scheduling on LeNet ({res['mode']}, {res['backend']}); "
        "final train loss / train acc / test acc (book)"
    ]
    for r in res["rows"]:
        book = (
            f" (book {r['book_train_loss']:.3f}/{r['book_train_acc']:.3f}/{r['book_test_acc']:.3f})"
            if r["book_train_loss"] is not None
            else ""
        )
        vals = "/".join(
            "diverged" if r[k] is None else f"{r[k]:.3f}"
            for k in ("train_loss", "train_acc", "test_acc")
        )
        lines.append(f"  {r['policy']:14s} per {r['per']}: {vals}{book}")
    return "\n".join(lines)
