"""Overflow-safe norms and normalisation with finite derivatives of every order at zero (e3x's
``ops.norm``, ``ops.normalize`` and ``ops.normalize_and_return_norm``).

``jnp.linalg.norm`` has an infinite derivative at the zero vector (``x / |x|``), so a padded pair
with ``r = 0`` turns a force or a gradient into NaN. Here the norm is a ``jax.custom_jvp`` whose
tangent rule divides by the norm only where it is positive (and by 1 elsewhere); differentiating
that rule again only ever meets the same guarded division, so derivatives of every order are
finite, and equal to e3x's, at ``x = 0``. Normalisation divides by the norm only where
``norm**2 > finfo.tiny`` and leaves smaller vectors as they are.
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Union

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._checks import as_inexact

__all__ = ["norm", "normalize", "normalize_and_return_norm"]

Axis = Optional[Union[int, tuple[int, ...]]]


def _axes(axis: Axis, ndim: int) -> Axis:
    """Normalise ``axis`` to a hashable value (``None``, an int or a tuple of ints)."""
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return tuple(int(a) for a in axis)
    return int(axis)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _norm(x: Array, axis: Axis, keepdims: bool) -> Array:
    # Scale by the largest magnitude of each reduced group (e3x scales by the largest magnitude of
    # the whole array): the values agree to rounding, but one huge entry elsewhere in the batch
    # cannot underflow the norms of small vectors.
    # Groups that are all zero are scaled by 1, not by e3x's floor finfo.tiny: XLA may rewrite
    # (x / a)**2 as x**2 / a**2, and tiny**2 underflows to 0, giving 0 / 0 = NaN under jit.
    a = jnp.max(jnp.abs(x), axis=axis, keepdims=True)
    a = jnp.where(a > 0, a, 1)
    b = x / a
    out = a * jnp.sqrt(jnp.sum(b * b, axis=axis, keepdims=True))
    if keepdims:
        return out
    return jnp.squeeze(out, axis=tuple(range(x.ndim)) if axis is None else axis)


@_norm.defjvp
def _norm_jvp(axis: Axis, keepdims: bool, primals: Any, tangents: Any) -> tuple[Array, Array]:
    (x,), (x_dot,) = primals, tangents
    out = _norm(x, axis, keepdims)
    masked = jnp.where(out > 0, out, 1)
    if not keepdims and axis is not None:
        masked = jnp.expand_dims(masked, axis)
    return out, jnp.sum(x_dot * x / masked, axis=axis, keepdims=keepdims)


def norm(
    x: Float[ArrayLike, "*input_shape"],
    axis: Axis = None,
    keepdims: bool = False,
) -> Float[Array, "*reduced_shape"]:
    r"""L2 norm of ``x`` along ``axis``, overflow-safe, with finite derivatives at zero.

    Same values as ``jnp.linalg.norm(x, axis=axis, keepdims=keepdims)`` (and e3x's
    ``ops.norm``), but very large entries do not overflow and very small ones do not underflow
    (each reduced group is scaled by its largest magnitude first). The derivative is
    :math:`x / \lVert x\rVert` where the norm is positive and 0 where it is 0; derivatives of
    every order are finite and equal to e3x's.

    Arguments:
        x: Input array of any shape (a Python number or integer array is promoted to JAX's
            default float).
        axis: Axis or axes to reduce (negative counts from the end); ``None`` (default) takes
            the norm of all entries as one vector.
        keepdims: If ``True``, reduced axes are kept with size 1.

    Returns:
        Array of ``x``'s shape without the reduced axes (with size-1 axes if ``keepdims``); a
        scalar for ``axis=None, keepdims=False``.

    Example:
        >>> import jax, jax.numpy as jnp, eqx_mp
        >>> eqx_mp.ops.norm(jnp.array([[3.0, 4.0], [0.0, 0.0]]), axis=-1)
        Array([5., 0.], dtype=float32)
        >>> jax.grad(lambda v: eqx_mp.ops.norm(v))(jnp.zeros(3))
        Array([0., 0., 0.], dtype=float32)
    """
    x = as_inexact(x)
    return _norm(x, _axes(axis, x.ndim), bool(keepdims))


def normalize_and_return_norm(
    x: Float[ArrayLike, "..."],
    axis: Axis = None,
    keepdims: bool = False,
) -> tuple[Float[Array, "..."], Float[Array, "..."]]:
    r"""Normalise ``x`` by its L2 norm along ``axis`` and also return the norm (e3x's name).

    Groups whose squared norm is at most ``finfo(x.dtype).tiny`` are returned unchanged
    (normalising them is numerically meaningless); derivatives of every order stay finite there.

    Arguments:
        x: Input array of any shape (numbers and integer arrays are promoted to float).
        axis: Axis or axes of the norm (``None``: all entries).
        keepdims: Whether the returned norm keeps the reduced axes with size 1.

    Returns:
        ``(x / norm, norm)``: the first with ``x``'s shape, the second shaped as
        :func:`norm` with the same ``axis`` and ``keepdims``.

    Example:
        >>> import jax.numpy as jnp, eqx_mp
        >>> u, n = eqx_mp.ops.normalize_and_return_norm(jnp.array([[3.0, 4.0]]), axis=-1)
        >>> u, n
        (Array([[0.6, 0.8]], dtype=float32), Array([5.], dtype=float32))
    """
    x = as_inexact(x)
    axis = _axes(axis, x.ndim)
    n = _norm(x, axis, True)
    y = x / jnp.where(n * n > jnp.finfo(x.dtype).tiny, n, 1)
    if not keepdims:
        n = jnp.squeeze(n, axis=tuple(range(x.ndim)) if axis is None else axis)
    return y, n


def normalize(x: Float[ArrayLike, "..."], axis: Axis = None) -> Float[Array, "..."]:
    r"""``x`` divided by its L2 norm along ``axis`` (e3x's ``ops.normalize``).

    Groups with squared norm at most ``finfo.tiny`` (e.g. zero vectors) are returned unchanged;
    derivatives of every order are finite everywhere.

    Arguments:
        x: Input array of any shape (numbers and integer arrays are promoted to float).
        axis: Axis or axes of the norm (``None``: all entries as one vector).

    Returns:
        Array with ``x``'s shape.

    Example:
        >>> import jax.numpy as jnp, eqx_mp
        >>> eqx_mp.ops.normalize(jnp.array([[0.0, 2.0], [0.0, 0.0]]), axis=-1)
        Array([[0., 1.],
               [0., 0.]], dtype=float32)
    """
    y, _ = normalize_and_return_norm(x, axis=axis, keepdims=True)
    return y
