r"""Functions mapping the interval :math:`[0,\infty)` to :math:`[0,1)` (e3x's ``mappings``)."""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs

__all__ = ["ReciprocalMapping", "exponential_mapping", "reciprocal_mapping"]

_valid_reciprocal_mappings = ("shifted", "damped", "cuspless")
ReciprocalMapping = Literal["shifted", "damped", "cuspless"]


def check_reciprocal_kind(kind: str) -> None:
    """Raise ``ValueError`` (e3x's message) unless ``kind`` is a valid reciprocal mapping."""
    if kind not in _valid_reciprocal_mappings:
        raise ValueError(f"kind must be in {_valid_reciprocal_mappings}, received '{kind}'")


def _reciprocal_mapping(x: Array, kind: str) -> Array:
    check_reciprocal_kind(kind)
    if kind == "shifted":
        return 1 / (x + 1)
    elif kind == "damped":
        small = x < jnp.finfo(x.dtype).eps
        safe_x = jnp.where(small, 1, x)
        return jnp.where(small, 1 - x / 2 + x * x / 6, -jnp.expm1(-safe_x) / safe_x)
    else:  # cuspless
        return 1 / (x + jnp.exp(-x))


def _exponential_mapping(x: Array, gamma: Scalar, cuspless: bool) -> Array:
    if cuspless:
        x = x + jnp.exp(-x) - 1
    return jnp.exp(-gamma * x)


@typecheck(precheck=e3x_inputs())
def reciprocal_mapping(x: FloatIn, kind: str = "shifted") -> Float[Array, "*batch"]:
    r"""Reciprocal mapping of :math:`[0,\infty)` onto :math:`(0, 1]`.

    ``kind='shifted'``: :math:`1/(x+1)`; ``kind='damped'``: :math:`(1-e^{-x})/x` (``1`` at
    :math:`x=0`, evaluated by a Taylor series for tiny :math:`x`); ``kind='cuspless'``:
    :math:`1/(x+e^{-x})` (like ``'damped'`` but without a cusp at :math:`x=0`).

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        kind: One of ``'shifted'``, ``'damped'``, ``'cuspless'``.

    Returns:
        Array of shape ``*batch`` (same dtype as ``x``).

    Raises:
        ValueError: If ``kind`` is not one of the valid kinds.
        ShapeError: If ``x`` is complex or not numeric.
    """
    return _reciprocal_mapping(x, kind)


@typecheck(precheck=e3x_inputs())
def exponential_mapping(
    x: FloatIn, gamma: Scalar = 1.0, cuspless: bool = False
) -> Float[Array, "*batch"]:
    r"""Exponential mapping :math:`\exp(-\gamma x)` of :math:`[0,\infty)` onto :math:`(0, 1]`.

    With ``cuspless=True`` the mapping is :math:`\exp(-\gamma (x + e^{-x} - 1))`.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        gamma: Exponential decay constant :math:`\gamma` (a number or a 0-d array, may be traced).
        cuspless: If ``True``, the cuspless variant is returned.

    Returns:
        Array of shape ``*batch``.

    Raises:
        ShapeError: If ``x`` is complex or not numeric.
    """
    return _exponential_mapping(x, gamma, cuspless)
