"""Small helpers of e3x's ``ops``: ``inverse_softplus`` and ``evaluate_derivatives``."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._checks import as_inexact, check_int

__all__ = ["inverse_softplus", "evaluate_derivatives"]


def inverse_softplus(x: Float[ArrayLike, "..."]) -> Float[Array, "..."]:
    r"""Inverse of ``softplus(x) = log(1 + exp(x))``: :math:`x + \log(-\mathrm{expm1}(-x))`.

    Useful to initialise a parameter that is passed through ``softplus`` to a chosen positive
    value. Defined for ``x > 0`` (``-inf`` at 0, NaN below, as in e3x).

    Arguments:
        x: Positive values of any shape (numbers and integer arrays are promoted to float).

    Returns:
        Array of ``x``'s shape with ``jax.nn.softplus(inverse_softplus(x)) == x``.

    Examples:
        >>> import jax, jax.numpy as jnp, eqx_mp
        >>> y = eqx_mp.ops.inverse_softplus(jnp.array([0.5, 2.0]))
        >>> bool(jnp.allclose(jax.nn.softplus(y), jnp.array([0.5, 2.0])))
        True
    """
    x = as_inexact(x)
    return x + jnp.log(-jnp.expm1(-x))


def evaluate_derivatives(
    f: Callable[[Array], Array],
    x: ArrayLike,
    max_order: int,
) -> list[Array]:
    r"""``[f(x), f'(x), f''(x), ...]`` up to ``max_order`` by nested forward-mode differentiation.

    Each derivative is the directional derivative along ``ones_like(x)`` of the previous one
    (``jax.jvp``), i.e. the elementwise derivative for elementwise ``f`` (e3x's definition).

    Arguments:
        f: Function of one array argument.
        x: Points at which ``f`` and its derivatives are evaluated (any shape; numbers and
            integer arrays are promoted to float).
        max_order: Highest derivative order, ``>= 0``.

    Returns:
        List of ``max_order + 1`` arrays; entry ``i`` is the ``i``-th derivative at ``x``.

    Raises:
        ValueError: If ``max_order < 0`` (e3x's message).
        TypeError: If ``max_order`` is not an int.

    Examples:
        >>> import jax.numpy as jnp, eqx_mp
        >>> [float(v) for v in eqx_mp.ops.evaluate_derivatives(jnp.exp, jnp.array(0.0), 3)]
        [1.0, 1.0, 1.0, 1.0]
    """
    max_order = check_int(max_order, "max_order", too_small="max_order must be >= 0, received {value}")
    x = as_inexact(x)

    def derivative(g: Callable[[Array], Array]) -> Callable[[Array], Array]:
        return lambda y: jax.jvp(g, (y,), (jnp.ones_like(y),))[1]

    out = [f(x)]
    for _ in range(max_order):
        f = derivative(f)
        out.append(f(x))
    return out
