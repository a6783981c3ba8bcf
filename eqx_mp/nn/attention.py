r"""Equivariant multi-head attention and self-attention (e3x's ``MultiHeadAttention`` and
``SelfAttention``) on the fused contraction engine.

For every pair ``e = (i <- j)`` of a dense or sparse neighbour list and head ``h``:

.. math::
    s_{eh} = \sum_{p,l,m,c} \frac{q_i[p,lm,c,h]}{\sqrt{d}}\, k_j[p,lm,c,h]\, r_e[p,l,c,h], \qquad
    a_{eh} = \mathrm{softmax}_{j \in \mathcal{N}(i)}(s_{eh}) \text{ (times a cutoff)}, \qquad
    y_i = \mathrm{out}\Big(\sum_{j} a_{e} \cdot \mathrm{tensor}(\mathrm{filter}(b_e), v_j)\Big)

with ``q = Dense(x_q)``, ``k = Dense(x_kv)`` (both brought to the common max degree and parity of
queries and keys), ``v = Dense(x_kv)``, ``r = Linear(b_e[0, 0, :])`` the relative positional
encoding of the logits and ``d`` the number of entries of one head. Features are split into heads
and weights expanded back exactly as e3x does (logits: feature ``c * H + h`` belongs to head ``h``;
values: feature ``h * F/H + c`` is weighted by head ``h``).

Three engine programs run block by block over the pairs (:mod:`._attention_engine`,
:mod:`._cg`): the logits (a pair-weight derivative of the engine's trilinear form), the indexed
softmax (per pair and head), and the value messages (``MessagePass``'s fused gather / filter /
tensor product / pair weights / segment sum, or a plain weighted sum without the positional
encoding of the values). Nothing of size ``pairs x heads x (L+1)**2 x F`` is materialised, and
derivatives of every order run on the same engine.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Integer

from .._checks import (
    AnyArray,
    ShapeError,
    check_index_range,
    check_int,
    check_irreps,
    check_key,
    check_num_segments,
    check_parity,
    determine_index_type,
    typecheck,
)
from ..config import Config
from ..ops.indexed import indexed_softmax
from ._attention_engine import flat_graph, pair_logits, weighted_sum
from ._cg import message_pass
from ._common import count_params, irreps_str, promote_dtype
from .dense import Dense, default_kernel_init
from .features import change_max_degree_or_type
from .message_pass import MessagePass

__all__ = ["MultiHeadAttention", "SelfAttention"]

_zeros = jax.nn.initializers.zeros


class _Attention(eqx.Module):
    """Fields and computation shared by :class:`MultiHeadAttention` and :class:`SelfAttention`."""

    query: Dense
    key: Dense
    value: Dense
    relative_positional_encoding: Optional[Dense]
    message_pass: Optional[MessagePass]
    out: Dense
    q_features: int = eqx.field(static=True)
    kv_features: int = eqx.field(static=True)
    q_max_degree: int = eqx.field(static=True)
    kv_max_degree: int = eqx.field(static=True)
    q_parity: int = eqx.field(static=True)
    kv_parity: int = eqx.field(static=True)
    num_basis: Optional[int] = eqx.field(static=True)
    basis_max_degree: Optional[int] = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)
    qkv_features: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    max_degree: int = eqx.field(static=True)
    out_parity: int = eqx.field(static=True)
    qk_max_degree: int = eqx.field(static=True)
    qk_parity: int = eqx.field(static=True)
    use_basis_bias: bool = eqx.field(static=True)
    include_pseudotensors: bool = eqx.field(static=True)
    cartesian_order: bool = eqx.field(static=True)
    use_fused_tensor: bool = eqx.field(static=True)
    use_relative_positional_encoding_qk: bool = eqx.field(static=True)
    use_relative_positional_encoding_v: bool = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)
    precision: Any = eqx.field(static=True)

    def _build(
        self,
        q_features,
        kv_features,
        q_max_degree,
        kv_max_degree,
        num_basis,
        basis_max_degree,
        *,
        q_parity,
        kv_parity,
        num_heads,
        qkv_features,
        out_features,
        max_degree,
        use_basis_bias,
        include_pseudotensors,
        cartesian_order,
        use_fused_tensor,
        use_relative_positional_encoding_qk,
        use_relative_positional_encoding_v,
        dtype,
        param_dtype,
        precision,
        dense_kernel_init,
        dense_bias_init,
        tensor_kernel_init,
        query_kernel_init,
        query_bias_init,
        query_use_bias,
        key_kernel_init,
        key_bias_init,
        key_use_bias,
        value_kernel_init,
        value_bias_init,
        value_use_bias,
        output_kernel_init,
        output_bias_init,
        output_use_bias,
        key,
        name,
    ) -> None:
        check_key(key, name)
        self.q_features = check_int(q_features, "q_features", minimum=1)
        self.kv_features = check_int(kv_features, "kv_features", minimum=1)
        self.q_max_degree = check_int(q_max_degree, "q_max_degree")
        self.kv_max_degree = check_int(kv_max_degree, "kv_max_degree")
        self.q_parity = check_parity(q_parity, "q_parity")
        self.kv_parity = check_parity(kv_parity, "kv_parity")
        self.num_heads = check_int(num_heads, "num_heads", minimum=1)
        self.qkv_features = (
            self.q_features
            if qkv_features is None
            else check_int(qkv_features, "qkv_features", minimum=1)
        )
        self.out_features = (
            self.q_features
            if out_features is None
            else check_int(out_features, "out_features", minimum=1)
        )
        if self.qkv_features % self.num_heads != 0:
            raise ValueError(
                f"qkv_features ({self.qkv_features}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        self.use_relative_positional_encoding_qk = bool(use_relative_positional_encoding_qk)
        self.use_relative_positional_encoding_v = bool(use_relative_positional_encoding_v)
        needs_basis = (
            self.use_relative_positional_encoding_qk or self.use_relative_positional_encoding_v
        )
        if needs_basis and (num_basis is None or basis_max_degree is None):
            raise TypeError(
                "when using relative positional encodings, 'basis' is a required argument: give "
                f"num_basis and basis_max_degree (received num_basis={num_basis}, "
                f"basis_max_degree={basis_max_degree})"
            )
        self.num_basis = (
            None if num_basis is None else check_int(num_basis, "num_basis", minimum=1)
        )
        self.basis_max_degree = (
            None if basis_max_degree is None else check_int(basis_max_degree, "basis_max_degree")
        )
        self.use_basis_bias = bool(use_basis_bias)
        self.include_pseudotensors = bool(include_pseudotensors)
        self.cartesian_order = bool(cartesian_order)
        self.use_fused_tensor = bool(use_fused_tensor)
        self.dtype = dtype
        self.precision = precision
        self.qk_max_degree = min(self.q_max_degree, self.kv_max_degree)
        self.qk_parity = 2 if self.q_parity == self.kv_parity == 2 else 1
        keys = jax.random.split(key, 6)
        common = dict(dtype=dtype, param_dtype=param_dtype, precision=precision)
        f = self.qkv_features
        self.query = Dense(
            self.q_features,
            f,
            self.qk_max_degree,
            parity=self.qk_parity,
            use_bias=query_use_bias,
            kernel_init=query_kernel_init,
            bias_init=query_bias_init,
            key=keys[0],
            **common,
        )
        self.key = Dense(
            self.kv_features,
            f,
            self.qk_max_degree,
            parity=self.qk_parity,
            use_bias=key_use_bias,
            kernel_init=key_kernel_init,
            bias_init=key_bias_init,
            key=keys[1],
            **common,
        )
        self.value = Dense(
            self.kv_features,
            f,
            self.kv_max_degree,
            parity=self.kv_parity,
            use_bias=value_use_bias,
            kernel_init=value_kernel_init,
            bias_init=value_bias_init,
            key=keys[2],
            **common,
        )
        self.relative_positional_encoding = None
        if self.use_relative_positional_encoding_qk:
            width = self.qk_parity * (self.qk_max_degree + 1) * f
            self.relative_positional_encoding = Dense(
                self.num_basis,
                width,
                0,
                parity=1,
                use_bias=use_basis_bias,
                kernel_init=dense_kernel_init,
                bias_init=dense_bias_init,
                key=keys[3],
                **common,
            )
        self.message_pass = None
        if self.use_relative_positional_encoding_v:
            self.message_pass = MessagePass(
                f,
                self.num_basis,
                self.kv_max_degree,
                self.basis_max_degree,
                in_parity=self.kv_parity,
                max_degree=max_degree,
                use_basis_bias=use_basis_bias,
                include_pseudotensors=include_pseudotensors,
                cartesian_order=cartesian_order,
                use_fused_tensor=use_fused_tensor,
                dense_kernel_init=dense_kernel_init,
                dense_bias_init=dense_bias_init,
                tensor_kernel_init=tensor_kernel_init,
                key=keys[4],
                **common,
            )
            self.max_degree, self.out_parity = (
                self.message_pass.max_degree,
                self.message_pass.out_parity,
            )
        else:  # e3x: without the encoding of the values, the output keeps the values' layout.
            self.max_degree, self.out_parity = self.kv_max_degree, self.kv_parity
        self.out = Dense(
            f,
            self.out_features,
            self.max_degree,
            parity=self.out_parity,
            use_bias=output_use_bias,
            kernel_init=output_kernel_init,
            bias_init=output_bias_init,
            key=keys[5],
            **common,
        )

    # ------------------------------------------------------------------------------------ checks

    def _check_call(
        self,
        inputs_q,
        inputs_kv,
        basis,
        cutoff_value,
        adj_idx,
        where,
        dst_idx,
        src_idx,
        num_segments,
        q_name: str,
        kv_name: str,
    ) -> None:
        name = type(self).__name__
        check_irreps(
            inputs_q,
            q_name,
            parity=self.q_parity,
            max_degree=self.q_max_degree,
            features=self.q_features,
            min_ndim=4,
            what=f"({name}: parity={self.q_parity}, max_degree={self.q_max_degree}, "
            f"features={self.q_features})",
        )
        check_irreps(
            inputs_kv,
            kv_name,
            parity=self.kv_parity,
            max_degree=self.kv_max_degree,
            features=self.kv_features,
            min_ndim=4,
            what=f"({name}: parity={self.kv_parity}, max_degree={self.kv_max_degree}, "
            f"features={self.kv_features})",
        )
        if inputs_q.shape[:-4] != inputs_kv.shape[:-4]:
            raise ShapeError(
                f"inputs_q and inputs_kv have incompatible shapes ({q_name} {inputs_q.shape}, "
                f"{kv_name} {inputs_kv.shape}: the batch axes before N must be equal)"
            )
        needs_basis = (
            self.use_relative_positional_encoding_qk or self.use_relative_positional_encoding_v
        )
        if needs_basis and basis is None:
            raise TypeError(
                "when using relative positional encodings, 'basis' is a required "
                "argument, received basis=None"
            )
        batch, n_q, n_kv = inputs_q.shape[:-4], inputs_q.shape[-4], inputs_kv.shape[-4]
        kind = determine_index_type(adj_idx=adj_idx, dst_idx=dst_idx, src_idx=src_idx)
        if kind == "dense":
            if tuple(adj_idx.shape[:-1]) != batch + (n_q,):
                raise ShapeError(
                    f"adj_idx has shape {adj_idx.shape}, expected {batch + (n_q,)} + (M,) "
                    f"(the batch axes and N of {q_name})"
                )
            if where is not None and (
                tuple(where.shape) != tuple(adj_idx.shape) or where.dtype != jnp.bool_
            ):
                raise ShapeError(
                    f"where must be a boolean array of adj_idx's shape {adj_idx.shape}, got "
                    f"{where.dtype} {where.shape}"
                )
            check_index_range(adj_idx, "adj_idx", n_kv, f"N={n_kv} key/value inputs")
            segments = n_q
        else:
            if dst_idx is None or src_idx is None:
                missing = "dst_idx" if dst_idx is None else "src_idx"
                raise ValueError(
                    f"sparse attention needs both dst_idx and src_idx; {missing} is None"
                )
            if where is not None:
                raise ValueError("'where' is only used with dense index lists (adj_idx)")
            if tuple(src_idx.shape[:-1]) != batch:
                raise ShapeError(
                    f"src_idx has shape {src_idx.shape}; its batch axes must equal those of "
                    f"the inputs {batch}"
                )
            segments = n_q if num_segments is None else check_num_segments(num_segments)
            check_index_range(src_idx, "src_idx", n_kv, f"N={n_kv} key/value inputs")
            check_index_range(dst_idx, "dst_idx", segments, f"num_segments={segments}")
        pair_shape = tuple((adj_idx if kind == "dense" else src_idx).shape)
        if basis is not None:
            check_irreps(
                basis,
                "basis",
                parity=1,
                max_degree=self.basis_max_degree,
                features=self.num_basis,
                min_ndim=4,
                what=f"({name}: basis_max_degree={self.basis_max_degree}, "
                f"num_basis={self.num_basis})",
            )
            if tuple(basis.shape[:-3]) != pair_shape:
                raise ShapeError(
                    f"basis has shape {basis.shape}; its leading axes {basis.shape[:-3]} must "
                    f"equal the shape of the index list {pair_shape} (one entry per pair)"
                )
        if cutoff_value is not None:
            if not hasattr(cutoff_value, "shape") or tuple(cutoff_value.shape) != pair_shape:
                raise ShapeError(
                    f"cutoff_value must have the shape of the index list {pair_shape} (one "
                    f"value per pair), got {getattr(cutoff_value, 'shape', cutoff_value)}"
                )

    # ----------------------------------------------------------------------------------- compute

    def _attend(
        self,
        inputs_q,
        inputs_kv,
        basis,
        cutoff_value,
        adj_idx,
        where,
        dst_idx,
        src_idx,
        num_segments,
        indices_are_sorted,
    ) -> jax.Array:
        """The computation (arguments already checked by :meth:`_check_call`)."""
        f, h = self.qkv_features, self.num_heads
        batch = inputs_q.shape[:-4]
        n_q, n_kv = inputs_q.shape[-4], inputs_kv.shape[-4]
        kind = "dense" if adj_idx is not None else "sparse"
        segments = n_q if kind == "dense" or num_segments is None else int(num_segments)
        nb = int(np.prod(batch, dtype=np.int64))
        q_in = change_max_degree_or_type(
            inputs_q, max_degree=self.qk_max_degree, include_pseudotensors=self.qk_parity == 2
        )
        k_in = change_max_degree_or_type(
            inputs_kv, max_degree=self.qk_max_degree, include_pseudotensors=self.qk_parity == 2
        )
        query = self.query._apply(q_in)
        keys = self.key._apply(k_in)
        value = self.value._apply(inputs_kv)
        depth = self.qk_parity * (self.qk_max_degree + 1) ** 2 * (f // h)
        query = query / jnp.sqrt(depth).astype(query.dtype)
        fg = flat_graph(
            n_kv,
            segments,
            batch,
            adj_idx=adj_idx,
            where=where,
            dst_idx=dst_idx,
            src_idx=src_idx,
            indices_are_sorted=indices_are_sorted,
        )
        e, pair_shape = fg.graph.num_pairs, fg.pair_shape
        out_shape = batch + (segments, self.out_parity, (self.max_degree + 1) ** 2, f)
        if e == 0 or n_kv == 0 or segments == 0:
            return self.out._apply(jnp.zeros(out_shape, value.dtype))
        ql, kl = (
            self.qk_parity * (self.qk_max_degree + 1),
            self.qk_parity * (self.qk_max_degree + 1) ** 2,
        )
        if self.relative_positional_encoding is not None:
            b0 = jnp.reshape(basis[..., :1, :1, :], (e, 1, 1, self.num_basis))
            r = self.relative_positional_encoding._apply(b0).reshape(e, ql, f)
        else:
            r = jnp.ones((e, ql, f), query.dtype)
        query, keys, r = promote_dtype(query, keys, r)
        logits = pair_logits(
            r,
            keys.reshape(nb * n_kv, kl, f),
            query.reshape(nb * segments, kl, f),
            fg,
            self.qk_parity,
            self.qk_max_degree,
        )
        logits = jnp.sum(logits.reshape(e, f // h, h), axis=1).reshape(pair_shape + (h,))
        # Softmax over each destination's neighbours, one head at a time (heads on the last axis).
        sm = dict(
            adj_idx=adj_idx,
            where=None
            if kind == "sparse"
            else (adj_idx < n_kv if where is None else where & (adj_idx < n_kv)),
            dst_idx=dst_idx,
            num_segments=None if kind == "dense" else segments,
            indices_are_sorted=indices_are_sorted,
        )
        mask = (
            None
            if cutoff_value is None
            else jnp.broadcast_to(jnp.asarray(cutoff_value, logits.dtype)[..., None], logits.shape)
        )
        weight = indexed_softmax(logits, mask, **sm)
        weight = jnp.repeat(weight.reshape(e, h), f // h, axis=-1)  # (E, F): e3x's head expansion
        if self.message_pass is not None:
            mp = self.message_pass
            x, b, kernel, bias, k, weight = promote_dtype(
                value,
                basis,
                mp.filter.kernel[0],
                mp.filter.bias,
                mp.tensor.path_kernel(),
                weight,
                dtype=self.dtype,
            )
            index = fg.index
            out = message_pass(
                mp.tensor.coupling_table(),
                mp.basis_max_degree,
                x.reshape(nb * n_kv, -1, f),
                jnp.transpose(b.reshape(e, (mp.basis_max_degree + 1) ** 2, mp.num_basis), (1, 0, 2)),
                kernel,
                bias,
                k,
                weight[:, None, :],
                index[0],
                None if kind == "dense" else index[1],
                index[-1],
                num_segments=fg.graph.num_segments,
                neighbours=fg.graph.neighbours or None,
                dst_sorted=fg.graph.dst_sorted,
                precision=mp.filter.precision,
            )
        else:
            value, weight = promote_dtype(value, weight, dtype=self.dtype)
            out = weighted_sum(weight, value.reshape(nb * n_kv, -1, f), fg)
        return self.out._apply(out.reshape(out_shape))

    def __repr__(self) -> str:
        enc = (
            "".join(
                s
                for s, on in (
                    ("qk", self.use_relative_positional_encoding_qk),
                    ("v", self.use_relative_positional_encoding_v),
                )
                if on
            )
            or "none"
        )
        return (
            f"{type(self).__name__}(q [{irreps_str(self.q_parity, self.q_max_degree)}] x "
            f"{self.q_features}, "
            f"kv [{irreps_str(self.kv_parity, self.kv_max_degree)}] x {self.kv_features}, "
            f"heads={self.num_heads}, qkv={self.qkv_features}, relpos={enc} -> "
            f"[{irreps_str(self.out_parity, self.max_degree)}] x {self.out_features}, "
            f"params={count_params(self)})"
        )


_INIT_ARGS = """
            num_heads: Number of attention heads (must divide ``qkv_features``).
            qkv_features: Features of queries, keys and values (default: the query features).
            out_features: Output features (default: the query features).
            max_degree: Output maximum degree of the value messages (default
                ``max(kv_max_degree, basis_max_degree)``); as in e3x, only used with
                ``use_relative_positional_encoding_v`` (otherwise the output keeps the values'
                degree and parity).
            use_basis_bias: Whether the basis projections (filter, positional encoding) have a bias.
            include_pseudotensors: If ``False``, paths producing pseudotensors are omitted.
            cartesian_order: If ``True``, Cartesian order is assumed.
            use_fused_tensor: Use :class:`~eqx_mp.nn.FusedTensor` for the value messages.
            use_relative_positional_encoding_qk: Weight the query-key products per degree with a
                linear function of the scalar basis channel.
            use_relative_positional_encoding_v: Couple the values with filters of the basis by a
                tensor product (a message pass) instead of summing them directly.
            dtype: dtype of the computation (default: promote inputs and parameters).
            param_dtype: dtype of the parameters.
            precision: ``jax.lax.Precision`` of the matrix products.
            dense_kernel_init, dense_bias_init: Initializers of the basis projections.
            tensor_kernel_init: Initializer of the tensor kernel (default e3x's).
            query_kernel_init, query_bias_init, query_use_bias: The query projection.
            key_kernel_init, key_bias_init, key_use_bias: The key projection.
            value_kernel_init, value_bias_init, value_use_bias: The value projection.
            output_kernel_init, output_bias_init, output_use_bias: The output projection.
            key: Keyword-only PRNG key.

        Raises:
            ValueError: If ``qkv_features`` is not divisible by ``num_heads`` (e3x's message).
            TypeError: If a relative positional encoding is requested without ``num_basis`` and
                ``basis_max_degree``.
"""

_CALL_ARGS = """
            cutoff_value: Optional multiplicative mask of the exponentials (before normalisation),
                one value per pair (shape of the index list), e.g. a smooth cutoff.
            adj_idx: Dense ``(..., N, M)`` neighbour indices into the key/value inputs (values
                ``>= N_kv`` mark padding), or ``None``.
            where: Dense ``(..., N, M)`` mask of the pairs to attend to (default: all in range).
            dst_idx: Sparse ``(..., E)`` destination (query) indices, or ``None``.
            src_idx: Sparse ``(..., E)`` source (key/value) indices, or ``None``.
            num_segments: Number of outputs for sparse lists (default: the number of queries).
            indices_are_sorted: Whether ``dst_idx`` is sorted.

        Returns:
            ``(..., N, out_parity, (max_degree+1)**2, out_features)``.

        Raises:
            ShapeError: Wrong shapes or dtypes (names the argument and axis), or batch axes of the
                inputs that differ (e3x's message: ``inputs_q and inputs_kv have incompatible
                shapes``).
            TypeError: If a positional encoding is used and ``basis`` is ``None`` (e3x's message).
            ValueError: Concrete indices out of range.
            RuntimeError: If neither or both index formats are given.
"""


class MultiHeadAttention(_Attention):
    r"""Equivariant multi-head attention (``e3x.nn.MultiHeadAttention``).

    See :mod:`eqx_mp.nn.attention` for the computation. The sizes e3x infers at ``init`` are
    given explicitly; argument names and defaults are e3x's.

    Attributes:
        query, key, value: :class:`~eqx_mp.nn.Dense` projections (e3x's ``'query'``, ``'key'``,
            ``'value'``).
        relative_positional_encoding: Linear map of the scalar basis channel to per-degree
            weights of the logits (e3x's ``'relative_positional_encoding'``), or ``None``.
        message_pass: The value messages (its ``filter`` and ``tensor`` are e3x's ``'filter'`` and
            ``'tensor'`` / ``'fused_tensor'``), or ``None`` without the values' encoding.
        out: Output projection (e3x's ``'out'``).

    Example:
        >>> import jax, jax.numpy as jnp, eqx_mp
        >>> mha = eqx_mp.nn.MultiHeadAttention(8, 8, 1, 1, 4, 1, num_heads=2, key=jax.random.key(0))
        >>> xq, xkv = jnp.ones((3, 2, 4, 8)), jnp.ones((5, 2, 4, 8))
        >>> dst, src = jnp.array([0, 0, 1, 2]), jnp.array([1, 4, 0, 3])
        >>> b = jnp.ones((4, 1, 4, 4))
        >>> mha(xq, xkv, b, dst_idx=dst, src_idx=src).shape
        (3, 2, 4, 8)
    """

    def __init__(
        self,
        q_features: int,
        kv_features: int,
        q_max_degree: int,
        kv_max_degree: int,
        num_basis: int | None = None,
        basis_max_degree: int | None = None,
        *,
        q_parity: int = 2,
        kv_parity: int = 2,
        num_heads: int = 1,
        qkv_features: int | None = None,
        out_features: int | None = None,
        max_degree: int | None = None,
        use_basis_bias: bool = False,
        include_pseudotensors: bool = True,
        cartesian_order: bool = Config.cartesian_order,
        use_fused_tensor: bool = Config.use_fused_tensor,
        use_relative_positional_encoding_qk: bool = True,
        use_relative_positional_encoding_v: bool = True,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        dense_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        dense_bias_init: Callable[..., jax.Array] = _zeros,
        tensor_kernel_init: Callable[..., Any] | None = None,
        query_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        query_bias_init: Callable[..., jax.Array] = _zeros,
        query_use_bias: bool = False,
        key_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        key_bias_init: Callable[..., jax.Array] = _zeros,
        key_use_bias: bool = False,
        value_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        value_bias_init: Callable[..., jax.Array] = _zeros,
        value_use_bias: bool = False,
        output_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        output_bias_init: Callable[..., jax.Array] = _zeros,
        output_use_bias: bool = True,
        key: jax.Array,
    ):
        kwargs = dict(locals())
        for name in (
            "self",
            "__class__",
            "q_features",
            "kv_features",
            "q_max_degree",
            "kv_max_degree",
            "num_basis",
            "basis_max_degree",
        ):
            kwargs.pop(name, None)
        self._build(
            q_features,
            kv_features,
            q_max_degree,
            kv_max_degree,
            num_basis,
            basis_max_degree,
            name="MultiHeadAttention",
            **kwargs,
        )

    __init__.__doc__ = (
        """Build the layer eagerly.

        Arguments:
            q_features: Feature size of ``inputs_q``.
            kv_features: Feature size of ``inputs_kv``.
            q_max_degree: Maximum degree of ``inputs_q``.
            kv_max_degree: Maximum degree of ``inputs_kv``.
            num_basis: Number of basis functions (needed with a relative positional encoding).
            basis_max_degree: Maximum degree of the basis (likewise).
            q_parity: Parity-axis size of ``inputs_q`` (1 or 2).
            kv_parity: Parity-axis size of ``inputs_kv`` (1 or 2)."""
        + _INIT_ARGS
    )

    def _precheck(
        self,
        inputs_q,
        inputs_kv,
        basis=None,
        cutoff_value=None,
        *,
        adj_idx=None,
        where=None,
        dst_idx=None,
        src_idx=None,
        num_segments=None,
        indices_are_sorted=False,
    ) -> None:
        self._check_call(
            inputs_q,
            inputs_kv,
            basis,
            cutoff_value,
            adj_idx,
            where,
            dst_idx,
            src_idx,
            num_segments,
            "inputs_q",
            "inputs_kv",
        )

    @typecheck(precheck=_precheck)
    def __call__(
        self,
        inputs_q: Float[
            AnyArray, "*batch N {self.q_parity} ({self.q_max_degree}+1)**2 {self.q_features}"
        ],
        inputs_kv: Float[
            AnyArray, "*batch M {self.kv_parity} ({self.kv_max_degree}+1)**2 {self.kv_features}"
        ],
        basis: Optional[Float[AnyArray, "*batch ..."]] = None,
        cutoff_value: Optional[Float[AnyArray, "*batch ..."]] = None,
        *,
        adj_idx: Optional[Integer[AnyArray, "*batch N K"]] = None,
        where: Optional[Bool[AnyArray, "*batch N K"]] = None,
        dst_idx: Optional[Integer[AnyArray, "*batch E"]] = None,
        src_idx: Optional[Integer[AnyArray, "*batch E"]] = None,
        num_segments: Optional[int] = None,
        indices_are_sorted: bool = False,
    ) -> Float[Array, "*batch _N {self.out_parity} ({self.max_degree}+1)**2 {self.out_features}"]:
        return self._attend(
            inputs_q,
            inputs_kv,
            basis,
            cutoff_value,
            adj_idx,
            where,
            dst_idx,
            src_idx,
            num_segments,
            indices_are_sorted,
        )

    __call__.__doc__ = (
        """Attend from the queries ``inputs_q`` to the keys/values ``inputs_kv``.

        Arguments:
            inputs_q: ``(..., N, q_parity, (q_max_degree+1)**2, q_features)``.
            inputs_kv: ``(..., M, kv_parity, (kv_max_degree+1)**2, kv_features)``.
            basis: ``(..., N, K, 1, (basis_max_degree+1)**2, num_basis)`` (dense) or
                ``(..., E, 1, (basis_max_degree+1)**2, num_basis)`` (sparse) pair basis."""
        + _CALL_ARGS
    )


class SelfAttention(_Attention):
    r"""Equivariant self-attention (``e3x.nn.SelfAttention``): :class:`MultiHeadAttention` with
    the same features as queries and keys/values.

    Like message passing, but every message is weighted by an attention weight, and the weights
    of each destination's neighbours sum to one.

    Example:
        >>> import jax, jax.numpy as jnp, eqx_mp
        >>> sa = eqx_mp.nn.SelfAttention(8, 1, 4, 2, num_heads=2, key=jax.random.key(0))
        >>> x, b = jnp.ones((5, 2, 4, 8)), jnp.ones((5, 4, 1, 9, 4))
        >>> sa(x, b, adj_idx=eqx_mp.ops.dense_pairwise_indices(5)).shape
        (5, 2, 9, 8)
    """

    def __init__(
        self,
        num_features: int,
        in_max_degree: int,
        num_basis: int | None = None,
        basis_max_degree: int | None = None,
        *,
        in_parity: int = 2,
        num_heads: int = 1,
        qkv_features: int | None = None,
        out_features: int | None = None,
        max_degree: int | None = None,
        use_basis_bias: bool = False,
        include_pseudotensors: bool = True,
        cartesian_order: bool = Config.cartesian_order,
        use_fused_tensor: bool = Config.use_fused_tensor,
        use_relative_positional_encoding_qk: bool = True,
        use_relative_positional_encoding_v: bool = True,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        dense_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        dense_bias_init: Callable[..., jax.Array] = _zeros,
        tensor_kernel_init: Callable[..., Any] | None = None,
        query_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        query_bias_init: Callable[..., jax.Array] = _zeros,
        query_use_bias: bool = False,
        key_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        key_bias_init: Callable[..., jax.Array] = _zeros,
        key_use_bias: bool = False,
        value_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        value_bias_init: Callable[..., jax.Array] = _zeros,
        value_use_bias: bool = False,
        output_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        output_bias_init: Callable[..., jax.Array] = _zeros,
        output_use_bias: bool = True,
        key: jax.Array,
    ):
        kwargs = dict(locals())
        for name in (
            "self",
            "__class__",
            "num_features",
            "in_max_degree",
            "num_basis",
            "basis_max_degree",
            "in_parity",
        ):
            kwargs.pop(name, None)
        self._build(
            num_features,
            num_features,
            in_max_degree,
            in_max_degree,
            num_basis,
            basis_max_degree,
            q_parity=in_parity,
            kv_parity=in_parity,
            name="SelfAttention",
            **kwargs,
        )

    __init__.__doc__ = (
        """Build the layer eagerly.

        Arguments:
            num_features: Feature size of the inputs.
            in_max_degree: Maximum degree of the inputs.
            num_basis: Number of basis functions (needed with a relative positional encoding).
            basis_max_degree: Maximum degree of the basis (likewise).
            in_parity: Parity-axis size of the inputs (1 or 2)."""
        + _INIT_ARGS
    )

    @property
    def num_features(self) -> int:
        """Feature size of the inputs."""
        return self.q_features

    @property
    def in_max_degree(self) -> int:
        """Maximum degree of the inputs."""
        return self.q_max_degree

    @property
    def in_parity(self) -> int:
        """Parity-axis size of the inputs."""
        return self.q_parity

    def _precheck(
        self,
        inputs,
        basis=None,
        cutoff_value=None,
        *,
        adj_idx=None,
        where=None,
        dst_idx=None,
        src_idx=None,
        num_segments=None,
        indices_are_sorted=False,
    ) -> None:
        self._check_call(
            inputs,
            inputs,
            basis,
            cutoff_value,
            adj_idx,
            where,
            dst_idx,
            src_idx,
            num_segments,
            "inputs",
            "inputs",
        )

    @typecheck(precheck=_precheck)
    def __call__(
        self,
        inputs: Float[
            AnyArray, "*batch N {self.q_parity} ({self.q_max_degree}+1)**2 {self.q_features}"
        ],
        basis: Optional[Float[AnyArray, "*batch ..."]] = None,
        cutoff_value: Optional[Float[AnyArray, "*batch ..."]] = None,
        *,
        adj_idx: Optional[Integer[AnyArray, "*batch N K"]] = None,
        where: Optional[Bool[AnyArray, "*batch N K"]] = None,
        dst_idx: Optional[Integer[AnyArray, "*batch E"]] = None,
        src_idx: Optional[Integer[AnyArray, "*batch E"]] = None,
        num_segments: Optional[int] = None,
        indices_are_sorted: bool = False,
    ) -> Float[Array, "*batch _N {self.out_parity} ({self.max_degree}+1)**2 {self.out_features}"]:
        return self._attend(
            inputs,
            inputs,
            basis,
            cutoff_value,
            adj_idx,
            where,
            dst_idx,
            src_idx,
            num_segments,
            indices_are_sorted,
        )

    __call__.__doc__ = (
        """Self-attention over a dense or sparse neighbour list.

        Arguments:
            inputs: ``(..., N, in_parity, (in_max_degree+1)**2, num_features)``.
            basis: ``(..., N, M, 1, (basis_max_degree+1)**2, num_basis)`` (dense) or
                ``(..., E, 1, (basis_max_degree+1)**2, num_basis)`` (sparse) pair basis."""
        + _CALL_ARGS
    )
