"""Cutoff functions (e3x's ``cutoff``): 1 at the origin, 0 from ``cutoff`` on."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, is_concrete, typecheck
from ._common import e3x_inputs

__all__ = ["cosine_cutoff", "smooth_cutoff"]


def _cutoff_precheck(x: Any, cutoff: Any) -> None:
    if is_concrete(cutoff) and not bool(np.all(np.asarray(cutoff) > 0.0)):
        raise ValueError(f"cutoff must be larger than 0, received {cutoff}")


@typecheck(precheck=e3x_inputs(_cutoff_precheck))
def smooth_cutoff(x: FloatIn, cutoff: Scalar = 1.0) -> Float[Array, "*batch"]:
    r"""Infinitely differentiable cutoff :math:`\exp(1 - 1/(1 - (x/c)^2))` for :math:`x < c`, else 0.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float),
            usually distances.
        cutoff: Cutoff :math:`c > 0` (number or 0-d array; checked when not traced).

    Returns:
        Array of shape ``*batch`` with values in ``[0, 1]`` (1 at 0, 0 for ``x >= cutoff``);
        all derivatives are finite and vanish at ``x = cutoff``.

    Raises:
        ValueError: If ``cutoff <= 0``.
    """
    x = x / cutoff
    inside_cutoff = x < 1
    safe_x = jnp.where(inside_cutoff, x, 0)
    return jnp.where(inside_cutoff, jnp.exp(1 - 1 / (1 - safe_x * safe_x)), 0)


@typecheck(precheck=e3x_inputs(_cutoff_precheck))
def cosine_cutoff(x: FloatIn, cutoff: Scalar = 1.0) -> Float[Array, "*batch"]:
    r"""Cosine cutoff :math:`\frac12 \cos(\pi x / c) + \frac12` for :math:`x < c`, else 0.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float),
            usually distances.
        cutoff: Cutoff :math:`c > 0` (number or 0-d array; checked when not traced).

    Returns:
        Array of shape ``*batch`` with values in ``[0, 1]``.

    Raises:
        ValueError: If ``cutoff <= 0``.
    """
    x = x / cutoff
    return jnp.where(x < 1, 0.5 * jnp.cos(jnp.pi * x) + 0.5, 0)
