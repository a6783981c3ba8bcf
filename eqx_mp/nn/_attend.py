"""The attention computation on the fused contraction engine (see :mod:`eqx_mp.nn.attention`).

Three engine programs run block by block over the pairs (:mod:`._cg`):
the logits (a pair-weight derivative of the engine's trilinear form), the indexed softmax (per
pair and head), and the value messages (``MessagePass``'s fused gather / filter / tensor product /
pair weights / segment sum, or a plain weighted sum without the positional encoding of the
values). Nothing of size ``pairs x heads x (L+1)**2 x F`` is materialised, and derivatives of
every order run on the same engine.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..ops.indexed import indexed_softmax
from ._attention import AttentionBase
from ._cg import FlatGraph, flat_graph, message_pass, pair_logits, weighted_sum
from ._common import promote_dtype
from .features import change_max_degree_or_type


def attend(
    m: AttentionBase, inputs_q: Any, inputs_kv: Any, basis: Any, cutoff_value: Any,
    adj_idx: Any, where: Any, dst_idx: Any, src_idx: Any, num_segments: Any,
    indices_are_sorted: bool,
) -> jax.Array:
    """Attend from ``inputs_q`` to ``inputs_kv`` (arguments already checked by ``check_call``).

    Returns:
        ``(..., N, out_parity, (max_degree+1)**2, out_features)``.
    """
    f = m.qkv_features
    batch = inputs_q.shape[:-4]
    n_q, n_kv = inputs_q.shape[-4], inputs_kv.shape[-4]
    kind = "dense" if adj_idx is not None else "sparse"
    segments = n_q if kind == "dense" or num_segments is None else int(num_segments)
    include = m.qk_parity == 2
    q_in = change_max_degree_or_type(inputs_q, max_degree=m.qk_max_degree,
                                     include_pseudotensors=include)
    k_in = change_max_degree_or_type(inputs_kv, max_degree=m.qk_max_degree,
                                     include_pseudotensors=include)
    query, keys, value = m.query._apply(q_in), m.key._apply(k_in), m.value._apply(inputs_kv)
    depth = m.qk_parity * (m.qk_max_degree + 1) ** 2 * (f // m.num_heads)
    query = query / jnp.sqrt(depth).astype(query.dtype)
    fg = flat_graph(n_kv, segments, batch, adj_idx=adj_idx, where=where, dst_idx=dst_idx,
                    src_idx=src_idx, indices_are_sorted=indices_are_sorted)
    out_shape = batch + (segments, m.out_parity, (m.max_degree + 1) ** 2, f)
    if fg.graph.num_pairs == 0 or n_kv == 0 or segments == 0:
        return m.out._apply(jnp.zeros(out_shape, value.dtype))
    logits = _logits(m, query, keys, basis, fg, segments)
    # Softmax over each destination's neighbours, one head at a time (heads on the last axis).
    softmax_where = None if kind == "sparse" else (
        adj_idx < n_kv if where is None else where & (adj_idx < n_kv))
    mask = None if cutoff_value is None else jnp.broadcast_to(
        jnp.asarray(cutoff_value, logits.dtype)[..., None], logits.shape)
    weight = indexed_softmax(
        logits, mask, adj_idx=adj_idx, where=softmax_where, dst_idx=dst_idx,
        num_segments=None if kind == "dense" else segments, indices_are_sorted=indices_are_sorted,
    )
    h, e = m.num_heads, fg.graph.num_pairs
    weight = jnp.repeat(weight.reshape(e, h), f // h, axis=-1)  # (E, F): e3x's head expansion
    out = _values(m, value, basis, weight, fg)
    return m.out._apply(out.reshape(out_shape))


def _logits(
    m: AttentionBase, query: Any, keys: Any, basis: Any, fg: FlatGraph, segments: int
) -> jax.Array:
    """Per pair and head: the relative-position-weighted query-key products, ``pair_shape + (H,)``."""
    f, h = m.qkv_features, m.num_heads
    e = fg.graph.num_pairs
    nb = int(np.prod(fg.batch, dtype=np.int64))
    ql, kl = m.qk_parity * (m.qk_max_degree + 1), m.qk_parity * (m.qk_max_degree + 1) ** 2
    if m.relative_positional_encoding is not None:
        b0 = jnp.reshape(basis[..., :1, :1, :], (e, 1, 1, m.num_basis))
        r = m.relative_positional_encoding._apply(b0).reshape(e, ql, f)
    else:
        r = jnp.ones((e, ql, f), query.dtype)
    query, keys, r = promote_dtype(query, keys, r)
    logits = pair_logits(r, keys.reshape(-1, kl, f), query.reshape(nb * segments, kl, f),
                         fg, m.qk_parity, m.qk_max_degree)
    return jnp.sum(logits.reshape(e, f // h, h), axis=1).reshape(fg.pair_shape + (h,))


def _values(m: AttentionBase, value: Any, basis: Any, weight: Any, fg: FlatGraph) -> jax.Array:
    """The attention-weighted value messages per destination, ``(N', P, (L+1)**2, F)`` flat."""
    f = m.qkv_features
    nb = int(np.prod(fg.batch, dtype=np.int64))
    x_flat = (nb * value.shape[-4], -1, f)
    if m.message_pass is None:
        value, weight = promote_dtype(value, weight, dtype=m.dtype)
        return weighted_sum(weight, value.reshape(x_flat), fg)
    mp = m.message_pass
    x, b, kernel, bias, k, weight = promote_dtype(
        value, basis, mp.filter.kernel[0], mp.filter.bias, mp.tensor.path_kernel(), weight,
        dtype=m.dtype,
    )
    e = fg.graph.num_pairs
    return message_pass(
        mp.tensor.coupling_table(), mp.basis_max_degree, x.reshape(x_flat),
        jnp.transpose(b.reshape(e, (mp.basis_max_degree + 1) ** 2, mp.num_basis), (1, 0, 2)),
        kernel, bias, k, weight[:, None, :], fg, precision=mp.filter.precision,
    )
