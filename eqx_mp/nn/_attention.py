"""What :class:`~eqx_mp.nn.MultiHeadAttention` and :class:`~eqx_mp.nn.SelfAttention` share:
fields, construction (e3x's options, written once), the explicit call checks and the repr.

The computation itself is in :mod:`._attend`.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import (
    ShapeError,
    check_int,
    check_irreps,
    check_key,
    check_neighbour_list,
    check_parity,
)
from ..config import Config
from ._common import count_params, irreps_str
from .dense import Dense, default_kernel_init
from .message_pass import MessagePass

_zeros = jax.nn.initializers.zeros

#: The documentation of the options shared by both modules (appended to their ``__init__``).
INIT_ARGS = """
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

#: The documentation of the call arguments after ``basis`` (appended to both ``__call__``).
CALL_ARGS = """
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


class AttentionBase(eqx.Module):
    """Fields, construction, call checks and repr shared by the two attention modules.

    The constructor takes e3x's ``MultiHeadAttention`` options (:class:`SelfAttention` shares
    them, see :func:`~eqx_mp.nn._common.shares_keywords`).
    """

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
        check_key(key, type(self).__name__)
        self._set_sizes(q_features, kv_features, q_max_degree, kv_max_degree, q_parity, kv_parity,
                        num_heads, qkv_features, out_features)
        self._set_encodings(use_relative_positional_encoding_qk,
                            use_relative_positional_encoding_v, num_basis, basis_max_degree)
        self.use_basis_bias = bool(use_basis_bias)
        self.include_pseudotensors = bool(include_pseudotensors)
        self.cartesian_order = bool(cartesian_order)
        self.use_fused_tensor = bool(use_fused_tensor)
        self.dtype, self.precision = dtype, precision
        keys = jax.random.split(key, 6)
        common = dict(dtype=dtype, param_dtype=param_dtype, precision=precision)
        f, lqk, pqk = self.qkv_features, self.qk_max_degree, self.qk_parity
        self.query = Dense(self.q_features, f, lqk, parity=pqk, use_bias=query_use_bias,
                           kernel_init=query_kernel_init, bias_init=query_bias_init, key=keys[0],
                           **common)
        self.key = Dense(self.kv_features, f, lqk, parity=pqk, use_bias=key_use_bias,
                         kernel_init=key_kernel_init, bias_init=key_bias_init, key=keys[1],
                         **common)
        self.value = Dense(self.kv_features, f, self.kv_max_degree, parity=self.kv_parity,
                           use_bias=value_use_bias, kernel_init=value_kernel_init,
                           bias_init=value_bias_init, key=keys[2], **common)
        self._build_encodings(max_degree, use_basis_bias, dense_kernel_init, dense_bias_init,
                              tensor_kernel_init, keys[3], keys[4], common)
        self.out = Dense(f, self.out_features, self.max_degree, parity=self.out_parity,
                         use_bias=output_use_bias, kernel_init=output_kernel_init,
                         bias_init=output_bias_init, key=keys[5], **common)

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
        + INIT_ARGS
    )

    def _build_encodings(
        self, max_degree: int | None, use_basis_bias: bool, dense_kernel_init: Callable,
        dense_bias_init: Callable, tensor_kernel_init: Callable | None, key_qk: jax.Array,
        key_v: jax.Array, common: dict,
    ) -> None:
        """The relative positional encodings of the logits and of the values (the message
        pass), and the output layout they give."""
        f, lqk, pqk = self.qkv_features, self.qk_max_degree, self.qk_parity
        self.relative_positional_encoding = None
        if self.use_relative_positional_encoding_qk:
            assert self.num_basis is not None  # set whenever an encoding is used (checked above)
            self.relative_positional_encoding = Dense(
                self.num_basis, pqk * (lqk + 1) * f, 0, parity=1, use_bias=use_basis_bias,
                kernel_init=dense_kernel_init, bias_init=dense_bias_init, key=key_qk, **common)
        self.message_pass = None
        if self.use_relative_positional_encoding_v:
            assert self.num_basis is not None and self.basis_max_degree is not None  # likewise
            self.message_pass = MessagePass(
                f, self.num_basis, self.kv_max_degree, self.basis_max_degree,
                in_parity=self.kv_parity, max_degree=max_degree, use_basis_bias=use_basis_bias,
                include_pseudotensors=self.include_pseudotensors,
                cartesian_order=self.cartesian_order, use_fused_tensor=self.use_fused_tensor, dense_kernel_init=dense_kernel_init,
                dense_bias_init=dense_bias_init, tensor_kernel_init=tensor_kernel_init,
                key=key_v, **common)
            self.max_degree = self.message_pass.max_degree
            self.out_parity = self.message_pass.out_parity
        else:  # e3x: without the encoding of the values, the output keeps the values' layout.
            self.max_degree, self.out_parity = self.kv_max_degree, self.kv_parity

    def _set_sizes(
        self, q_features: int, kv_features: int, q_max_degree: int, kv_max_degree: int,
        q_parity: int, kv_parity: int, num_heads: int, qkv_features: int | None,
        out_features: int | None,
    ) -> None:
        """Check and set the sizes of the inputs, the heads and the outputs."""
        self.q_features = check_int(q_features, "q_features", minimum=1)
        self.kv_features = check_int(kv_features, "kv_features", minimum=1)
        self.q_max_degree = check_int(q_max_degree, "q_max_degree")
        self.kv_max_degree = check_int(kv_max_degree, "kv_max_degree")
        self.q_parity = check_parity(q_parity, "q_parity")
        self.kv_parity = check_parity(kv_parity, "kv_parity")
        self.num_heads = check_int(num_heads, "num_heads", minimum=1)
        self.qkv_features = (
            self.q_features if qkv_features is None
            else check_int(qkv_features, "qkv_features", minimum=1)
        )
        self.out_features = (
            self.q_features if out_features is None
            else check_int(out_features, "out_features", minimum=1)
        )
        if self.qkv_features % self.num_heads != 0:
            raise ValueError(
                f"qkv_features ({self.qkv_features}) must be divisible by "
                f"num_heads ({self.num_heads})"
            )
        self.qk_max_degree = min(self.q_max_degree, self.kv_max_degree)
        self.qk_parity = 2 if self.q_parity == self.kv_parity == 2 else 1

    def _set_encodings(
        self, qk: bool, v: bool, num_basis: int | None, basis_max_degree: int | None
    ) -> None:
        """Check and set the relative positional encodings and the basis sizes they need."""
        self.use_relative_positional_encoding_qk = bool(qk)
        self.use_relative_positional_encoding_v = bool(v)
        if (qk or v) and (num_basis is None or basis_max_degree is None):
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

    # ------------------------------------------------------------------------------------ checks

    def check_call(
        self, inputs_q: Any, inputs_kv: Any, basis: Any, cutoff_value: Any, adj_idx: Any,
        where: Any, dst_idx: Any, src_idx: Any, num_segments: Any, q_name: str, kv_name: str,
    ) -> None:
        """The explicit checks of a call (naming the argument and axis), before jaxtyping's."""
        name = type(self).__name__
        check_irreps(inputs_q, q_name, parity=self.q_parity, max_degree=self.q_max_degree,
                     features=self.q_features, min_ndim=4,
                     what=f"({name}: parity={self.q_parity}, max_degree={self.q_max_degree}, "
                     f"features={self.q_features})")
        check_irreps(inputs_kv, kv_name, parity=self.kv_parity, max_degree=self.kv_max_degree,
                     features=self.kv_features, min_ndim=4,
                     what=f"({name}: parity={self.kv_parity}, max_degree={self.kv_max_degree}, "
                     f"features={self.kv_features})")
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
        if basis is not None:
            check_irreps(basis, "basis", parity=1, max_degree=self.basis_max_degree,
                         features=self.num_basis, min_ndim=4,
                         what=f"({name}: basis_max_degree={self.basis_max_degree}, "
                         f"num_basis={self.num_basis})")
        pair_shape = check_neighbour_list(
            inputs_q.shape[:-3], inputs_kv.shape[-4], adj_idx=adj_idx, where=where,
            dst_idx=dst_idx, src_idx=src_idx, num_segments=num_segments, layer="attention",
            inputs=q_name, sources="key/value inputs",
        )
        if basis is not None and tuple(basis.shape[:-3]) != pair_shape:
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

    def __repr__(self) -> str:
        on = (("qk", self.use_relative_positional_encoding_qk),
              ("v", self.use_relative_positional_encoding_v))
        enc = "".join(s for s, used in on if used) or "none"
        return (
            f"{type(self).__name__}(q [{irreps_str(self.q_parity, self.q_max_degree)}] x "
            f"{self.q_features}, "
            f"kv [{irreps_str(self.kv_parity, self.kv_max_degree)}] x {self.kv_features}, "
            f"heads={self.num_heads}, qkv={self.qkv_features}, relpos={enc} -> "
            f"[{irreps_str(self.out_parity, self.max_degree)}] x {self.out_features}, "
            f"params={count_params(self)})"
        )

