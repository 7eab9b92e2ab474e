"""``jax.jit`` for a program that runs once, in milliseconds (private core).

XLA's CPU backend spends most of a small program's compile time in LLVM's
optimisation passes, which a program that runs once on a few numbers never
repays (docs/architecture.md gives the times measured). :func:`jit_once`
compiles such a program with LLVM's optimisation level 0 on the CPU; other
backends keep their defaults.

Level 0 is not free of numerical change in general: at the default level
XLA's CPU code may fuse a multiply and an add into one FMA (one rounding), at
level 0 it does not, so a result can differ in its last bit (a uniform draw
on [-3, 3) did in a third of its values). So a program uses :func:`jit_once`
only where every value is exact either way, and a test compares it with the
default compile.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax

CPU_OPTIONS = {"xla_backend_optimization_level": 0}
"""The compile options of :func:`jit_once` on the CPU."""


def jit_once(fun: Callable | None = None, **jit_kwargs: Any):
    """``jax.jit(fun, **jit_kwargs)``, compiled at LLVM's level 0 when the
    default backend is the CPU (decided at the first call, after the devices
    are set up, not at import). Usable as a decorator, with or without
    arguments; ``.lower`` lowers as ``jax.jit``'s does."""
    if fun is None:
        return functools.partial(jit_once, **jit_kwargs)
    return _Once(fun, jit_kwargs)


class _Once:
    def __init__(self, fun: Callable, jit_kwargs: dict):
        functools.update_wrapper(self, fun)
        self._fun, self._kwargs, self._jitted = fun, jit_kwargs, None

    def _get(self):
        if self._jitted is None:
            options = CPU_OPTIONS if jax.default_backend() == "cpu" else None
            self._jitted = jax.jit(self._fun, compiler_options=options, **self._kwargs)
        return self._jitted

    def __call__(self, *args, **kwargs):
        return self._get()(*args, **kwargs)

    def lower(self, *args, **kwargs):
        return self._get().lower(*args, **kwargs)
