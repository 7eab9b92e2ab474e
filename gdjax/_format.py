"""Numbers in words for titles, tables and reports (private core)."""

from __future__ import annotations

import html
import math
import re

import numpy as np


def short_number(v) -> str:
    """3 significant digits, no float noise: 0.1 + 0.2 -> "0.3"; an array of
    several values is shown as its range and count ("0.001..0.2 (64 values)");
    a flag as "true" or "false"."""
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, np.ndarray | list | tuple) or hasattr(v, "__array__"):
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            return str(v)
        if arr.size == 1:
            v = arr.reshape(())[()]
        elif arr.size == 0:
            return "[]"
        else:
            lo, hi = short_number(arr.min()), short_number(arr.max())
            return f"{lo}..{hi} ({arr.size} values)"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isfinite(x) and x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}"


def duration(seconds: float) -> str:
    """A time a person reads: "42 s", "7.5 min", "3.2 h", "12 days", "4.2 years"."""
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 2 * 365.25 * 86400:
        return f"{s / 86400:.0f} days"
    return f"{s / (365.25 * 86400):.3g} years"


_ROLE = re.compile(r":(?:mod|func|class|meth|data|attr|obj):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain_doc(text: str) -> str:
    """A docstring as a terminal shows it (``--help``): ``code`` and
    :func:`name` markup read as the bare words."""
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", text))


def html_doc(text: str) -> str:
    """A docstring as an HTML page shows it: escaped, ``code`` and
    :func:`name` in ``<code>``."""
    escaped = html.escape(text)
    return _LITERAL.sub(r"<code>\1</code>", _ROLE.sub(r"<code>\1</code>", escaped))
