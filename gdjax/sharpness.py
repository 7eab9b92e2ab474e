"""Sharpness: the top eigenvalue of a loss's Hessian, from Hessian-vector
products, and the rate above which gradient descent cannot stay at it.

Gradient descent with rate ``lr`` on a quadratic of curvature ``a``
converges only when ``lr * a < 2``; with heavy-ball momentum ``beta`` (optax's
and PyTorch's SGD: ``v <- g + beta v``, ``p <- p - lr v``) when ``lr * a < 2 +
2 beta``; with Nesterov momentum when ``lr * a < (2 + 2 beta) / (1 + 2
beta)``. Cohen et al. (ICLR 2021, "Gradient descent on neural networks
typically occurs at the edge of stability") found that full-batch training
raises the loss's sharpness (the top eigenvalue of its Hessian) until it
reaches that limit and then hovers there: "the edge of stability".

* :func:`hvp` is a Hessian-vector product (forward over reverse: about two
  gradients' cost, the Hessian never formed);
* :func:`top_eigenvalue` runs Lanczos with full reorthogonalisation on it
  (pure, jitted by the caller, vmappable over a population's parameters) and
  returns a :class:`Sharpness`: the top (algebraically largest) eigenvalue
  and its residual ``|H v - lambda v|``;
* :func:`stability_limit` gives the sharpness limit of an optimizer at a
  rate (None for adaptive optimizers, whose limit is on a preconditioned
  Hessian);
* :func:`edge` summarises one model's sharpness per epoch against its limit:
  how close it came, when, and for how many epochs it sat at the edge.

:func:`gdjax.train.train` tracks the LeNet's sharpness once per epoch on a
fixed batch when ``TrainConfig.sharpness`` is set (``gdjax lenet
--sharpness``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

from gdjax import _registry

__all__ = [
    "EDGE",
    "Edge",
    "Sharpness",
    "edge",
    "edge_ratio",
    "edges",
    "verdict",
    "hvp",
    "stability_limit",
    "top_eigenvalue",
]

_ADAPTIVE = frozenset(name for name, r in _registry.OPTIMIZERS.items() if r.adaptive)
"""Optimizers whose step is preconditioned: the 2/lr limit does not apply to
the plain Hessian's top eigenvalue."""


class Sharpness(NamedTuple):
    """The top eigenvalue of a Hessian, as Lanczos found it.

    Attributes:
        value: the top (algebraically largest) Ritz value.
        residual: Lanczos' bound on ``|H v - value v|`` for its unit Ritz
            vector ``v``: the eigenvalue is within about this much of a true
            one (0 when the Krylov space closed).
    """

    value: Float[Array, "..."]
    residual: Float[Array, "..."]


def hvp(loss: Callable[[Any], Array], params: Any, vector: Any) -> Any:
    """``H @ vector`` for the Hessian ``H`` of ``loss`` at ``params``
    (PyTrees of the same structure), by forward-over-reverse differentiation."""
    return jax.jvp(jax.grad(loss), (params,), (vector,))[1]


def top_eigenvalue(
    loss: Callable[[Any], Array],
    params: Any,
    *,
    iters: int = 20,
    key: Array | None = None,
) -> Sharpness:
    """The top eigenvalue of ``loss``'s Hessian at ``params``, by ``iters``
    steps of Lanczos (full reorthogonalisation) on Hessian-vector products.

    Pure: jit it with the loss closed over, and vmap it over a population's
    parameters. The start vector comes from ``key`` (default ``key(0)``), so
    the same parameters always give the same number (a resumed run repeats
    it). Lanczos finds the extreme eigenvalues of a symmetric matrix much
    faster than power iteration, and the algebraically largest one (power
    iteration finds the largest in magnitude, a negative one early in
    training).

    Args:
        loss: ``params -> scalar``.
        params: where the Hessian is taken (any PyTree of float arrays).
        iters: Krylov steps (Hessian-vector products); capped at the number
            of parameters. 20 resolve a well-separated top eigenvalue of a
            network to a fraction of a percent.
        key: the start vector's random key.

    Returns:
        A :class:`Sharpness`.
    """
    flat, unravel = ravel_pytree(params)
    n, dtype = flat.shape[0], flat.dtype
    k = int(max(1, min(iters, n)))
    key = jax.random.key(0) if key is None else key
    v0 = jax.random.normal(key, (n,), dtype)
    v0 = v0 / jnp.linalg.norm(v0)

    def matvec(v):
        return ravel_pytree(hvp(loss, params, unravel(v)))[0]

    basis = jnp.zeros((k + 1, n), dtype).at[0].set(v0)
    alpha = jnp.zeros((k,), dtype)
    beta = jnp.zeros((k,), dtype)
    tiny = jnp.finfo(dtype).eps

    def body(j, carry):
        basis, alpha, beta, open_ = carry
        v = basis[j]
        w = matvec(v)
        a = jnp.vdot(v, w)
        # full reorthogonalisation, twice (rows past j are zero)
        w = w - basis.T @ (basis @ w)
        w = w - basis.T @ (basis @ w)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(jnp.abs(a), jnp.linalg.norm(alpha, jnp.inf))
        still = open_ & (b > tiny * 64 * jnp.maximum(scale, 1.0))
        # after a breakdown (the Krylov space closed), the rest of T copies
        # alpha_0, a Rayleigh quotient: it cannot raise the top eigenvalue
        alpha = alpha.at[j].set(jnp.where(open_, a, alpha[0]))
        beta = beta.at[j].set(jnp.where(still, b, 0.0))
        nxt = jnp.where(still, w / jnp.where(still, b, 1.0), 0.0)
        basis = basis.at[j + 1].set(nxt)
        return basis, alpha, beta, still

    basis, alpha, beta, _ = jax.lax.fori_loop(0, k, body, (basis, alpha, beta, jnp.array(True)))
    tri = jnp.diag(alpha) + jnp.diag(beta[:-1], 1) + jnp.diag(beta[:-1], -1)
    evals, evecs = jnp.linalg.eigh(tri)
    return Sharpness(evals[-1], jnp.abs(beta[-1] * evecs[-1, -1]))


def stability_limit(
    optimizer: str, lr: Any, settings: Mapping[str, float] | None = None
) -> np.ndarray | None:
    """The sharpness above which the optimizer at rate ``lr`` cannot converge
    (on a quadratic of that curvature): ``2 / lr`` for plain gradient
    descent, ``(2 + 2 beta) / lr`` with heavy-ball momentum ``beta``,
    ``(2 + 2 beta) / (lr (1 + 2 beta))`` with Nesterov's; None for adaptive
    optimizers (``adaptive`` in the registry), whose limit applies to a preconditioned
    Hessian.

    Args:
        optimizer: a name of :data:`gdjax._registry.OPTIMIZERS` (``"sgd"``,
            ``"nesterov"``, ``"adam"``, ...); optimizers with no known limit
            (Lion) give None, as adaptive ones do.
        lr: the rate (any array shape).
        settings: the optimizer's float settings (``momentum``).
    """
    if optimizer not in _registry.OPTIMIZERS:
        raise ValueError(
            f"no stability limit known for optimizer {optimizer!r}; gdjax knows "
            f"{', '.join(_registry.OPTIMIZERS)}"
        )
    return _registry.OPTIMIZERS[optimizer].limit(lr, settings)


def edge_ratio(sharpness: Any, optimizer: str, lr: Any, settings=None) -> np.ndarray | None:
    """Sharpness over its stability limit (1: at the edge of stability; above
    1, gradient descent on a quadratic that sharp would diverge); None where
    no limit applies."""
    limit = stability_limit(optimizer, lr, settings)
    if limit is None:
        return None
    # no limit at a rate of 0 (a warmup's first epoch): NaN, not 0
    return np.where(np.isfinite(limit), np.asarray(sharpness, np.float64) / limit, np.nan)


EDGE = (0.9, 1.1)
"""A model sits at the edge of stability in an epoch when its sharpness is
within these shares of its stability limit (Cohen et al.'s full-batch runs
hover at 1 to 1.1 of it). Minibatch training can sit below (its noise) or,
measured on a fixed batch, above it."""


class Edge(NamedTuple):
    """One model's sharpness against its stability limit over its epochs.

    Attributes:
        ratio: sharpness / limit per epoch (NaN where not measured or diverged).
        final: the last measured epoch's ratio.
        peak: the largest ratio; ``peak_epoch`` its epoch (1-based).
        median: the median ratio over the measured epochs (about 1 for a
            model that hovers at the edge).
        first_edge: the first epoch that reached the edge (ratio at least
            the lower end of :data:`EDGE`), or None.
        edge_epochs: how many epochs were at the edge (within :data:`EDGE`);
        above_epochs: how many above it; ``measured``: of how many.
    """

    ratio: np.ndarray
    final: float | None
    peak: float | None
    peak_epoch: int | None
    median: float | None
    first_edge: int | None
    edge_epochs: int
    above_epochs: int
    measured: int


def edge(sharpness: Any, lr: Any, optimizer: str, settings=None) -> Edge | None:
    """:class:`Edge` of one model from its sharpness and rate per epoch (1-D
    arrays; NaN where not measured); None for an adaptive optimizer."""
    ratio = edge_ratio(sharpness, optimizer, lr, settings)
    if ratio is None:
        return None
    ratio = np.asarray(ratio, np.float64).reshape(-1)
    ok = np.flatnonzero(np.isfinite(ratio))
    if not len(ok):
        return Edge(ratio, None, None, None, None, None, 0, 0, 0)
    reached = ok[ratio[ok] >= EDGE[0]]
    above = ok[ratio[ok] > EDGE[1]]
    peak = ok[np.argmax(ratio[ok])]
    return Edge(
        ratio=ratio,
        final=float(ratio[ok[-1]]),
        peak=float(ratio[peak]),
        peak_epoch=int(peak) + 1,
        median=float(np.median(ratio[ok])),
        first_edge=int(reached[0]) + 1 if len(reached) else None,
        edge_epochs=len(reached) - len(above),
        above_epochs=len(above),
        measured=len(ok),
    )


def edges(result) -> list[Edge | None]:
    """:func:`edge` of every model of a :class:`gdjax.train.RunResult`
    (None for a model whose sharpness was not tracked or whose optimizer is
    adaptive)."""
    out = []
    for m, config in enumerate(result.configs):
        if not config.sharpness:
            out.append(None)
            continue
        metrics = result.metrics
        out.append(
            edge(metrics.sharpness[m], metrics.lr[m], config.optimizer, dict(config.settings))
        )
    return out


def verdict(e: Edge | None) -> str:
    """One model's :class:`Edge` in words."""
    if e is None:
        return "no stability limit (adaptive optimizer) or not tracked"
    if e.peak is None:
        return "not measured (diverged)"
    if e.first_edge is None:
        return (
            f"stays below the edge: at most {e.peak:.2f} of its limit (epoch {e.peak_epoch}), "
            f"{e.final:.2f} at the end"
        )
    return (
        f"reaches the edge at epoch {e.first_edge}; of {e.measured} epochs, {e.edge_epochs} at "
        f"the edge ({EDGE[0]:g}-{EDGE[1]:g} of its limit) and {e.above_epochs} above it (peak "
        f"{e.peak:.2f} at epoch {e.peak_epoch}); median {e.median:.2f}, {e.final:.2f} at the end"
    )
