"""Radial basis functions built from Gaussians (e3x's ``gaussian``)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs
from ._variants import mapped_variants

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


reciprocal_gaussian, exponential_gaussian = mapped_variants(
    lambda m, num: _gaussian(1 - m, num), "gaussian", __name__,
    r"Gaussian basis functions of :math:`1 - \mathrm{{{mapping}}}(x)`.",
)
