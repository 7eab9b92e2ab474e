"""Reports: files a person opens.

``Report`` collects text, tables and matplotlib figures and writes a
self-contained HTML page (figures embedded as PNG data), saving every figure
as a PNG beside it. ``write_json`` writes results strictly: numpy and jax
values, dataclasses and NamedTuples are converted, and a NaN or inf is an
error, never silently written. ``write_training_report`` writes the report
of a training run (:class:`gdjax.train.RunResult`).
"""

from __future__ import annotations

import base64
import html
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jaxlib
import matplotlib
import numpy as np
import optax

import gdjax
from gdjax import plot, runs, sharpness
from gdjax.plot._style import plt, png_bytes  # pyplot after gdjax.plot chose the backend
from gdjax.plot.sharpness import sharpness_curves
from gdjax.runs import to_jsonable as to_jsonable  # JSON is a run folder's file
from gdjax.runs import write_json as write_json

__all__ = [
    "Report",
    "curves_caption",
    "png_bytes",
    "to_jsonable",
    "versions",
    "write_json",
    "write_training_report",
]


def versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape the numbers."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "gdjax": gdjax.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "matplotlib": matplotlib.__version__,
        "backend": jax.default_backend(),
        "devices": str(jax.device_count()),
    }


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: .92em; }
th, td { border: 1px solid #bbb; padding: .3em .7em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9em; }
pre { background: #f5f5f5; padding: .7em; overflow-x: auto; font-size: .85em; }
.note { background: #fff8e0; border-left: 4px solid #e0b000; padding: .5em 1em; }
"""


class Report:
    """A self-contained HTML report.

    Example:
        >>> r = Report("Lesson A")
        >>> r.text("Gradient descent in 1D.")
        >>> r.table(["lr", "final x"], [[0.1, 0.5]])
        >>> r.write("runs/lesson_1d")  # writes report.html  # doctest: +SKIP
    """

    def __init__(self, title: str):
        self.title = title
        self._parts: list[str] = []
        self._figures: list[tuple[str, bytes]] = []

    def heading(self, text: str) -> None:
        self._parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, *, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def code(self, text: str) -> None:
        self._parts.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
            for row in rows
        )
        self._parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def figure(self, fig, name: str, caption: str = "") -> None:
        """Embeds a matplotlib figure; it is also saved as ``name``.png."""
        try:
            png = png_bytes(fig)
        finally:
            plt.close(fig)
        self._figures.append((f"{name}.png", png))
        data = base64.b64encode(png).decode("ascii")
        self._parts.append(
            f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def animation(self, gif: bytes, name: str, caption: str = "") -> None:
        """Embeds an animated GIF (bytes); it is also saved as ``name``.gif."""
        self._figures.append((f"{name}.gif", gif))
        data = base64.b64encode(gif).decode("ascii")
        self._parts.append(
            f'<figure><img alt="{html.escape(name)}" src="data:image/gif;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def write(self, out_dir: str | Path, filename: str = "report.html") -> Path:
        """Writes the PNGs (and GIFs), then the page, into ``out_dir``, each atomically;
        returns the page's path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for file, data in self._figures:
            runs.write_bytes(out / file, data)
        versions_table = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
            for k, v in versions().items()
        )
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1>{''.join(self._parts)}"
            f"<h2>Versions</h2><table>{versions_table}</table></body></html>\n"
        )
        return runs.write_text(out / filename, page)


# --------------------------------------------------------------------------
# Training runs (gdjax.train.RunResult).


def curves_caption(result) -> str:
    """What the training-curves figure draws, for this run's numbers of
    minibatches (a small run has fewer than ``log_every`` per epoch)."""
    log_every, spe = result.configs[0].log_every, result.meta["steps_per_epoch"]
    if any(result.curves):
        points = spe // log_every
        every = "every minibatch" if log_every == 1 else f"every {log_every} minibatches"
        train_part = (
            f"Train loss and train accuracy {every} ({points} "
            f"point{'s' if points > 1 else ''} per epoch of {spe} minibatches), each averaged "
            "over the epoch so far: the line breaks where an epoch starts its average again, "
            "and a dot marks each epoch's mean"
        )
    else:
        train_part = (
            f"Train loss and train accuracy once per epoch, averaged over the epoch (an epoch "
            f"has {spe} minibatch{'es' if spe > 1 else ''}, fewer than the {log_every} between "
            "within-epoch points)"
        )
    return f"{train_part}; test accuracy at the end of every epoch."


def _add_data(report: Report, result) -> None:
    """Which files the run trained on: path and SHA-256 of each."""
    data = result.meta.get("data")
    if not data:
        return
    report.text(f"Data: {data['source']} (SHA-256 of each file as stored, as sha256sum prints).")
    if data.get("files"):
        report.table(
            ["array", "file", "SHA-256"],
            [[f["key"], f["path"], f["sha256"]] for f in data["files"]],
        )


def write_training_report(
    out: str | Path,
    result,
    names: Sequence[str],
    title: str,
    *,
    extra: Callable[[Report], None] | None = None,
    groups: Sequence[str] | None = None,
) -> Path:
    """Writes the report of a training run (a :class:`gdjax.train.RunResult`)
    into ``out``: report.html and its figures (curves.png; comparison.png
    for several models), with the data files used, the final epoch of every
    model, every epoch, and the command.

    Args:
        out: the output folder.
        result: the run's result.
        names: one name per model.
        title: the page's title.
        extra: adds more to the report (after the data, before the figures).
        groups: one group per model (e.g. its policy when several seeds
            ran): one colour and legend entry per group in the comparison.

    Returns:
        The page's path.
    """
    report = Report(title)
    report.text(
        f"{len(names)} model(s), {result.meta['train_examples']} training and "
        f"{result.meta['test_examples']} test images, batch {result.configs[0].batch_size}, "
        f"schedule stepped per {result.configs[0].per}; {result.meta['param_count']:,} "
        f"parameters; mode {result.meta['mode']} on {result.meta['backend']} "
        f"({result.meta['devices']} device(s)); compile {result.compile_seconds:.1f} s."
    )
    _add_data(report, result)
    if extra is not None:
        extra(report)
    # each model titled by its schedule in words (names are file-safe slugs)
    report.figure(plot.training_curves(result), "curves", curves_caption(result))
    if len(names) > 1:
        report.figure(
            plot.policy_comparison(result, names=names, groups=groups),
            "comparison",
            "Every model's test accuracy, train loss and learning rate per epoch.",
        )
    if any(c.sharpness for c in result.configs):
        _add_sharpness(report, result, names, groups)
    report.heading("Final epoch")
    rows = []
    for name, config, epochs in zip(names, result.configs, result.epochs, strict=True):
        last = epochs[-1]
        rows.append(
            [
                name,
                repr(config.build_schedule()),
                last["epoch"],
                last["train_loss"],
                last["train_acc"],
                last["test_acc"],
                sum(e["seconds"] for e in epochs),
            ]
        )
    report.table(
        ["model", "schedule", "epochs", "train loss", "train acc", "test acc", "seconds"], rows
    )
    report.heading("Every epoch")
    for name, epochs in zip(names, result.epochs, strict=True):
        report.text(name)
        keys = ["epoch", "lr", "train_loss", "train_acc", "test_acc", "seconds"]
        if epochs and "sharpness" in epochs[0]:
            keys.append("sharpness")
        report.table(
            [k.replace("_", " ") for k in keys],
            [["-" if e[k] is None else e[k] for k in keys] for e in epochs],
        )
    report.heading("Command")
    report.code(runs.command_line())
    return report.write(out)


def _add_sharpness(report: Report, result, names: Sequence[str], groups) -> None:
    """The sharpness section: the figure, and every model against its limit."""
    cfg = result.configs[0]
    report.heading("Sharpness and the edge of stability")
    report.text(
        f"After every epoch, the top eigenvalue of the Hessian of the training loss (mean "
        f"cross-entropy) on a fixed batch, the first {cfg.sharpness} training images, by "
        f"{cfg.sharpness_iters} Lanczos steps on Hessian-vector products. Gradient descent at "
        "rate lr cannot converge where the loss is sharper than 2/lr ((2 + 2 momentum)/lr "
        "with heavy-ball momentum, (2 + 2 momentum)/(lr (1 + 2 momentum)) with Nesterov's); "
        "Cohen et al. (2021) found full-batch training sharpening until it reaches that limit "
        "and hovering there. An epoch counts as at the edge when the sharpness is "
        f"{sharpness.EDGE[0]:g} to {sharpness.EDGE[1]:g} of the limit, and above it beyond. "
        "The limit uses the rate of the epoch's first update (a rate of 0 has none)."
    )
    report.figure(
        sharpness_curves(result, names=names, groups=groups),
        "sharpness",
        "Sharpness per epoch (solid) against its stability limit (dashed), and their ratio.",
    )
    rows = []
    for m, (name, e) in enumerate(zip(names, sharpness.edges(result), strict=True)):
        finite = result.metrics.sharpness[m][np.isfinite(result.metrics.sharpness[m])]
        rows.append(
            [
                name,
                float(finite[-1]) if len(finite) else "-",
                "-" if e is None or e.final is None else round(e.final, 3),
                "-" if e is None or e.peak is None else f"{e.peak:.3f} (epoch {e.peak_epoch})",
                "-" if e is None or e.median is None else round(e.median, 3),
                "-" if e is None else f"{e.edge_epochs}/{e.measured}",
                "-" if e is None else f"{e.above_epochs}/{e.measured}",
                sharpness.verdict(e),
            ]
        )
    report.table(
        [
            "model",
            "final sharpness",
            "final / limit",
            "peak / limit",
            "median",
            "epochs at the edge",
            "above it",
            "verdict",
        ],
        rows,
    )


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        v = float(v)
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(v)
