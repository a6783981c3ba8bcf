r"""Quadrature rules on the unit sphere (e3x's ``lebedev_quadrature`` and ``delley_quadrature``).

A rule of precision :math:`p` with points :math:`\vec{r}_i` and weights :math:`w_i`
(:math:`\sum_i w_i = 1`) integrates every polynomial of total degree :math:`\le p` exactly:

.. math::
    \int_{S^2} f\, d\Omega = 4\pi \sum_{i=1}^N w_i f(\vec{r}_i).

The tables are the published Lebedev-Laikov and Delley rules, the same float64 values as e3x's
(``eqx_mp/so3/data/quadrature_grids.npz``, written by ``scripts/export_quadrature_grids.py``),
loaded once per process.
"""

from __future__ import annotations

import functools
import warnings
from importlib import resources
from typing import Optional

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["lebedev_quadrature", "delley_quadrature"]

_KINDS = ("Lebedev", "Delley")


@functools.lru_cache(maxsize=None)
def _grids(
    kind: str,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """``(precisions, nums, points, weights)`` of all stored rules of ``kind`` (read-only)."""
    try:
        with resources.files("eqx_mp.so3").joinpath("data/quadrature_grids.npz").open("rb") as f:
            with np.load(f) as data:
                key = kind.lower()
                precision = np.array(data[f"{key}_precision"])
                num = np.array(data[f"{key}_num"])
                r = tuple(np.array(data[f"{key}_r{i}"]) for i in range(precision.size))
                w = tuple(np.array(data[f"{key}_w{i}"]) for i in range(precision.size))
    except (OSError, KeyError, ValueError) as exc:
        raise RuntimeError(
            f"failed to load {kind} quadrature grids included with the eqx_mp.so3 package (data "
            "may be corrupted), consider re-installing the package to fix this problem"
        ) from exc
    for a in (precision, num, *r, *w):
        a.setflags(write=False)
    return precision, num, r, w


def _select(kind: str, precision: Optional[int], num: Optional[int]) -> int:
    """Index of the rule e3x picks: the smallest with at least ``precision``, or the most precise
    with at most ``num`` points (the nearest available one, with a warning, if none qualifies)."""
    if (precision is None) == (num is None):
        raise ValueError(f"Exactly one of {precision=} or {num=} must be specified.")
    precisions, nums, _, _ = _grids(kind)
    if precision is not None:
        if precision > precisions[-1]:
            warnings.warn(
                f"A {kind} rule with precision={precision} is not available, returning {kind} rule "
                f"with highest available precision={int(precisions[-1])} instead.",
                stacklevel=3,
            )
            return precisions.size - 1
        return int(np.argmax(precisions >= max(precision, 0)))
    assert num is not None  # exactly one of the two is given (checked above)
    if num < nums[0]:
        warnings.warn(
            f"A {kind} rule with num={num} points is not available, returning {kind} rule with the "
            f"lowest available number of points num={int(nums[0])} instead.",
            stacklevel=3,
        )
        return 0
    return int(np.nonzero(nums <= max(num, 0))[0][-1])


def _quadrature(
    kind: str, precision: Optional[int], num: Optional[int]
) -> tuple[Float[Array, "num_points 3"], Float[Array, " num_points"]]:
    i = _select(kind, precision, num)
    _, _, r, w = _grids(kind)
    return jnp.asarray(r[i]), jnp.asarray(w[i])


def lebedev_quadrature(
    precision: Optional[int] = None, num: Optional[int] = None
) -> tuple[Float[Array, "num_points 3"], Float[Array, " num_points"]]:
    r"""Lebedev quadrature grid on the unit sphere (e3x's ``so3.lebedev_quadrature``).

    :math:`\int f\,d\Omega \approx 4\pi\sum_i w_i f(\vec{r}_i)`, exact for polynomials of total
    degree :math:`\le p`. Rules exist for precisions 3, 5, ..., 31, 35, 41, ..., 131 (6 to 5810
    points).

    Arguments:
        precision: Minimum precision :math:`p`: the smallest rule with at least this precision is
            returned (the most precise one, with a warning, if none is precise enough). Give
            exactly one of ``precision`` and ``num``.
        num: Maximum number of points: the most precise rule with at most ``num`` points is
            returned (the smallest one, with a warning, if ``num < 6``).

    Returns:
        ``(r, w)``: points ``(num_points, 3)`` (unit vectors) and weights ``(num_points,)`` summing
        to 1, in JAX's default float dtype.

    Raises:
        ValueError: If both or neither of ``precision`` and ``num`` are given (e3x's message).
        RuntimeError: If the stored grids cannot be read.

    Example:
        >>> import jax.numpy as jnp, eqx_mp
        >>> r, w = eqx_mp.so3.lebedev_quadrature(precision=5)
        >>> r.shape, float(4 * jnp.pi * jnp.sum(w * r[:, 2] ** 2))  # integral of z**2 = 4 pi / 3
        ((14, 3), 4.188790...)
    """
    return _quadrature("Lebedev", precision, num)


def delley_quadrature(
    precision: Optional[int] = None, num: Optional[int] = None
) -> tuple[Float[Array, "num_points 3"], Float[Array, " num_points"]]:
    r"""Delley quadrature grid on the unit sphere (e3x's ``so3.delley_quadrature``).

    Delley's rules (B. Delley, J. Comput. Chem. 17, 1152 (1996)) are Lebedev-type rules optimised
    for numerical precision; precisions 5, 7, 11, 17, 23, ..., 101 (14 to 3470 points).

    Arguments:
        precision: Minimum precision :math:`p` (exactly one of ``precision`` and ``num``); see
            :func:`lebedev_quadrature`.
        num: Maximum number of points; see :func:`lebedev_quadrature`.

    Returns:
        ``(r, w)``: points ``(num_points, 3)`` and weights ``(num_points,)`` summing to 1.

    Raises:
        ValueError: If both or neither of ``precision`` and ``num`` are given (e3x's message).
        RuntimeError: If the stored grids cannot be read.

    Example:
        >>> import eqx_mp
        >>> r, w = eqx_mp.so3.delley_quadrature(num=100)
        >>> r.shape
        (50, 3)
    """
    return _quadrature("Delley", precision, num)
