"""Radial basis functions built from Bernstein polynomials (e3x's ``bernstein``)."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs
from ._variants import mapped_variants

__all__ = ["basic_bernstein", "exponential_bernstein", "reciprocal_bernstein"]


@functools.cache
def _log_binomials(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``v = 0..n`` and ``log(binom(n, v))`` in float64 (numpy: no device work at trace time)."""
    v = np.arange(n + 1)
    binomln = np.array([math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in v])
    return v.astype(np.float64), binomln


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _bernstein(x: Array, num: int) -> Array:
    """The first ``num`` Bernstein polynomials of degree ``num-1`` at ``x`` in ``[0, 1]``.

    Evaluated in log space; exact endpoint values at 0 and 1, and a custom JVP (the usual
    difference of two lower-degree polynomials) so derivatives are finite at the endpoints.
    """
    x = jnp.expand_dims(x, axis=-1)
    if num == 1:
        return jnp.ones_like(x)
    n = num - 1
    v_np, binomln_np = _log_binomials(n)
    v = jnp.asarray(v_np, dtype=x.dtype)
    binomln = jnp.asarray(binomln_np, dtype=x.dtype)
    eps = jnp.finfo(x.dtype).epsneg
    mask0 = x < eps
    mask1 = x > 1 - eps
    mask = jnp.logical_or(mask0, mask1)
    safe_x = jnp.where(mask, 0.5, x)
    y = jnp.where(
        mask, 0, jnp.exp(binomln + v * jnp.log(safe_x) + (n - v) * jnp.log1p(-safe_x))
    )
    y = jnp.where(jnp.logical_and(mask0, v_np == 0), 1, y)
    y = jnp.where(jnp.logical_and(mask1, v_np == n), 1, y)
    return y


@_bernstein.defjvp
def _bernstein_jvp(num: int, primals: Any, tangents: Any) -> tuple[Any, Any]:
    (x,) = primals
    (x_dot,) = tangents
    x_dot = jnp.expand_dims(x_dot, axis=-1)
    primal_out = _bernstein(x, num)
    if num > 1:
        lower = _bernstein(x, num - 1)
        lower = jnp.concatenate([lower, jnp.zeros_like(lower[..., 0:1])], axis=-1)
        shift = jnp.roll(lower, shift=1, axis=-1)
        shift = shift.at[..., 0].set(0)
        tangent_out = x_dot * (num - 1) * (shift - lower)
    else:
        tangent_out = 0 * x_dot
    return primal_out, tangent_out


@typecheck(precheck=e3x_inputs(min_num=1))
def basic_bernstein(x: FloatIn, num: int, limit: Scalar = 1.0) -> Float[Array, "*batch {num}"]:
    r"""Bernstein polynomial basis functions on :math:`[0, l]`.

    .. math::
        b_k(x) = \binom{K-1}{k} (x/l)^k (1-x/l)^{K-1-k}, \quad k = 0 \dots K-1,

    zero outside :math:`[0, l]`, with :math:`K` = ``num`` and :math:`l` = ``limit``.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of basis functions :math:`K` (``>= 1``).
        limit: Upper end :math:`l` of the interval the functions are distributed on.

    Returns:
        Array of shape ``(*batch, num)``.

    Raises:
        ValueError: If ``num < 1``.
        ShapeError: If ``x`` is complex or not numeric.
    """
    return _bernstein(x / limit, num)


reciprocal_bernstein, exponential_bernstein = mapped_variants(
    lambda m, num: _bernstein(1 - m, num), "bernstein", __name__,
    r"Bernstein basis functions of :math:`1 - \mathrm{{{mapping}}}(x)`.",
)
