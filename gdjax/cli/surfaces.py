"""``gdjax surfaces``: the surface zoo and its minima."""

from __future__ import annotations

from gdjax import surfaces

__all__ = ["describe", "main"]


def describe() -> str:
    """Each surface: its dimension, domain and formula, then its minima."""
    lines = []
    for name in surfaces.names():
        s = surfaces.get(name)
        box = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in s.domain)
        lines.append(f"{name} ({s.dim}D, domain {box}): {s.formula}")
        for m in s.minima:
            loc = ", ".join(f"{v:.6g}" for v in m.location)
            tag = "global" if m.is_global else "local"
            lines.append(f"    {tag:6s} min f({loc}) = {m.value:.6g}")
        if not s.all_minima:
            lines.append("    (global only; many local minima)")
    return "\n".join(lines)


def main() -> None:
    """Prints :func:`describe`."""
    print(describe())
