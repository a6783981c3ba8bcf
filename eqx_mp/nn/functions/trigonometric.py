"""Radial basis functions built from trigonometric functions (e3x's ``trigonometric``)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs
from ._variants import mapped_variants

__all__ = ["basic_fourier", "exponential_fourier", "reciprocal_fourier", "sinc"]


@typecheck(precheck=e3x_inputs(min_num=0))
def sinc(x: FloatIn, num: int, limit: Scalar = 1.0) -> Float[Array, "*batch {num}"]:
    r"""Sinc basis functions :math:`\mathrm{sinc}(k x / l) = \sin(\pi k x/l)/(\pi k x/l)`.

    For :math:`k = 1 \dots K`; zero for :math:`x > l` (the functions vanish at :math:`x = l`).

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of basis functions :math:`K` (``>= 0``; 0 gives an empty basis, as in e3x).
        limit: Cutoff :math:`l` beyond which all functions are zero.

    Returns:
        Array of shape ``(*batch, num)``.

    Raises:
        ValueError: If ``num < 0`` (e3x returns an empty basis for negative ``num``).
    """
    x = jnp.expand_dims(x / limit, axis=-1)
    return jnp.where(x <= 1.0, jnp.sinc(jnp.asarray(np.arange(1, num + 1), dtype=x.dtype) * x), 0)


def _fourier(x: Array, num: int) -> Array:
    """``cos(pi k x)`` for ``k = 0 .. num-1``."""
    frequency = jnp.asarray(np.pi * np.arange(0, num), dtype=x.dtype)
    return jnp.cos(frequency * jnp.expand_dims(x, axis=-1))


@typecheck(precheck=e3x_inputs(min_num=1))
def basic_fourier(x: FloatIn, num: int, limit: Scalar = 1.0) -> Float[Array, "*batch {num}"]:
    r"""Fourier (cosine) basis functions :math:`\cos(\pi k x / l)`, :math:`k = 0 \dots K-1`.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of basis functions :math:`K` (``>= 1``).
        limit: Period scale :math:`l`.

    Returns:
        Array of shape ``(*batch, num)``.

    Raises:
        ValueError: If ``num < 1``.
    """
    return _fourier(x / limit, num)


reciprocal_fourier, exponential_fourier = mapped_variants(
    lambda m, num: _fourier(1 - m, num), "fourier", __name__,
    r"Fourier basis functions of :math:`1 - \mathrm{{{mapping}}}(x)`.",
)
