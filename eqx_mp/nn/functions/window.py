"""Window basis functions (e3x's ``window``): ``num`` bumps tiling ``[0, limit]``."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs
from .switch import smooth_switch

__all__ = ["rectangular_window", "smooth_window", "triangular_window"]


def _fractions(n: int, dtype: Any) -> Array:
    """``linspace(0, 1, n)`` as a constant of ``dtype`` (numpy: no device work at trace time)."""
    return jnp.asarray(np.linspace(0.0, 1.0, n), dtype=dtype)


@typecheck(precheck=e3x_inputs(min_num=0))
def rectangular_window(
    x: FloatIn, num: int, limit: Scalar = 1.0
) -> Float[Array, "*batch {num}"]:
    r"""Rectangular windows: :math:`w_k(x) = 1` on :math:`[k l/K, (k+1) l/K]`, else 0.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of windows :math:`K` (``>= 0``; 0 gives an empty basis).
        limit: The windows tile :math:`[0, l]`, :math:`l` = ``limit``.

    Returns:
        Array of shape ``(*batch, num)`` (zero gradient almost everywhere).

    Raises:
        ValueError: If ``num < 0`` (e3x returns an empty basis for negative ``num``).
    """
    x = x
    bound = _fractions(num + 1, x.dtype) * limit
    lower = bound[:-1]
    upper = bound[1:]
    x_1 = jnp.expand_dims(x, -1)
    return jnp.where(
        x_1 < lower,
        jnp.zeros_like(x_1),
        jnp.where(x_1 > upper, jnp.zeros_like(x_1), jnp.ones_like(x_1)),
    )


@typecheck(precheck=e3x_inputs(min_num=1))
def triangular_window(
    x: FloatIn, num: int, limit: Scalar = 1.0
) -> Float[Array, "*batch {num}"]:
    r"""Triangular (hat) windows of half-width :math:`l/K` centred at :math:`k l / K`.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of windows :math:`K` (``>= 1``).
        limit: The windows tile :math:`[0, l]`, :math:`l` = ``limit``.

    Returns:
        Array of shape ``(*batch, num)``.

    Raises:
        ValueError: If ``num < 1``.
    """
    x = x
    width = limit / num
    center = _fractions(num + 1, x.dtype)[:-1] * limit
    lower = center - width
    upper = center + width
    x_1 = jnp.expand_dims(x, -1)
    return jnp.maximum(jnp.minimum((x_1 - lower) / width, -(x_1 - upper) / width), 0)


@typecheck(precheck=e3x_inputs(min_num=0))
def smooth_window(x: FloatIn, num: int, limit: Scalar = 1.0) -> Float[Array, "*batch {num}"]:
    r"""Smooth windows built from :func:`smooth_switch`; they sum to one on :math:`[l/K, l]`.

    .. math::
        w_k(x) = \mathrm{switch}(t_k + 1) - \mathrm{switch}(t_k), \quad
        t_k = \frac{K}{l}\left(x - \frac{k l}{K}\right).

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of windows :math:`K` (``>= 0``; 0 gives an empty basis).
        limit: The windows tile :math:`[0, l]`, :math:`l` = ``limit``.

    Returns:
        Array of shape ``(*batch, num)``; infinitely differentiable.

    Raises:
        ValueError: If ``num < 0`` (e3x returns an empty basis for negative ``num``).
    """
    x = x
    center = _fractions(num + 1, x.dtype)[:-1] * limit
    x_1 = num / limit * (jnp.expand_dims(x, -1) - center)
    return smooth_switch(x_1 + 1) - smooth_switch(x_1)
