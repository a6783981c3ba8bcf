"""Utilities for transforming features of layout ``... P (L+1)**2 F`` (e3x's ``features``).

``P`` (axis -3) is 1 when the features hold only tensors of parity :math:`(-1)^l` ("no
pseudotensors"), or 2 when axis 0 holds parity :math:`(-1)^l` and axis 1 the other parity.

As in e3x, the functions accept JAX or NumPy arrays of any real dtype (integer features keep their
dtype), and layout errors carry e3x's wording, followed by the argument and axis.
"""

from __future__ import annotations

import functools
from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Real

from .._checks import AnyArray, ShapeError, check_int, degree_from_size, infer_max_degree, typecheck

__all__ = [
    "add",
    "change_max_degree_or_type",
    "even_degree_mask",
    "odd_degree_mask",
    "reflect",
    "rotate",
]


@functools.cache
def _even_mask_np(max_degree: int) -> np.ndarray:
    """numpy ``((L+1)**2, 1)`` bool mask of even degrees (a constant, also under ``jit``)."""
    degrees = np.arange(max_degree + 1)
    mask = np.repeat(degrees % 2 == 0, 2 * degrees + 1)[:, None]
    mask.setflags(write=False)
    return mask


@typecheck
def even_degree_mask(max_degree: int) -> Bool[Array, "({max_degree}+1)**2 1"]:
    """Boolean mask over the degree axis that keeps only even degrees ``l``.

    Arguments:
        max_degree: Maximum degree ``L >= 0``.

    Returns:
        Boolean array of shape ``((L+1)**2, 1)``: ``True`` where the entry has even degree, so
        ``jnp.where(mask, x, 0)`` broadcasts against ``x`` of shape ``... P (L+1)**2 F``.

    Raises:
        ValueError: If ``max_degree < 0``.
    """
    check_int(max_degree, "max_degree")
    return jnp.asarray(_even_mask_np(max_degree))


@typecheck
def odd_degree_mask(max_degree: int) -> Bool[Array, "({max_degree}+1)**2 1"]:
    """Boolean mask over the degree axis that keeps only odd degrees ``l``.

    Arguments:
        max_degree: Maximum degree ``L >= 0``.

    Returns:
        Boolean array of shape ``((L+1)**2, 1)`` (the negation of :func:`even_degree_mask`).

    Raises:
        ValueError: If ``max_degree < 0``.
    """
    check_int(max_degree, "max_degree")
    return jnp.asarray(~_even_mask_np(max_degree))


def _features_precheck(x: Any, *args: Any, **kwargs: Any) -> None:
    infer_max_degree(x, "x")


def _rotate_precheck(x: Any, wigner_d_matrix: Any) -> None:
    max_degree = infer_max_degree(x, "x")
    if not hasattr(wigner_d_matrix, "shape") or not hasattr(wigner_d_matrix, "dtype"):
        raise ShapeError(
            f"wigner_d_matrix must be an array, got {type(wigner_d_matrix).__name__}"
        )
    dim = (max_degree + 1) ** 2
    if wigner_d_matrix.ndim < 2 or tuple(wigner_d_matrix.shape[-2:]) != (dim, dim):
        raise ShapeError(
            f"expected shape (..., {dim}, {dim}) for Wigner-D matrix, received shape "
            f"{tuple(wigner_d_matrix.shape)} (wigner_d_matrix for features x of max degree "
            f"{max_degree})"
        )
    if wigner_d_matrix.ndim > 2 and tuple(x.shape[:-3]) != tuple(wigner_d_matrix.shape[:-2]):
        raise ShapeError(
            f"x and wigner_d_matrix have incompatible shapes {tuple(x.shape)} and "
            f"{tuple(wigner_d_matrix.shape)} (batch axes {tuple(x.shape[:-3])} and "
            f"{tuple(wigner_d_matrix.shape[:-2])} must be equal, or pass one 2-dimensional matrix)"
        )


@typecheck(precheck=_rotate_precheck)
def rotate(
    x: Real[AnyArray, "*batch P D F"],
    wigner_d_matrix: Real[AnyArray, "*dbatch D D"],
) -> Real[Array, "*batch P D F"]:
    """Rotate features with a Wigner-D matrix (or one matrix per batch entry).

    Computes ``x'[..., s, m, f] = sum_l x[..., s, l, f] * D[..., l, m]``, the convention of
    :func:`eqx_mp.so3.wigner_d` / e3x: if ``D = wigner_d(R)`` then rotating the input vectors of a
    model by ``R`` rotates its equivariant features by ``rotate(features, D)``.

    Arguments:
        x: Features of shape ``(*batch, P, (L+1)**2, F)``, ``P`` 1 or 2.
        wigner_d_matrix: Shape ``((L+1)**2, (L+1)**2)``, or ``(*batch, (L+1)**2, (L+1)**2)``.

    Returns:
        Rotated features, same shape as ``x``.

    Raises:
        ShapeError: If ``x`` has a wrong layout, or the matrix does not fit ``x``.
    """
    x, wigner_d_matrix = jnp.asarray(x), jnp.asarray(wigner_d_matrix)
    if wigner_d_matrix.ndim == 2:
        return jnp.einsum("...slf,lm->...smf", x, wigner_d_matrix)
    return jnp.einsum("...slf,...lm->...smf", x, wigner_d_matrix)


@typecheck(precheck=_features_precheck)
def reflect(x: Real[AnyArray, "*batch P D F"]) -> Real[Array, "*batch P D F"]:
    """Reflect (invert through the origin) features into their mirror image.

    With pseudotensors (``P = 2``) the whole parity-odd channel (axis -3 index 1) changes sign;
    without (``P = 1``) the odd degrees change sign.

    Arguments:
        x: Features of shape ``(*batch, P, (L+1)**2, F)``, ``P`` 1 or 2.

    Returns:
        Reflected features, same shape as ``x``.

    Raises:
        ShapeError: If ``x`` does not have the layout ``... P (L+1)**2 F``.
    """
    x = jnp.asarray(x)
    max_degree = degree_from_size(x.shape[-2], "x")
    if x.shape[-3] == 2:
        sign = np.array([1.0, -1.0])[:, None, None]
    else:
        sign = np.where(_even_mask_np(max_degree), 1.0, -1.0)[None]
    return x * jnp.asarray(sign, dtype=x.dtype)


def _change_precheck(x: Any, max_degree: Any, include_pseudotensors: Any) -> None:
    infer_max_degree(x, "x")
    if max_degree is not None:
        check_int(max_degree, "max_degree")


@typecheck(precheck=_change_precheck)
def change_max_degree_or_type(
    x: Real[AnyArray, "*batch P D F"],
    max_degree: int | None = None,
    include_pseudotensors: bool | None = None,
) -> Real[Array, "*batch _ _ F"]:
    """Change the maximum degree (truncate / zero-pad) and/or the type (with/without pseudotensors).

    Removing pseudotensors keeps, for every degree ``l``, the channel of parity :math:`(-1)^l`.
    Adding them places the input in that channel and zeros in the other.

    Arguments:
        x: Features of shape ``(*batch, P, (L+1)**2, F)``, ``P`` 1 or 2.
        max_degree: New maximum degree (``None``: keep ``L``).
        include_pseudotensors: ``True`` for output ``P = 2``, ``False`` for ``P = 1``
            (``None``: keep the input's type).

    Returns:
        Features of shape ``(*batch, P', (max_degree+1)**2, F)``.

    Raises:
        ShapeError: If ``x`` does not have the layout ``... P (L+1)**2 F``.
        ValueError: If ``max_degree < 0``.
    """
    x = jnp.asarray(x)
    in_max_degree = degree_from_size(x.shape[-2], "x")
    input_has_pseudotensors = x.shape[-3] != 1
    max_degree = in_max_degree if max_degree is None else int(max_degree)
    include_pseudotensors = (
        input_has_pseudotensors if include_pseudotensors is None else bool(include_pseudotensors)
    )
    if max_degree < in_max_degree:
        x = x[..., : (max_degree + 1) ** 2, :]
    elif max_degree > in_max_degree:
        pad_with = [(0, 0)] * x.ndim
        pad_with[-2] = (0, (max_degree + 1) ** 2 - (in_max_degree + 1) ** 2)
        x = jnp.pad(x, pad_with, mode="constant", constant_values=0)
    if input_has_pseudotensors and not include_pseudotensors:
        x = jnp.concatenate(
            [x[..., l % 2 : l % 2 + 1, l**2 : (l + 1) ** 2, :] for l in range(max_degree + 1)],
            axis=-2,
        )
    elif include_pseudotensors and not input_has_pseudotensors:
        even = _even_mask_np(max_degree)  # ((L+1)**2, 1)
        even_part = jnp.where(even, x, 0)
        odd_part = jnp.where(~even, x, 0)
        x = jnp.concatenate((even_part, odd_part), axis=-3)
    return x


def _add_precheck(*inputs: Any) -> None:
    """e3x's checks of ``add`` in e3x's order (batch, features, dtype, then layout) and wording."""
    if len(inputs) == 0:
        raise ValueError("add needs at least one input")
    for i, x in enumerate(inputs):
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise ShapeError(f"inputs[{i}] must be a JAX/NumPy array, got {type(x).__name__}")
    first = inputs[0]
    if first.ndim < 3:
        raise ShapeError(
            "all inputs must be at least three-dimensional, received inputs with shape "
            f"{tuple(first.shape)} ({first.ndim} dimensions) at position 0 (layout "
            "'... P (L+1)**2 F')"
        )
    batch_shape = tuple(first.shape[:-3])
    features = first.shape[-1]
    dtype = first.dtype
    for i, x in enumerate(inputs):
        if tuple(x.shape[:-3]) != batch_shape:
            raise ShapeError(
                f"all inputs must have the same leading dimensions (batch shape), received "
                f"input with leading dimensions {tuple(x.shape[:-3])} at position {i}, "
                f"expected {batch_shape}"
            )
        if x.shape[-1] != features:
            raise ShapeError(
                f"all inputs must have the same number of features, received input with "
                f"{x.shape[-1]} features at position {i}, expected {features} features"
            )
        if x.dtype != dtype:
            raise ShapeError(
                f"all inputs must have the same dtype, received input with dtype={x.dtype} at "
                f"position {i}, expected dtype={dtype}"
            )
        try:
            infer_max_degree(x, f"inputs[{i}]")
        except ShapeError as exc:
            raise ShapeError(
                f"input at position {i} has invalid shape {tuple(x.shape)}: {exc}") from exc


@typecheck(precheck=_add_precheck)
def add(*inputs: Real[AnyArray, "*batch _ _ F"]) -> Real[Array, "*batch _ _ F"]:
    """Add features of possibly different max degree and type.

    Every input is first brought to the largest max degree among the inputs and to the type
    "with pseudotensors" if any input has them (see :func:`change_max_degree_or_type`), then
    all are summed.

    Arguments:
        *inputs: One or more feature arrays of shape ``(*batch, P_i, (L_i+1)**2, F)``, with the
            same ``*batch``, ``F`` and dtype.

    Returns:
        Array of shape ``(*batch, max_i P_i, (max_i L_i + 1)**2, F)``.

    Raises:
        ShapeError: If an input has a wrong layout, or the batch shapes, feature counts or
            dtypes differ (the message names the position).
    """
    inputs = tuple(jnp.asarray(x) for x in inputs)
    max_degree = max(degree_from_size(x.shape[-2], "x") for x in inputs)
    has_pseudotensors = any(x.shape[-3] == 2 for x in inputs)
    y = change_max_degree_or_type(
        inputs[0], max_degree=max_degree, include_pseudotensors=has_pseudotensors
    )
    for x in inputs[1:]:
        y = y + change_max_degree_or_type(
            x, max_degree=max_degree, include_pseudotensors=has_pseudotensors
        )
    return y
