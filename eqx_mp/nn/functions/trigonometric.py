"""Radial basis functions built from trigonometric functions (e3x's ``trigonometric``)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs
from .mappings import _exponential_mapping, _reciprocal_mapping

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


@typecheck(precheck=e3x_inputs(min_num=1))
def reciprocal_fourier(
    x: FloatIn,
    num: int,
    kind: str = "shifted",
    use_reciprocal_weighting: bool = False,
) -> Float[Array, "*batch {num}"]:
    r"""Fourier basis functions of :math:`1 - \mathrm{reciprocal\_mapping}(x)`.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of basis functions (``>= 1``).
        kind: Reciprocal mapping kind: ``'shifted'``, ``'damped'`` or ``'cuspless'``.
        use_reciprocal_weighting: Weight the functions by the reciprocal mapping.

    Returns:
        Array of shape ``(*batch, num)``.

    Raises:
        ValueError: If ``num < 1`` or ``kind`` is invalid.
    """
    mapping = _reciprocal_mapping(x, kind)
    out = _fourier(1 - mapping, num)
    if use_reciprocal_weighting:
        out = out * jnp.expand_dims(mapping, axis=-1)
    return out


@typecheck(precheck=e3x_inputs(min_num=1))
def exponential_fourier(
    x: FloatIn,
    num: int,
    gamma: Scalar = 1.0,
    cuspless: bool = False,
    use_exponential_weighting: bool = False,
) -> Float[Array, "*batch {num}"]:
    r"""Fourier basis functions of :math:`1 - \mathrm{exponential\_mapping}(x)`.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of basis functions (``>= 1``).
        gamma: Decay constant of the exponential mapping (number or 0-d array, may be traced).
        cuspless: Use the cuspless exponential mapping.
        use_exponential_weighting: Weight the functions by the exponential mapping.

    Returns:
        Array of shape ``(*batch, num)``.

    Raises:
        ValueError: If ``num < 1``.
    """
    mapping = _exponential_mapping(x, gamma, cuspless)
    out = _fourier(1 - mapping, num)
    if use_exponential_weighting:
        out = out * jnp.expand_dims(mapping, axis=-1)
    return out
