"""The one descent engine behind descend, descend_final, sweep and map_basins.

It owns four things, each written once:

* the rate of every rule at a step (:func:`rates`, :func:`scale`);
* the update, plain ``x - rate * grad`` or through any optax
  ``GradientTransformation`` (:func:`init_opt`, :func:`update`);
* the convergence test (:func:`settled`): ``|grad|^2 < tol^2``, or
  ``|x - target|^2 < tol^2``;
* the divergence policy (:func:`diverged`): a run diverged when it met a
  non-finite value, or when it ends beyond ``bound`` without having settled.

What fixes a compiled program is a :class:`Method` (static, hashable: the kind
of update). Every number is in a :class:`Hyper`, a PyTree of arrays: the
learning rate, a schedule's numbers and its family, an optax optimizer's
settings, the tolerance and the bound. A new value never recompiles, and a
batch of values (leading axes on the leaves) is one vmapped program.

Two loop drivers use these pieces: :class:`Stepper` (every step checked; the
whole trajectory can be recorded) and :func:`run_blocked` (the basin maps'
fast path: the gradient norm checked every ``every`` steps at no extra
gradient evaluation).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PyTree

from gdjax import _validate
from gdjax import schedules as _schedules

RULES: tuple[str, ...] = ("fixed", "time", "grad")


class Hyper(NamedTuple):
    """Every number of a descent, as arrays (traced; leading axes = a batch).

    Attributes:
        rate: the rate at each count, as a schedule's arrays (``fixed``: a
            constant; ``time``: linear decay over the run; a gdjax schedule:
            its own numbers).
        grad_scaled: lesson D's ``"grad"`` rule: the rate is multiplied by
            the gradient norm.
        opt: an optax factory's numeric settings (momentum, b1, ...), by name.
        tol: convergence tolerance.
        bound: a run that ends beyond this without settling diverged.
    """

    rate: Any  # gdjax.schedules.ScheduleParams
    grad_scaled: Array
    opt: dict[str, Array]
    tol: Array
    bound: Array


@dataclasses.dataclass(frozen=True)
class Method:
    """What fixes the compiled program: the kind of update, never a number.

    Attributes:
        factory: an optax factory called with ``learning_rate`` (the rate of
            the step) and ``opt``'s arrays, or None.
        static_kwargs: the factory's arguments that are not numbers (flags).
        tx: a prebuilt optax transformation (its numbers are fixed in it).
        schedule_fn: an opaque ``count -> lr`` callable (not a gdjax schedule:
            its numbers are fixed in it).
        grad_norm: the program multiplies the rate by |grad| where
            ``Hyper.grad_scaled`` says so (only programs that may need it pay
            for the norm).
    """

    factory: Callable[..., optax.GradientTransformation] | None = None
    static_kwargs: tuple[tuple[str, Any], ...] = ()
    tx: optax.GradientTransformation | None = None
    schedule_fn: Callable[[Array], Array] | None = None
    grad_norm: bool = False

    @property
    def uses_optax(self) -> bool:
        return self.factory is not None or self.tx is not None


# --------------------------------------------------------------------------
# Building (Method, Hyper) from the public arguments.


def _constant_rate(lr, dtype):
    return _schedules.constant(1.0).params(dtype)._replace(base_lr=jnp.asarray(lr, dtype))


def _linear_rate(lr, steps: int, dtype):
    return (
        _schedules.linear_decay(1.0, steps).params(dtype)._replace(base_lr=jnp.asarray(lr, dtype))
    )


def _is_number(v) -> bool:
    if isinstance(v, bool | np.bool_):
        return False
    if isinstance(v, float | np.floating):
        return True
    if isinstance(v, jax.Array | np.ndarray):
        return jnp.issubdtype(v.dtype, jnp.floating)
    if isinstance(v, list | tuple):
        return bool(v) and all(_is_number(x) or isinstance(x, int) for x in v)
    return False


def split_kwargs(kwargs: dict) -> tuple[dict, tuple]:
    """An optax factory's arguments: floats (and float arrays) are data; flags,
    integers, strings and None fix the program."""
    numbers = {k: v for k, v in kwargs.items() if _is_number(v)}
    static = tuple(sorted((k, v) for k, v in kwargs.items() if k not in numbers))
    return numbers, static


def hyper(
    rate,
    *,
    dtype,
    tol=0.0,
    bound=np.inf,
    grad_scaled=False,
    opt: dict | None = None,
) -> Hyper:
    return Hyper(
        rate=rate,
        grad_scaled=jnp.asarray(grad_scaled, bool),
        opt={k: jnp.asarray(v, dtype) for k, v in (opt or {}).items()},
        tol=jnp.asarray(tol, dtype),
        bound=jnp.asarray(bound, dtype),
    )


def _item_ndims(h: Hyper) -> Hyper:
    """Each leaf's number of axes for one item (not batched): 0, and 1 for a
    schedule's milestones."""
    zeros = jax.tree.map(lambda _: 0, h)
    return zeros._replace(rate=zeros.rate._replace(milestones=1))


def batch_shape(h: Hyper) -> tuple[int, ...]:
    """The batch shape of ``h``: its leaves' leading axes beyond one item's,
    broadcast together (numpy rules)."""
    leaves, ndims = jax.tree.leaves(h), jax.tree.leaves(_item_ndims(h))
    shapes = [np.shape(a)[: np.ndim(a) - n] for a, n in zip(leaves, ndims, strict=True)]
    try:
        return tuple(np.broadcast_shapes(*shapes)) if shapes else ()
    except ValueError:
        raise ValueError(
            "batched hyperparameters must broadcast together (numpy rules); got batch shapes "
            + ", ".join(str(s) for s in shapes)
        ) from None


def _xp(h):
    """NumPy for concrete leaves (no program compiled per shape for what only
    copies numbers), jax.numpy under a trace."""
    return jnp if any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(h)) else np


def broadcast(h: Hyper, shape: tuple[int, ...]) -> Hyper:
    """Every leaf of ``h`` broadcast to ``shape + item shape``."""
    xp = _xp(h)
    return jax.tree.map(
        lambda a, n: xp.broadcast_to(a, tuple(shape) + np.shape(a)[np.ndim(a) - n :]),
        h,
        _item_ndims(h),
    )


def flatten(h: Hyper, shape: tuple[int, ...]) -> Hyper:
    """``h`` broadcast to the batch ``shape``, whose axes become one leading axis."""
    size = int(np.prod(shape, dtype=np.int64))
    return jax.tree.map(lambda a: a.reshape((size,) + a.shape[len(shape) :]), broadcast(h, shape))


def stack(hypers: Sequence[Hyper]) -> Hyper:
    """Hyperparameter sets stacked on a new leading axis (broadcast to one batch
    shape, their schedules' milestones padded with +inf to one length)."""
    shape = tuple(np.broadcast_shapes(*[batch_shape(h) for h in hypers]))
    m = max(h.rate.milestones.shape[-1] for h in hypers)
    xp = _xp(list(hypers))

    def pad(h):
        h = broadcast(h, shape)
        ms = h.rate.milestones
        extra = xp.full(ms.shape[:-1] + (m - ms.shape[-1],), np.inf, ms.dtype)
        return h._replace(rate=h.rate._replace(milestones=xp.concatenate([ms, extra], -1)))

    return jax.tree.map(lambda *xs: xp.stack(xs), *[pad(h) for h in hypers])


@dataclasses.dataclass(frozen=True, eq=False)
class OptaxFactory:
    """An optax optimizer factory called with ``learning_rate=lr`` (and its
    numeric settings) inside the compiled program, so the learning rate and
    every float setting (momentum, b1, ...) are data: traced, swept and
    vmapped. Build it with :func:`gdjax.optimizer`."""

    factory: Callable[..., optax.GradientTransformation]
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return getattr(self.factory, "__name__", repr(self.factory))


def check_lr(lr, dtype) -> None:
    """A concrete rate that the dtype turns into 0 or inf (lr = 1e-50 in
    float32) is refused."""
    if lr is None or not _validate.is_concrete(lr):
        return
    try:
        wanted = np.asarray(lr, np.float64)
    except (TypeError, ValueError):
        return  # not a number: refused with its own message by check_positive
    with np.errstate(over="ignore"):
        cast = wanted.astype(dtype)
    lost = (cast == 0) & (wanted != 0) | (np.isinf(cast) & np.isfinite(wanted))
    if np.any(lost):
        bad = float(wanted[lost][0]) if wanted.ndim else float(wanted)
        raise ValueError(
            f"lr {bad:g} is not representable in {np.dtype(dtype).name} (it would become "
            f"{float(cast[lost][0]) if cast.ndim else float(cast):g}); use float64 "
            "(--x64 on the command line, jax.enable_x64 in Python) or another rate"
        )


def _require_lr(lr, what: str) -> None:
    if lr is None:
        raise ValueError(f"{what} needs a learning rate: pass lr=...")
    _validate.check_positive("lr", lr)


def _forbid_lr(lr, what: str) -> None:
    if lr is not None:
        raise ValueError(f"lr must be left out when the rule is {what}")


def is_single_rule(rule) -> bool:
    # a GradientTransformation is a NamedTuple, hence a Sequence: test it first
    return isinstance(rule, str | optax.GradientTransformation) or not isinstance(rule, Sequence)


def resolve(rule, lr, *, steps: int, dtype, tol=0.0, bound=np.inf) -> tuple[Method, Hyper]:
    """The public ``rule`` and ``lr`` as (Method, Hyper), validating them.

    ``lr`` (and an optax factory's float settings) may be arrays: their
    leading axes are a batch (see :func:`batch_shape`)."""
    common = dict(dtype=dtype, tol=tol, bound=bound)
    if isinstance(rule, str):
        if rule not in RULES:
            raise ValueError(
                f"unknown rule {rule!r}; named rules: {', '.join(RULES)}; or pass a schedule "
                "(count -> lr), an optax.GradientTransformation or gdjax.optimizer(...)"
            )
        _require_lr(lr, f"rule {rule!r}")
        rate = _linear_rate(lr, steps, dtype) if rule == "time" else _constant_rate(lr, dtype)
        # lesson D's rule is another kind of update (its rate depends on the
        # gradient): only its program pays for the norm
        method = Method(grad_norm=rule == "grad")
        return method, hyper(rate, grad_scaled=rule == "grad", **common)
    if isinstance(rule, optax.GradientTransformation):
        _forbid_lr(lr, "an optax.GradientTransformation (its learning rate is built in)")
        return Method(tx=rule), hyper(_constant_rate(1.0, dtype), **common)
    if isinstance(rule, OptaxFactory):
        _require_lr(lr, "gdjax.optimizer(...)")
        numbers, static = split_kwargs(dict(rule.kwargs))
        for k, v in numbers.items():
            _validate.check_nonnegative(k, v)
        return Method(factory=rule.factory, static_kwargs=static), hyper(
            _constant_rate(lr, dtype), opt=numbers, **common
        )
    if isinstance(rule, _schedules.Schedule):
        _forbid_lr(lr, "a schedule (it gives the learning rate)")
        return Method(), hyper(rule.params(dtype), **common)
    if callable(rule):
        _forbid_lr(lr, "a schedule (it gives the learning rate)")
        return Method(schedule_fn=rule), hyper(_constant_rate(1.0, dtype), **common)
    raise ValueError(
        f"rule must be one of {', '.join(RULES)}, a schedule, an optax.GradientTransformation "
        f"or gdjax.optimizer(...); got {rule!r}"
    )


def resolve_many(rules, lr, *, steps: int, dtype, tol=0.0, bound=np.inf):
    """Several rules of one kind of update side by side: (Method, Hyper with a
    leading rule axis). ``lr`` is one value, or one per rule."""
    rules = list(rules)
    if not rules:
        raise ValueError("rules must not be empty")
    if lr is not None and np.ndim(lr) == 1 and np.size(lr) not in (1, len(rules)):
        raise ValueError(f"lr must be one value or one per rule, got shape {np.shape(lr)}")
    if lr is not None and np.ndim(lr) > 1:
        raise ValueError(f"lr must be one value or one per rule, got shape {np.shape(lr)}")
    lrs = [None] * len(rules) if lr is None else list(np.broadcast_to(lr, (len(rules),)))
    pairs = [
        resolve(r, v, steps=steps, dtype=dtype, tol=tol, bound=bound)
        for r, v in zip(rules, lrs, strict=True)
    ]
    return side_by_side(rules, pairs)


def side_by_side(rules, pairs) -> tuple[Method, Hyper]:
    """Resolved rules of one kind of update as one Method and a Hyper with a
    leading rule axis."""
    if any(m.grad_norm for m, _ in pairs) and all(not m.uses_optax for m, _ in pairs):
        pairs = [(dataclasses.replace(m, grad_norm=True), h) for m, h in pairs]
    methods = {m for m, _ in pairs}
    if len(methods) > 1 or any(m.tx is not None or m.schedule_fn is not None for m in methods):
        raise ValueError(
            "rules side by side must share one kind of update: named rules (fixed, time, "
            "grad) and gdjax schedules together, or one gdjax.optimizer(...) factory; got "
            + ", ".join(r if isinstance(r, str) else type(r).__name__ for r in rules)
        )
    return pairs[0][0], stack([h for _, h in pairs])


# --------------------------------------------------------------------------
# The rate.


def _standard_promotion():
    # optax mixes int32 counts with floats (b1 ** count in adam), which fails
    # under jax_numpy_dtype_promotion="strict"; optax code runs under the
    # standard rules whatever the caller chose.
    return jax.numpy_dtype_promotion("standard")


def rates(method: Method, h: Hyper, start: int, length: int, dtype) -> Array:
    """The base rate of counts ``start .. start + length - 1`` (a table: the
    rate depends on the count only, so it is computed once, not per start)."""
    counts = jnp.arange(start, start + length, dtype=jnp.int32)
    if method.schedule_fn is not None:
        with _standard_promotion():
            return jax.vmap(lambda c: jnp.asarray(method.schedule_fn(c)))(counts).astype(dtype)
    return jax.vmap(_schedules.evaluate, in_axes=(None, 0))(h.rate, counts).astype(dtype)


def norm2(tree) -> Array:
    """Squared global norm. A small vector is summed component by component:
    a reduction would split a 2-D step into separate kernels on the CPU."""
    total = None
    for x in jax.tree.leaves(tree):
        if x.ndim == 1 and x.shape[0] <= 8:
            part = functools.reduce(jnp.add, [x[i] * x[i] for i in range(x.shape[0])])
        else:
            part = jnp.sum(jnp.square(x))
        total = part if total is None else total + part
    return total


def scale(method: Method, h: Hyper, base: Array, grads) -> Array:
    """The rate of a step from its base rate: times |grad| for lesson D's rule."""
    if not method.grad_norm:
        return base
    return jnp.where(h.grad_scaled, base * jnp.sqrt(norm2(grads)), base)


# --------------------------------------------------------------------------
# The update.


def _build_tx(method: Method, settings, rate) -> optax.GradientTransformation:
    if method.tx is not None:
        return method.tx
    return method.factory(learning_rate=rate, **settings, **dict(method.static_kwargs))


def optax_init(method: Method, settings: dict, params, rate0) -> PyTree:
    """The optax state of ``method`` built with ``settings`` (arrays by name)."""
    with _standard_promotion():
        return _build_tx(method, settings, rate0).init(params)


def optax_step(method: Method, settings: dict, params, grads, opt_state, rate):
    """One update through optax, the transformation built from the step's
    ``rate`` and ``settings`` (traced): (new params, new state, updates). The
    descent rules and the LeNet step both update through this."""
    with _standard_promotion():
        updates, opt_state = _build_tx(method, settings, rate).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, updates


def init_opt(method: Method, h: Hyper, params, rate0) -> PyTree:
    if not method.uses_optax:
        return ()
    return optax_init(method, h.opt, params, rate0)


def sub_scaled(params, rate, grads):
    return jax.tree.map(lambda p, g: p - rate.astype(g.dtype) * g, params, grads)


def update(method: Method, h: Hyper, params, grads, opt_state, rate):
    """One step: returns (new params, new optimizer state, the rate used).

    For optax rules the rate used is the effective one, ``|update| / |grad|``."""
    if not method.uses_optax:
        rate = scale(method, h, rate, grads)
        return sub_scaled(params, rate, grads), opt_state, rate
    new, opt_state, updates = optax_step(method, h.opt, params, grads, opt_state, rate)
    g2, u2 = norm2(grads), norm2(updates)
    used = jnp.where(g2 > 0, jnp.sqrt(u2 / jnp.where(g2 > 0, g2, 1)), 0.0)
    return new, opt_state, used


# --------------------------------------------------------------------------
# Convergence and divergence.


def settled(h: Hyper, params, grads, target) -> Array:
    """The convergence test: ``|x - target| < tol``, or ``|grad| < tol`` without
    a target (squared on both sides; False for NaN)."""
    if target is not None:
        dist2 = norm2(jax.tree.map(jnp.subtract, params, target))
    else:
        dist2 = norm2(grads)
    return dist2 < h.tol * h.tol


def max_abs(tree) -> Array:
    return functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x)) for x in jax.tree.leaves(tree)])


def all_finite(*trees) -> Array:
    leaves = [x for t in trees for x in jax.tree.leaves(t)]
    return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(x)) for x in leaves])


def beyond(h: Hyper, params) -> Array:
    return max_abs(params) > h.bound


def diverged(met_non_finite, ends_beyond, is_settled) -> Array:
    """The one divergence policy: the run met a non-finite value, or it ends
    beyond the bound without having settled (a run that settles is never
    called diverged, however far it went)."""
    return met_non_finite | (ends_beyond & ~is_settled)


# --------------------------------------------------------------------------
# Driver 1: every step checked, the trajectory optionally recorded.


class State(NamedTuple):
    params: PyTree
    loss: Array
    grads: PyTree
    opt_state: PyTree
    stopped: Array  # met a non-finite value: frozen at the last finite point
    stopped_step: Array  # the step at which it did, -1 if it did not
    last_inside: Array  # last step at which the params were within the bound
    last_unsettled: Array  # last step at which the convergence test failed


class End(NamedTuple):
    """A run's end, read off a State at step ``at``."""

    params: PyTree
    loss: Array
    grad_norm: Array
    diverged: Array
    diverged_step: Array
    converged: Array
    converged_step: Array


class Stepper:
    """A pure step function over traced arguments; closes over what fixes the
    program (the function and the method)."""

    def __init__(self, fn, method: Method):
        self.method = method
        self.value_and_grad = jax.value_and_grad(fn)

    def init(self, h: Hyper, x0, target, rate0) -> State:
        loss, grads = self.value_and_grad(x0)
        finite = all_finite(x0, loss, grads)
        ok = settled(h, x0, grads, target) & finite
        return State(
            params=x0,
            loss=loss,
            grads=grads,
            opt_state=init_opt(self.method, h, x0, rate0),
            stopped=~finite,
            stopped_step=jnp.where(finite, -1, 0).astype(jnp.int32),
            last_inside=jnp.where(finite & ~beyond(h, x0), 0, -1).astype(jnp.int32),
            last_unsettled=jnp.where(ok, -1, 0).astype(jnp.int32),
        )

    def step(self, h: Hyper, state: State, count, rate, target) -> tuple[State, Array]:
        new_params, new_opt, used = update(
            self.method, h, state.params, state.grads, state.opt_state, rate
        )
        new_loss, new_grads = self.value_and_grad(new_params)
        finite = all_finite(new_params, new_loss, new_grads)
        stop = state.stopped | ~finite

        def keep(new, old):
            return jax.tree.map(lambda n, o: jnp.where(stop, o, n), new, old)

        params = keep(new_params, state.params)
        grads = keep(new_grads, state.grads)
        step_no = (count + 1).astype(jnp.int32)
        ok = settled(h, params, grads, target) & ~stop
        new_state = State(
            params=params,
            loss=keep(new_loss, state.loss),
            grads=grads,
            opt_state=keep(new_opt, state.opt_state),
            stopped=stop,
            stopped_step=jnp.where(state.stopped | finite, state.stopped_step, step_no),
            # params are finite here (a non-finite step is not taken), so frozen
            # runs are judged at their last finite point
            last_inside=jnp.where(beyond(h, params), state.last_inside, step_no),
            last_unsettled=jnp.where(ok, state.last_unsettled, step_no),
        )
        # a step that was not taken used no rate (and its rate may be NaN)
        used = jnp.where(stop, 0.0, jnp.asarray(used))
        return new_state, used.astype(jnp.asarray(new_loss).dtype)

    def scan(self, h: Hyper, state: State, start: int, length: int, target, record, unroll=1):
        dtype = jnp.asarray(state.loss).dtype
        table = rates(self.method, h, start, length, dtype)
        counts = jnp.arange(start, start + length, dtype=jnp.int32)

        def body(state, xs):
            count, rate = xs
            state, used = self.step(h, state, count, rate, target)
            out = (state.params, state.loss, state.grads, used) if record else None
            return state, out

        return jax.lax.scan(body, state, (counts, table), unroll=unroll)

    @staticmethod
    def end(state: State, at: int) -> End:
        """The run read at step ``at`` (the number of steps taken so far)."""
        is_settled = state.last_unsettled < at
        outside = state.last_inside < at
        div = diverged(state.stopped, outside, is_settled)
        # the step from which it stayed beyond the bound, or met a non-finite value
        by_bound = jnp.where(state.last_inside < 0, 0, state.last_inside + 1)
        div_step = jnp.where(outside, by_bound, state.stopped_step)
        converged = is_settled & ~div
        return End(
            params=state.params,
            loss=state.loss,
            grad_norm=jnp.sqrt(norm2(state.grads)),
            diverged=div,
            diverged_step=jnp.where(div, div_step, -1).astype(jnp.int32),
            converged=converged,
            converged_step=jnp.where(converged, state.last_unsettled + 1, -1).astype(jnp.int32),
        )


# --------------------------------------------------------------------------
# Driver 2: the basin maps' fast path (plain updates, no optax state).


def run_blocked(fn, method: Method, h: Hyper, x0, steps: int, every: int, unroll: int):
    """Plain gradient descent from one start in blocks of ``every`` steps.

    The first step of a block also checks its own gradient, so the gradient
    norm is known at every multiple of ``every`` at no extra gradient
    evaluation (a check at every step is slower: docs/basins.md); one
    more gradient at the end checks the final point. The convergence step
    therefore has a resolution of ``every``. Divergence is judged at the end,
    with the same policy as :class:`Stepper`; a run that met a non-finite value
    ends non-finite here (``finite`` False): run it again through the Stepper
    to get its last finite point.

    Returns:
        (final point, diverged, converged, converged step, finite).
    """
    if method.uses_optax:
        raise ValueError("run_blocked runs plain updates; optax rules need the Stepper")
    grad = jax.grad(fn)
    dtype = x0.dtype
    n_blocks, rest = divmod(steps, every)
    table = rates(method, h, 0, steps, dtype)
    tol2 = h.tol * h.tol

    def step(x, rate):
        g = grad(x)
        return x - scale(method, h, rate, g) * g, None

    def checked_step(x, rate, count, last_bad):
        g = grad(x)
        last_bad = jnp.where(norm2(g) >= tol2, count, last_bad)
        return x - scale(method, h, rate, g) * g, last_bad

    def block(carry, xs):
        x, last_bad = carry
        first, block_rates = xs
        x, last_bad = checked_step(x, block_rates[0], first, last_bad)
        if every > 1:
            x, _ = jax.lax.scan(step, x, block_rates[1:], unroll=min(unroll, every - 1))
        return (x, last_bad), None

    # last_bad: the last checked step whose gradient norm was >= tol (-1: none)
    carry = (x0, jnp.full((), -1, jnp.int32))
    firsts = jnp.arange(n_blocks, dtype=jnp.int32) * every
    blocks = table[: n_blocks * every].reshape(n_blocks, every)
    (x, last_bad), _ = jax.lax.scan(block, carry, (firsts, blocks))
    if rest:
        tail = table[n_blocks * every :]
        x, last_bad = checked_step(x, tail[0], jnp.int32(n_blocks * every), last_bad)
        if rest > 1:
            x, _ = jax.lax.scan(step, x, tail[1:], unroll=min(unroll, rest - 1))
    g = grad(x)
    is_settled = norm2(g) < tol2  # False for a NaN
    last_bad = jnp.where(is_settled, last_bad, steps)
    finite = jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(g))
    div = diverged(~finite, beyond(h, jnp.where(finite, x, 0.0)), is_settled)
    converged = is_settled & ~div
    # the first checked step from which every check held: the one after last_bad
    checked_after = jnp.minimum((last_bad // every + 1) * every, steps)
    conv_step = jnp.where(last_bad < 0, 0, checked_after)
    conv_step = jnp.where(converged, conv_step, -1)
    return x, div, converged, conv_step.astype(jnp.int32), finite
