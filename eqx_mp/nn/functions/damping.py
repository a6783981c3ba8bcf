"""Smooth damping function (e3x's ``damping``)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs

__all__ = ["smooth_damping"]


@typecheck(precheck=e3x_inputs())
def smooth_damping(x: FloatIn, gamma: Scalar = 1.0) -> Float[Array, "*batch"]:
    r"""Smooth damping :math:`\exp\!\left(-e^{-\gamma x} / (1 - e^{-\gamma x})\right)`.

    0 (with all derivatives) at :math:`x = 0`, tends to 1 for large :math:`x`. Used by
    :func:`~eqx_mp.nn.basis` to damp the non-scalar basis functions near the origin.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float),
            usually distances ``>= 0``.
        gamma: Decay constant :math:`\gamma` (number or 0-d array, may be traced).

    Returns:
        Array of shape ``*batch``; gradients are finite at ``x = 0``.
    """
    x = x
    exp = jnp.exp(-gamma * x)
    div = 1 - exp
    mask = div * div > 0
    return jnp.where(mask, jnp.exp(-exp / jnp.where(mask, div, 1)), 0)
