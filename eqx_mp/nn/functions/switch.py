"""Smooth switch function (e3x's ``switch``): 0 below ``x0``, 1 above ``x1``, C-infinity."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, is_concrete, typecheck
from ._common import e3x_inputs

__all__ = ["smooth_switch"]

_SMOOTH_SWITCH_SLOPE = math.sqrt(3) / 2


def _smooth_switch_exp(x: Array) -> Array:
    return jnp.exp(_SMOOTH_SWITCH_SLOPE * (1 / x - 1 / (1 - x)))


@jax.custom_jvp
def _unit_switch(x: Array) -> Array:
    """Smooth switch from 0 (``x <= 0``) to 1 (``x >= 1``), with a NaN-free custom JVP."""
    eps = jnp.finfo(x.dtype).epsneg
    small = x < eps
    large = x > 1 - eps
    safe_x = jnp.where(jnp.logical_or(small, large), 0.5, x)
    return jnp.where(small, 0, jnp.where(large, 1, 1 / (1 + _smooth_switch_exp(safe_x))))


@_unit_switch.defjvp
def _unit_switch_jvp(primals: Any, tangents: Any) -> tuple[Any, Any]:
    (x,) = primals
    (x_dot,) = tangents
    eps = jnp.finfo(x.dtype).epsneg
    small = x < eps
    large = x > 1 - eps
    small_or_large = jnp.logical_or(small, large)
    safe_x = jnp.where(small_or_large, 0.5, x)
    exp = _smooth_switch_exp(safe_x)
    primal_out = jnp.where(small, 0, jnp.where(large, 1, 1 / (1 + exp)))
    primal_out2 = primal_out * primal_out
    raw_tangent = (
        -_SMOOTH_SWITCH_SLOPE
        * (-1 / safe_x**2 - 1 / (1 - safe_x) ** 2)
        * exp
        * primal_out2
    )
    zero_factors = jnp.logical_or(primal_out2 == 0, exp == 0)
    mask = jnp.logical_or(small_or_large, zero_factors)
    tangent_out = jnp.where(mask, 0, raw_tangent) * x_dot
    return primal_out, tangent_out


def _switch_precheck(x: Any, x0: Any, x1: Any) -> None:
    if is_concrete(x0) and is_concrete(x1) and bool(np.any(np.asarray(x0) >= np.asarray(x1))):
        raise ValueError(f"input x1 must be larger than x0, received x0={x0} and x1={x1}")


@typecheck(precheck=e3x_inputs(_switch_precheck))
def smooth_switch(x: FloatIn, x0: Scalar = 0.0, x1: Scalar = 1.0) -> Float[Array, "*batch"]:
    r"""Smooth (infinitely differentiable) switch from 0 to 1 between ``x0`` and ``x1``.

    With :math:`t = (x - x_0)/(x_1 - x_0)` and :math:`s = \sqrt{3}/2`:

    .. math::
        \mathrm{switch}(x) = \begin{cases} 0 & t \le 0 \\
        1/\left(1 + \exp\!\left(s\,(1/t - 1/(1-t))\right)\right) & 0 < t < 1 \\
        1 & t \ge 1 \end{cases}

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        x0: Where the switch starts to rise from 0.
        x1: Where the switch reaches 1 (must be larger than ``x0``).

    Returns:
        Array of shape ``*batch`` with values in ``[0, 1]``; derivatives are finite everywhere.

    Raises:
        ValueError: If ``x0 >= x1`` (checked when not traced).
    """
    x = x
    if not (is_concrete(x0) and is_concrete(x1) and x0 == 0.0 and x1 == 1.0):
        x = (x - x0) / (x1 - x0)
    return _unit_switch(x)
