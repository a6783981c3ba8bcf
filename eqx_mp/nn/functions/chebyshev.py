"""Radial basis functions built from Chebyshev polynomials (e3x's ``chebyshev``)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs
from ._variants import mapped_variants

__all__ = ["basic_chebyshev", "exponential_chebyshev", "reciprocal_chebyshev"]


def _chebyshev(x: Array, num: int) -> Array:
    """The first ``num`` Chebyshev polynomials :math:`T_n(x) = \\cos(n \\arccos x)` on [-1, 1].

    Near :math:`x = \\pm 1` (where ``arccos`` has infinite derivative) a second-order Taylor
    expansion is used, so values and gradients stay finite.
    """
    x = jnp.expand_dims(x, axis=-1)
    if num == 1:
        return jnp.ones_like(x)
    n_np = np.arange(num)
    n = jnp.asarray(n_np, dtype=x.dtype)
    n2 = jnp.asarray(n_np * n_np, dtype=x.dtype)
    sign = jnp.asarray((-1.0) ** n_np, dtype=x.dtype)
    eps = jnp.finfo(x.dtype).epsneg
    one_minus_eps = 1 - eps
    small = x < -one_minus_eps
    large = x > one_minus_eps
    safe_x = jnp.where(jnp.logical_or(small, large), 0, x)
    xm1 = x - 1
    xp1 = x + 1
    limit_small = sign * (1 - n2 * xp1 + 1 / 6 * n2 * (n2 - 1) * xp1 * xp1)
    limit_large = 1 + n2 * xm1 + 1 / 6 * n2 * (n2 - 1) * xm1 * xm1
    return jnp.where(
        small, limit_small, jnp.where(large, limit_large, jnp.cos(n * jnp.arccos(safe_x)))
    )


@typecheck(precheck=e3x_inputs(min_num=1))
def basic_chebyshev(x: FloatIn, num: int, limit: Scalar = 1.0) -> Float[Array, "*batch {num}"]:
    r"""Chebyshev polynomial basis functions on :math:`[0, l]`.

    .. math::
        c_k(x) = T_k(2x/l - 1), \quad k = 0 \dots K-1,

    continued outside :math:`[0, l]` by the boundary values :math:`(\pm 1)^k` (no jumps).

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of basis functions :math:`K` (``>= 1``).
        limit: Upper end :math:`l` of the interval.

    Returns:
        Array of shape ``(*batch, num)``.

    Raises:
        ValueError: If ``num < 1``.
    """
    x = 2 * x / limit - 1
    x_1 = jnp.expand_dims(x, axis=-1)
    return jnp.where(jnp.abs(x_1) <= 1.0, _chebyshev(x, num), jnp.sign(x_1) ** np.arange(num))


reciprocal_chebyshev, exponential_chebyshev = mapped_variants(
    lambda m, num: _chebyshev(2 * m - 1, num), "chebyshev", __name__,
    r"Chebyshev basis functions :math:`T_k(2\,\mathrm{{{mapping}}}(x) - 1)`.",
)
