"""Gathers, indexed reductions and pairwise index lists for dense and sparse neighbour lists.

Two index formats, as in e3x:

* **dense**: ``adj_idx`` of shape ``(..., N, M)``: entry ``[i, k]`` is the ``k``-th neighbour of
  ``i``. Padding entries hold ``N`` (any index ``>= N``) and are excluded by ``where``
  (default ``adj_idx < N`` in MessagePass).
* **sparse**: ``dst_idx``/``src_idx`` of shape ``(..., E)``: pair ``e`` sends from ``src_idx[e]`` to
  ``dst_idx[e]``. Padding pairs hold ``dst_idx == num_segments``; they are dropped by the sum.

Index ranges: gather indices must lie in ``[0, N]`` and sparse ``dst_idx`` in
``[0, num_segments]`` (the top value marks padding). Concrete (eager) indices outside these ranges
raise ``ValueError`` naming the argument, the offending value and the valid range. Under ``jit``
they cannot be checked: gathers then clamp the index into ``[0, N-1]`` (so padded pairs read a
real row that is then masked or dropped, which keeps values and gradients finite) and sparse
reductions drop pairs whose ``dst_idx`` is outside ``[0, num_segments)``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Integer

from .._checks import (
    AnyArray,
    ShapeError,
    check_array,
    check_index_range,
    check_int,
    check_num_segments,
    determine_index_type,
)

__all__ = [
    "gather_src",
    "gather_dst",
    "indexed_sum",
    "indexed_min",
    "indexed_max",
    "indexed_softmax",
    "dense_pairwise_indices",
    "sparse_pairwise_indices",
    "dense_to_sparse_indices",
    "sparse_to_dense_indices",
]


def _gather(inputs: jax.Array, idx: jax.Array, nbatch: int, name: str, check: bool = False) -> jax.Array:
    """``inputs[b..., idx[b..., ...]]`` for ``nbatch`` shared leading (batch) axes; clamped.

    With ``check``, concrete indices must lie in ``[0, N]`` (``N = inputs.shape[nbatch]``).
    """
    check_array(inputs, "inputs", dtype=None)
    if inputs.ndim < nbatch + 1:
        raise ShapeError(
            f"inputs ({inputs.ndim} dimensions) must have at least {nbatch + 1} dimensions for "
            f"gathering with idx of shape {idx.shape} ({name})"
        )
    if idx.shape[:nbatch] != inputs.shape[:nbatch]:
        raise ShapeError(
            f"{name} with shape {idx.shape} is incompatible for gathering from inputs with shape "
            f"{inputs.shape}: batch axes {idx.shape[:nbatch]} != {inputs.shape[:nbatch]}"
        )
    if check:
        n = inputs.shape[nbatch]
        check_index_range(idx, name, n, f"gathering from inputs of shape {tuple(inputs.shape)}, N={n}")
    take = lambda x, i: jnp.take(x, i, axis=0, mode="clip")  # noqa: E731
    for _ in range(nbatch):
        take = jax.vmap(take)
    return take(inputs, idx)


def gather_src(
    inputs: AnyArray, *, adj_idx: Integer[AnyArray, "... N M"] | None = None,
    src_idx: Integer[AnyArray, "... E"] | None = None, **_: Any,
) -> Array:
    """Gather from the sources of a dense or sparse index list.

    Arguments:
        inputs: ``(..., N, *rest)``.
        adj_idx: Dense ``(..., N, M)`` adjacency indices, or ``None``.
        src_idx: Sparse ``(..., E)`` source indices, or ``None``.

    Returns:
        ``(..., N, M, *rest)`` (dense) or ``(..., E, *rest)`` (sparse).

    Raises:
        RuntimeError: If neither or both index formats are given.
        ShapeError: If ``inputs`` is not an array, the indices are not integer arrays, or their
            batch axes do not match those of ``inputs``.
        ValueError: If concrete indices are outside ``[0, N]`` (under ``jit`` they are clamped).
    """
    return _gather_src(inputs, adj_idx, src_idx, check=True)


def _gather_src(inputs: Any, adj_idx: Any, src_idx: Any, check: bool) -> jax.Array:
    kind = determine_index_type(adj_idx=adj_idx, src_idx=src_idx)
    if kind == "dense":
        return _gather(inputs, adj_idx, adj_idx.ndim - 2, "adj_idx", check)
    return _gather(inputs, src_idx, src_idx.ndim - 1, "src_idx", check)


def gather_dst(
    inputs: AnyArray, *, adj_idx: Integer[AnyArray, "... N M"] | None = None,
    dst_idx: Integer[AnyArray, "... E"] | None = None, **_: Any,
) -> Array:
    """Gather from the destinations of a dense or sparse index list.

    Arguments:
        inputs: ``(..., N, *rest)``.
        adj_idx: Dense ``(..., N, M)`` adjacency indices, or ``None``.
        dst_idx: Sparse ``(..., E)`` destination indices, or ``None``.

    Returns:
        ``(..., N, 1, *rest)`` (dense: broadcastable over neighbours) or ``(..., E, *rest)``.

    Raises:
        RuntimeError: If neither or both index formats are given.
        ShapeError: If ``inputs`` is not an array or the shapes are incompatible.
        ValueError: If concrete ``dst_idx`` are outside ``[0, N]`` (under ``jit`` they are clamped).
    """
    check_array(inputs, "inputs", dtype=None)
    kind = determine_index_type(adj_idx=adj_idx, dst_idx=dst_idx)
    inputs = jnp.asarray(inputs)
    if kind == "dense":
        assert adj_idx is not None  # determine_index_type: "dense" means adj_idx is given
        if inputs.ndim < adj_idx.ndim - 1 or inputs.shape[: adj_idx.ndim - 1] != adj_idx.shape[:-1]:
            raise ShapeError(
                f"adj_idx with shape {adj_idx.shape} is incompatible with inputs of shape "
                f"{inputs.shape}: inputs must start with adj_idx's leading axes {adj_idx.shape[:-1]}"
            )
        return jnp.expand_dims(inputs, axis=adj_idx.ndim - 1)
    assert dst_idx is not None  # determine_index_type: "sparse" means dst_idx is given
    return _gather(inputs, jnp.asarray(dst_idx), dst_idx.ndim - 1, "dst_idx", check=True)


def _indexed_reduce(
    mode: str, inputs: AnyArray, keepdims: bool | None, adj_idx: Any, where: Any,
    dst_idx: Any, num_segments: Any, indices_are_sorted: bool, check: bool = True,
) -> jax.Array:
    check_array(inputs, "inputs", dtype=None)
    kind = determine_index_type(adj_idx=adj_idx, dst_idx=dst_idx)
    if jnp.issubdtype(inputs.dtype, jnp.integer):
        info: Any = jnp.iinfo
    elif jnp.issubdtype(inputs.dtype, jnp.floating):
        info = jnp.finfo
    else:
        raise TypeError(f"inputs must be floating point or integer dtype, received {inputs.dtype}")
    if kind == "dense":
        if where is None:
            raise TypeError("for dense indices, 'where' is a required argument, received None")
        if inputs.ndim < adj_idx.ndim:
            raise ShapeError(
                f"inputs ({inputs.ndim} dimensions) must have at least as many dimensions as "
                f"adj_idx ({adj_idx.ndim} dimensions)"
            )
        if adj_idx.shape != inputs.shape[: adj_idx.ndim]:
            raise ShapeError(
                f"adj_idx and inputs have incompatible shapes. adj_idx {adj_idx.shape}, inputs "
                f"{inputs.shape}: inputs must start with adj_idx's shape"
            )
        check_array(where, "where", dtype=None)
        if tuple(where.shape) != tuple(adj_idx.shape):
            raise ShapeError(f"where {where.shape} must have the shape of adj_idx {adj_idx.shape}")
        if where.dtype != jnp.bool_:
            raise ShapeError(f"where must be a boolean array, got dtype {where.dtype}")
        w = jnp.reshape(where, adj_idx.shape + (1,) * (inputs.ndim - adj_idx.ndim))
        axis = adj_idx.ndim - 1
        if mode == "sum":
            return jnp.sum(inputs, axis=axis, where=w, keepdims=bool(keepdims))
        if mode == "min":
            return jnp.min(inputs, axis=axis, where=w, keepdims=bool(keepdims), initial=info(inputs.dtype).max)
        return jnp.max(inputs, axis=axis, where=w, keepdims=bool(keepdims), initial=info(inputs.dtype).min)
    if num_segments is None:
        raise TypeError("for sparse indices, 'num_segments' is a required argument, received None")
    num_segments = check_num_segments(num_segments)
    if inputs.ndim < dst_idx.ndim:
        raise ShapeError(
            f"inputs ({inputs.ndim} dimensions) must have at least as many dimensions as dst_idx "
            f"({dst_idx.ndim} dimensions)"
        )
    if dst_idx.shape != inputs.shape[: dst_idx.ndim]:
        raise ShapeError(f"dst_idx and inputs have incompatible shapes {dst_idx.shape} and {inputs.shape}")
    if check:
        check_index_range(dst_idx, "dst_idx", num_segments, f"num_segments={num_segments}")
    reduce = {"sum": jax.ops.segment_sum, "min": jax.ops.segment_min, "max": jax.ops.segment_max}[mode]
    fn = functools.partial(reduce, num_segments=num_segments, indices_are_sorted=bool(indices_are_sorted))
    for _ in range(dst_idx.ndim - 1):
        fn = jax.vmap(fn)
    out = fn(inputs, dst_idx)
    if keepdims:
        out = _gather(out, dst_idx, dst_idx.ndim - 1, "dst_idx")
    return out


def _make_reduce(mode: str, doc_verb: str):
    def reduce(
        inputs: AnyArray,
        keepdims: bool | None = None,
        *,
        adj_idx: Integer[AnyArray, "... N M"] | None = None,
        where: Bool[AnyArray, "... N M"] | None = None,
        dst_idx: Integer[AnyArray, "... E"] | None = None,
        num_segments: int | None = None,
        indices_are_sorted: bool = False,
        **_: Any,
    ) -> Array:
        return _indexed_reduce(mode, inputs, keepdims, adj_idx, where, dst_idx, num_segments,
                               indices_are_sorted)

    reduce.__name__ = reduce.__qualname__ = f"indexed_{mode}"
    reduce.__doc__ = f"""{doc_verb} over ``inputs`` according to a dense or sparse index list.

    Arguments:
        inputs: ``(..., N, M, *rest)`` (dense) or ``(..., E, *rest)`` (sparse), float or integer.
        keepdims: Keep the reduced axis (dense: size 1) or return per-pair values (sparse), so the
            result broadcasts against ``inputs``.
        adj_idx: Dense adjacency indices ``(..., N, M)``.
        where: Dense mask ``(..., N, M)`` of entries to include (required for dense lists).
        dst_idx: Sparse destination indices ``(..., E)`` in ``[0, num_segments]``
            (``num_segments`` marks padding, which is dropped). Concrete indices outside that
            range raise ``ValueError``; under ``jit`` they are dropped.
        num_segments: Number of outputs, a non-negative int (required for sparse lists).
        indices_are_sorted: Whether ``dst_idx`` is sorted (may be faster).

    Returns:
        ``(..., N, *rest)``.

    Raises:
        RuntimeError: If neither or both index formats are given.
        TypeError: If ``inputs`` is not float/integer or a required argument is missing.
        ShapeError: If indices and inputs have incompatible shapes, or ``where`` is not boolean.
        ValueError: If ``num_segments`` is not a non-negative int or concrete ``dst_idx`` are
            outside ``[0, num_segments]``.
    """
    return reduce


indexed_sum = _make_reduce("sum", "Sum")
indexed_min = _make_reduce("min", "Minimum")
indexed_max = _make_reduce("max", "Maximum")


def indexed_softmax(
    inputs: Array,
    multiplicative_mask: Array | None = None,
    *,
    adj_idx: Integer[Array, "... N M"] | None = None,
    where: Bool[Array, "... N M"] | None = None,
    dst_idx: Integer[Array, "... E"] | None = None,
    num_segments: int | None = None,
    indices_are_sorted: bool = False,
    **_: Any,
) -> Array:
    """Softmax of ``inputs`` over each neighbourhood (e3x's ``indexed_softmax``).

    ``exp(x - max) * mask / sum(exp(x - max) * mask)`` over the entries of each destination (the
    maximum is held constant, as in e3x). Entries that take no part (``where`` is ``False``, or a
    sparse ``dst_idx`` outside ``[0, num_segments)``) get 0, and a neighbourhood whose masked
    exponentials sum to 0 (e.g. every neighbour beyond a smooth cutoff) gets 0 instead of e3x's
    ``0/0 = NaN``; values and derivatives are finite everywhere.

    Arguments:
        inputs: ``(..., N, M)`` (dense) or ``(..., E)`` (sparse) floats; more trailing axes are
            treated independently.
        multiplicative_mask: Optional array of ``inputs``' shape multiplied with the exponentials
            before normalisation (e.g. a smooth cutoff).
        adj_idx, where, dst_idx, num_segments, indices_are_sorted: As in :func:`indexed_sum`.

    Returns:
        Array of ``inputs``' shape.

    Raises:
        ShapeError: If the mask's shape differs from ``inputs``' or ``inputs`` is not floating point
            (e3x's messages; a ``ValueError``).
    """
    check_array(inputs, "inputs", dtype=None)
    if multiplicative_mask is not None and multiplicative_mask.shape != inputs.shape:
        raise ShapeError(
            f"multiplicative_mask and inputs have incompatible shapes {multiplicative_mask.shape} and {inputs.shape}"
        )
    if not jnp.issubdtype(inputs.dtype, jnp.floating):
        raise ShapeError(f"inputs must be floating point dtype, received {inputs.dtype}")
    kw: dict[str, Any] = dict(adj_idx=adj_idx, where=where, dst_idx=dst_idx,
                              num_segments=num_segments, indices_are_sorted=indices_are_sorted)
    maximum = indexed_max(inputs, keepdims=True, **kw)
    if adj_idx is not None:
        take = jnp.ones(inputs.shape, bool) if where is None else where
        take = jnp.reshape(take, take.shape + (1,) * (inputs.ndim - take.ndim))
    else:
        assert dst_idx is not None and num_segments is not None  # indexed_max checked them
        take = (dst_idx >= 0) & (dst_idx < num_segments)
        take = jnp.reshape(take, take.shape + (1,) * (inputs.ndim - take.ndim))
    shifted = jnp.where(take, inputs - jax.lax.stop_gradient(jnp.where(take, maximum, 0)), 0)
    numerator = jnp.where(take, jnp.exp(shifted), 0)
    if multiplicative_mask is not None:
        numerator = numerator * multiplicative_mask
    denominator = indexed_sum(numerator, keepdims=True, **kw)
    return numerator / jnp.where(denominator != 0, denominator, 1)


def dense_pairwise_indices(num: int, mask_self: bool = True) -> Integer[Array, "num M"]:
    """Dense index list of all pairs of ``num`` elements.

    Arguments:
        num: Number of elements (``>= 1``).
        mask_self: Whether to leave out self-pairs ``(i, i)``.

    Returns:
        ``(num, num - 1)`` (``mask_self``) or ``(num, num)`` int array.
    """
    num = check_int(num, "num", too_small="num must be larger than 0, received {value}", minimum=1)
    adj = np.tile(np.arange(num), num)
    if mask_self:
        adj = np.delete(adj, slice(0, num * num, num + 1))
    return jnp.asarray(adj.reshape(num, -1))


def sparse_pairwise_indices(num: int, mask_self: bool = True) -> tuple[Integer[Array, " E"], Integer[Array, " E"]]:
    """Sparse index list ``(dst_idx, src_idx)`` of all pairs of ``num`` elements.

    Arguments:
        num: Number of elements (``>= 1``).
        mask_self: Whether to leave out self-pairs.

    Returns:
        Two int arrays of length ``num * (num - 1)`` (``mask_self``) or ``num ** 2``.
    """
    num = check_int(num, "num", too_small="num must be larger than 0, received {value}", minimum=1)
    dst = np.repeat(np.arange(num), num)
    src = np.tile(np.arange(num), num)
    if mask_self:
        keep = dst != src
        dst, src = dst[keep], src[keep]
    return jnp.asarray(dst), jnp.asarray(src)


def dense_to_sparse_indices(adj_idx: Integer[Array, "... N M"], pad_idx: int | None = None) -> tuple[Array, Array]:
    """Convert a dense index list to ``(dst_idx, src_idx)`` (concrete arrays only, not under jit).

    Arguments:
        adj_idx: ``(..., N, M)`` adjacency indices.
        pad_idx: Indices ``>= pad_idx`` are padding (default: none is padding).

    Returns:
        ``(dst_idx, src_idx)`` of shape ``(..., E)``, batches padded with ``pad_idx``.
    """
    adj = np.asarray(adj_idx)
    if adj.ndim < 2:
        raise ShapeError(f"adj_idx must have at least two dimensions, got shape {adj.shape}")
    if adj.size == 0:
        empty = np.zeros(adj.shape[:-2] + (0,), adj.dtype)
        return jnp.asarray(empty), jnp.asarray(empty)
    pad = int(adj.max()) + 1 if pad_idx is None else int(pad_idx)
    flat = adj.reshape((-1,) + adj.shape[-2:])
    dsts, srcs = [], []
    for b in range(len(flat)):
        i, k = np.nonzero(flat[b] < pad)
        dsts.append(i.astype(adj.dtype))
        srcs.append(flat[b][i, k])
    size = max(len(d) for d in dsts)
    dst = np.stack([np.pad(d, (0, size - len(d)), constant_values=pad) for d in dsts])
    src = np.stack([np.pad(s, (0, size - len(s)), constant_values=pad) for s in srcs])
    return jnp.asarray(dst.reshape(adj.shape[:-2] + (size,))), jnp.asarray(src.reshape(adj.shape[:-2] + (size,)))


def sparse_to_dense_indices(
    dst_idx: Integer[Array, "... E"], src_idx: Integer[Array, "... E"], pad_idx: int | None = None
) -> Integer[Array, "... N M"]:
    """Convert ``(dst_idx, src_idx)`` to a dense index list (concrete arrays only, not under jit).

    Arguments:
        dst_idx: ``(..., E)`` destination indices.
        src_idx: ``(..., E)`` source indices.
        pad_idx: Indices ``>= pad_idx`` are padding (default ``max(dst_idx) + 1``); it is also
            the number of rows ``N`` and the fill value.

    Returns:
        ``(..., N, M)`` adjacency indices.
    """
    dst, src = np.asarray(dst_idx), np.asarray(src_idx)
    if dst.shape != src.shape:
        raise ShapeError(f"dst_idx and src_idx have incompatible shapes {dst.shape} and {src.shape}")
    if dst.size == 0:
        return jnp.asarray(np.zeros(dst.shape[:-1] + (0, 0), dst.dtype))
    pad = int(dst.max()) + 1 if pad_idx is None else int(pad_idx)
    fd, fs = dst.reshape(-1, dst.shape[-1]), src.reshape(-1, src.shape[-1])
    counts = np.stack([np.bincount(d[d < pad], minlength=pad)[:pad] for d in fd])
    m = int(counts.max()) if counts.size else 0
    adj = np.full((fd.shape[0], pad, m), pad, dtype=dst.dtype)
    for b in range(fd.shape[0]):
        for i in range(pad):
            sel = fs[b][fd[b] == i]
            adj[b, i, : len(sel)] = sel
    return jnp.asarray(adj.reshape(dst.shape[:-1] + (pad, m)))
