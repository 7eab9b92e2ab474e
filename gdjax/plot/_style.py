"""What the figures of :mod:`gdjax.plot` share: the matplotlib backend,
colours, titles, and the basin maps' colours and markers.

Imported first by :mod:`gdjax.plot` (before any module of it imports
pyplot), so the backend is chosen before pyplot is used: files, not
windows, outside IPython; in a notebook its own (inline) backend stays.
"""

from __future__ import annotations

import io
import sys
import textwrap

import jax
import jax.numpy as jnp
import matplotlib


def _in_ipython() -> bool:
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


# files, not windows, outside IPython; in a notebook its own (inline) backend stays
if not _in_ipython():
    matplotlib.use("Agg", force=False)
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gdjax.surfaces import Surface  # noqa: E402

# --------------------------------------------------------------------------
# Colours, words, titles.

# tab10 without its grey (grey means "diverged" in the basin figures), then ten
# more colours that stay apart from those (Trubetskoy's list of distinct colours)
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#000075",
    "#808000",
    "#f032e6",
    "#469990",
    "#9a6324",
    "#42d4f4",
    "#800000",
    "#bfef45",
    "#4363d8",
    "#ffd8b1",
    "#aaffc3",
)


def run_colors(n: int) -> list[str]:
    """``n`` distinct colours, one per run or per minimum: a qualitative palette
    for up to 20, evenly spaced samples of ``turbo`` beyond."""
    if n <= len(_PALETTE):
        return list(_PALETTE[:n])
    cmap = matplotlib.colormaps["turbo"]
    return [mcolors.to_hex(cmap(v)) for v in np.linspace(0.03, 0.97, n)]


def _wrap(text: str, fig: Figure, fontsize: float = 12, share: float = 1.0) -> str:
    """Wraps ``text`` to fit ``share`` of the figure's width (about 0.55 em a character)."""
    chars = max(20, int(share * fig.get_figwidth() * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars, break_on_hyphens=False)) or text


def _title(ax, text: str, fontsize: float = 12, share: float | None = None) -> None:
    fig = ax.figure
    if share is None:  # the axes' share of the figure's width
        share = max(0.3, ax.get_position().width)
    ax.set_title(_wrap(text, fig, fontsize, share), fontsize=fontsize)


def _fig_ax(ax, figsize=(6.5, 4.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def surface_grid(surface: Surface, resolution: int = 300, domain=None) -> tuple[np.ndarray, ...]:
    """Evaluates a 2D surface on a regular grid over its domain (or ``domain``): (X, Y, Z)."""
    if surface.dim != 2:
        raise ValueError(f"surface_grid needs a 2D surface, {surface.name!r} is {surface.dim}D")
    (x0, x1), (y0, y1) = surface.domain if domain is None else domain
    xs = np.linspace(x0, x1, resolution, dtype=np.float32)
    ys = np.linspace(y0, y1, resolution, dtype=np.float32)
    X, Y = np.meshgrid(xs, ys)
    pts = jnp.stack([X.ravel(), Y.ravel()], axis=-1)
    Z = np.asarray(jax.jit(jax.vmap(surface.fn))(pts)).reshape(X.shape)
    return X, Y, Z


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes, rendered in memory (to embed, or to
    write atomically with :func:`gdjax.runs.write_bytes`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _centre_note(ax, text: str, **style) -> None:
    """A note in the middle of a panel that has nothing to draw (no start
    converged, no boundary): boxed in white unless ``style`` says otherwise."""
    style = {"bbox": {"fc": "w", "ec": "0.5"}, **style}
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", **style)


def _corner_note(ax, text: str, color: str = "0.4") -> None:
    """A small grey note in a panel's lower right corner (what a line or a
    count there means)."""
    ax.text(
        0.99, 0.02, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color=color
    )


def _luminance(rgba) -> float:
    """Relative luminance (WCAG) of a colour, 0 (black) to 1 (white)."""
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _text_color(rgba) -> str:
    """Black on light cells, white on dark ones (the higher contrast ratio)."""
    lum = _luminance(rgba)
    return "k" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "w"


def _log_norm(values: np.ndarray) -> mcolors.LogNorm:
    """A LogNorm over the finite positive values, valid when there are none or one."""
    ok = values[np.isfinite(values) & (values > 0)]
    if ok.size == 0:
        return mcolors.LogNorm(1e-12, 1.0)
    lo, hi = float(ok.min()), float(ok.max())
    if not hi > lo:
        lo, hi = lo / 10, hi * 10
    return mcolors.LogNorm(lo, hi)


# --------------------------------------------------------------------------
# Basins of attraction (gdjax.basins.BasinMap): the colour of each outcome and
# the markers of the critical points.

_DIVERGED_COLOR = "#8c8c8c"  # never a minimum's colour: the palette has no grey
_NOT_CONVERGED_COLOR = "#ffffff"
_CRITICAL_MARKERS = {
    "min": ("*", "yellow", 15),
    "saddle": ("X", "white", 9),
    "max": ("^", "red", 9),
}


def _basin_colors(n_min: int) -> list:
    """Colour of label l at index l + 2: diverged, not converged, then each minimum."""
    return [_DIVERGED_COLOR, _NOT_CONVERGED_COLOR, *run_colors(n_min)]


def _mark_critical(ax, critical) -> None:
    for c in critical:
        m, col, size = _CRITICAL_MARKERS.get(c.kind, ("o", "grey", 6))
        ax.plot(*c.location[:2], m, color=col, mec="k", ms=size, zorder=4)
