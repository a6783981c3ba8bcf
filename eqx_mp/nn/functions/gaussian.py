"""Radial basis functions built from Gaussians (e3x's ``gaussian``)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs
from .mappings import _exponential_mapping, _reciprocal_mapping

__all__ = ["basic_gaussian", "exponential_gaussian", "reciprocal_gaussian"]


def _gaussian(x: Array, num: int) -> Array:
    """``num`` Gaussians with centres evenly spaced on [0, 1], width ``1/sqrt(2 num)(num-1)``."""
    mu = jnp.asarray(np.linspace(0.0, 1.0, num), dtype=x.dtype)
    gamma = jnp.asarray(np.sqrt(2 * num) * (num - 1), dtype=x.dtype)
    x = jnp.expand_dims(x, axis=-1)
    return jnp.exp(-gamma * (x - mu) ** 2)


@typecheck(precheck=e3x_inputs(min_num=1))
def basic_gaussian(x: FloatIn, num: int, limit: Scalar = 1.0) -> Float[Array, "*batch {num}"]:
    r"""Gaussian basis functions with centres evenly spaced on :math:`[0, l]`.

    .. math::
        g_k(x) = \exp\!\left(-\gamma (x/l - \mu_k)^2\right), \quad
        \mu_k = \frac{k}{K-1}, \quad \gamma = \sqrt{2K}\,(K-1).

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of basis functions :math:`K` (``>= 1``).
        limit: Upper end :math:`l` of the interval the centres are spread over.

    Returns:
        Array of shape ``(*batch, num)``.

    Raises:
        ValueError: If ``num < 1``.
    """
    return _gaussian(x / limit, num)


@typecheck(precheck=e3x_inputs(min_num=1))
def reciprocal_gaussian(
    x: FloatIn,
    num: int,
    kind: str = "shifted",
    use_reciprocal_weighting: bool = False,
) -> Float[Array, "*batch {num}"]:
    r"""Gaussian basis functions of :math:`1 - \mathrm{reciprocal\_mapping}(x)`.

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
    out = _gaussian(1 - mapping, num)
    if use_reciprocal_weighting:
        out = out * jnp.expand_dims(mapping, axis=-1)
    return out


@typecheck(precheck=e3x_inputs(min_num=1))
def exponential_gaussian(
    x: FloatIn,
    num: int,
    gamma: Scalar = 1.0,
    cuspless: bool = False,
    use_exponential_weighting: bool = False,
) -> Float[Array, "*batch {num}"]:
    r"""Gaussian basis functions of :math:`1 - \mathrm{exponential\_mapping}(x)`.

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
    out = _gaussian(1 - mapping, num)
    if use_exponential_weighting:
        out = out * jnp.expand_dims(mapping, axis=-1)
    return out
