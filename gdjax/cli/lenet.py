"""Train the chapter's LeNet on Fashion-MNIST with a learning-rate schedule.

One schedule trains one model; several (--schedule repeated, or --seeds with
several seeds) train as a population, vmapped in one compiled program
(sharded over the devices), or one after another (--mode; by default the
first on an accelerator, the second on a CPU). Writes metrics.json
(config; per epoch train_loss, train_acc, test_acc, lr, seconds; the data
files used, with their SHA-256), curves.png (redrawn every epoch), a
checksummed checkpoint every epoch (--resume continues a killed run) and
report.html. --sharpness adds, per epoch, the top Hessian eigenvalue of the
training loss on a fixed batch, drawn against its stability limit 2/lr
((2 + 2 momentum)/lr with momentum) in sharpness.png.

Schedules: NAME[:key=value,...]; what is left out takes the chapter's values
(constant lr 0.3; square_root base_lr 0.1; factor 2.0 x 0.9 down to 0.01;
multi_factor 0.5 halved at 15 and 30; cosine 0.3 -> 0.01 over 20;
add warmup_steps=5 for the warmup). E.g. --schedule cosine:warmup_steps=5.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gdjax import plot, train
from gdjax.cli._common import Command, add_progress_option, positive_int, seed_type, setting_type
from gdjax.data import fashion_mnist
from gdjax.lessons.chapter import chapter_schedule
from gdjax.report import write_training_report
from gdjax.train.config import sharpness_fields

__all__ = [
    "COMMAND",
    "add_arguments",
    "add_training_arguments",
    "configs_from_args",
    "run",
    "scan_setting",
    "sharpness_settings",
    "summary",
]


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every LeNet command shares (also lesson E's study)."""
    parser.add_argument("--epochs", type=positive_int("--epochs"), default=30, help="(default: 30)")
    parser.add_argument(
        "--per",
        choices=("epoch", "update"),
        default="epoch",
        help="step schedules per epoch (the book's PyTorch edition) or per update (default: epoch)",
    )
    parser.add_argument(
        "--subset",
        type=positive_int("--subset"),
        default=None,
        help="train on the first N training images (default: all 60,000)",
    )
    parser.add_argument(
        "--test-subset",
        type=positive_int("--test-subset"),
        default=None,
        help="test on the first N test images (default: all 10,000)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue a killed run from the checkpoints in --out"
    )
    parser.add_argument("--data-dir", default=None, help="where the Fashion-MNIST files are")
    add_progress_option(parser)
    parser.add_argument(
        "--mode",
        choices=("auto", "population", "sequential"),
        default="auto",
        help="several models: one vmapped population or one after another (default auto: "
        "population on an accelerator, sequential on a CPU, where it measured faster)",
    )
    parser.add_argument(
        "--scan-epochs",
        choices=("auto", "on", "off"),
        default="auto",
        help="run each epoch as one lax.scan program instead of a loop over the step "
        "(default auto: on an accelerator; the same numbers either way)",
    )
    parser.add_argument(
        "--sharpness",
        action="store_true",
        help="after every epoch, the top Hessian eigenvalue of the training loss on a fixed batch "
        "(Lanczos on Hessian-vector products), against its stability limit 2/lr",
    )
    parser.add_argument(
        "--sharpness-examples",
        type=positive_int("--sharpness-examples"),
        default=None,
        help="with --sharpness, the fixed batch: the first N training images (default: 1000)",
    )
    parser.add_argument(
        "--sharpness-iters",
        type=positive_int("--sharpness-iters"),
        default=None,
        help="with --sharpness, Lanczos steps (Hessian-vector products) per measure "
        "(default: 20, at most 1000)",
    )


def scan_setting(scan_epochs: str) -> bool | None:
    """``train``'s ``scan_epochs`` from ``--scan-epochs``."""
    return {"auto": None, "on": True, "off": False}[scan_epochs]


def sharpness_settings(sharpness: bool, examples: int | None, iters: int | None) -> dict[str, int]:
    """TrainConfig's sharpness fields from the options
    (:func:`gdjax.train.config.sharpness_fields`)."""
    return sharpness_fields(sharpness, examples, iters)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schedule",
        action="append",
        default=None,
        help="NAME[:key=value,...] (repeat for a population; default: constant, lr 0.3)",
    )
    parser.add_argument(
        "--seeds",
        type=seed_type("--seeds"),
        nargs="+",
        default=None,
        help="several seeds: every schedule is trained with each (default: --seed)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int("--batch-size"),
        default=256,
        help="(default: 256)",
    )
    parser.add_argument(
        "--optimizer",
        choices=tuple(train.OPTIMIZERS),
        default="sgd",
        help="the update, through optax (default: sgd, the chapter's plain SGD)",
    )
    parser.add_argument(
        "--setting",
        type=setting_type,
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="an optimizer setting, e.g. momentum=0.9 (sgd, nesterov), b1=0.8 (adam); repeat "
        "for several",
    )
    add_training_arguments(parser)


def configs_from_args(
    schedule: list[str] | None, seeds: list[int] | None, seed: int, **shared
) -> list[train.TrainConfig]:
    schedules = schedule or ["constant"]
    seeds = seeds or [seed]
    parsed = [chapter_schedule(s) for s in schedules]  # specs parsed once, here at the edge
    return [train.TrainConfig(schedule=s, seed=k, **shared) for s in parsed for k in seeds]


def run(
    out: Path,
    *,
    seed: int = 0,
    schedule: list[str] | None = None,
    seeds: list[int] | None = None,
    epochs: int = 30,
    per: str = "epoch",
    batch_size: int = 256,
    subset: int | None = None,
    test_subset: int | None = None,
    resume: bool = False,
    mode: str = "auto",
    data_dir: str | None = None,
    no_progress: bool = False,
    optimizer: str = "sgd",
    setting: list[tuple[str, float]] | None = None,
    sharpness: bool = False,
    sharpness_examples: int | None = None,
    sharpness_iters: int | None = None,
    scan_epochs: str = "auto",
) -> dict:
    configs = configs_from_args(
        schedule,
        seeds,
        seed,
        optimizer=optimizer,
        settings=tuple(setting or ()),
        epochs=epochs,
        per=per,
        batch_size=batch_size,
        subset=subset,
        test_subset=test_subset,
        **sharpness_settings(sharpness, sharpness_examples, sharpness_iters),
    )
    names = [_name(c, len(configs)) for c in configs]
    if resume:  # before the data is loaded: one model or many, nothing to resume is an error
        train.check_resume(out, mode="single" if len(configs) == 1 else mode, names=names)
    out.mkdir(parents=True, exist_ok=True)
    dataset = fashion_mnist(data_dir)
    # redrawn after every epoch, written atomically (a kill never leaves half an image)
    curves = plot.live(plot.training_curves, path=out / "curves.png")  # titled in words
    if len(configs) == 1:
        result = train.train(
            configs[0],
            dataset,
            out=out,
            resume=resume,
            progress=not no_progress,
            on_epoch=curves,
            scan_epochs=scan_setting(scan_epochs),
        )
        result.meta["names"] = names
    else:
        result = train.train_many(
            configs,
            dataset,
            names=names,
            mode=mode,
            out=out,
            resume=resume,
            progress=not no_progress,
            on_epoch=curves,
            scan_epochs=scan_setting(scan_epochs),
        )
    write_training_report(out, result, names, "Fashion-MNIST LeNet")
    return {"out": str(out), "names": names, "result": result}


def _name(config: train.TrainConfig, n_models: int) -> str:
    slug = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in config.schedule_name)
    return f"{slug}_seed{config.seed}" if n_models > 1 else slug


def summary(res: dict) -> str:
    result = res["result"]
    lines = [f"LeNet on Fashion-MNIST ({result.meta['mode']}, {result.meta['backend']})"]
    for name, epochs in zip(res["names"], result.epochs, strict=True):
        last = epochs[-1]
        lines.append(
            f"  {name}: epoch {last['epoch']}: train loss {_f(last['train_loss'])}, "
            f"train acc {_f(last['train_acc'])}, test acc {_f(last['test_acc'])}"
        )
    return "\n".join(lines)


def _f(v) -> str:
    return "diverged" if v is None else f"{v:.3f}"


COMMAND = Command(
    name="lenet",
    doc=__doc__,
    add_arguments=add_arguments,
    run=run,
    summary=summary,
    trains=True,
    multiprocess=True,
)
