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

The shared configuration and checks are in :mod:`._attention`, the computation on the fused
contraction engine in :mod:`._attend`.
"""

from __future__ import annotations

from typing import Any, Optional

from jaxtyping import Array, Bool, Float, Integer

from .._checks import AnyArray, typecheck
from ._attend import attend
from ._attention import CALL_ARGS, INIT_ARGS, AttentionBase
from ._common import shares_keywords

__all__ = ["MultiHeadAttention", "SelfAttention"]


class MultiHeadAttention(AttentionBase):
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

    # __init__ is AttentionBase's (e3x's MultiHeadAttention options); documented here.

    def _precheck(
        self, inputs_q: Any, inputs_kv: Any, basis: Any, cutoff_value: Any, *, adj_idx: Any,
        where: Any, dst_idx: Any, src_idx: Any, num_segments: Any, indices_are_sorted: bool,
    ) -> None:
        self.check_call(inputs_q, inputs_kv, basis, cutoff_value, adj_idx, where, dst_idx,
                        src_idx, num_segments, "inputs_q", "inputs_kv")

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
        return attend(self, inputs_q, inputs_kv, basis, cutoff_value, adj_idx, where, dst_idx,
                      src_idx, num_segments, indices_are_sorted)

    __call__.__doc__ = (
        """Attend from the queries ``inputs_q`` to the keys/values ``inputs_kv``.

        Arguments:
            inputs_q: ``(..., N, q_parity, (q_max_degree+1)**2, q_features)``.
            inputs_kv: ``(..., M, kv_parity, (kv_max_degree+1)**2, kv_features)``.
            basis: ``(..., N, K, 1, (basis_max_degree+1)**2, num_basis)`` (dense) or
                ``(..., E, 1, (basis_max_degree+1)**2, num_basis)`` (sparse) pair basis."""
        + CALL_ARGS
    )


class SelfAttention(AttentionBase):
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

    @shares_keywords(AttentionBase.__init__, drop=("q_parity", "kv_parity"))
    def __init__(
        self,
        num_features: int,
        in_max_degree: int,
        num_basis: int | None = None,
        basis_max_degree: int | None = None,
        *,
        in_parity: int = 2,
        **options: Any,
    ):
        super().__init__(num_features, num_features, in_max_degree, in_max_degree, num_basis,
                         basis_max_degree, q_parity=in_parity, kv_parity=in_parity, **options)

    __init__.__doc__ = (
        """Build the layer eagerly (the options are :class:`MultiHeadAttention`'s).

        Arguments:
            num_features: Feature size of the inputs.
            in_max_degree: Maximum degree of the inputs.
            num_basis: Number of basis functions (needed with a relative positional encoding).
            basis_max_degree: Maximum degree of the basis (likewise).
            in_parity: Parity-axis size of the inputs (1 or 2)."""
        + INIT_ARGS
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
        self, inputs: Any, basis: Any, cutoff_value: Any, *, adj_idx: Any, where: Any,
        dst_idx: Any, src_idx: Any, num_segments: Any, indices_are_sorted: bool,
    ) -> None:
        self.check_call(inputs, inputs, basis, cutoff_value, adj_idx, where, dst_idx, src_idx,
                        num_segments, "inputs", "inputs")

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
        return attend(self, inputs, inputs, basis, cutoff_value, adj_idx, where, dst_idx, src_idx,
                      num_segments, indices_are_sorted)

    __call__.__doc__ = (
        """Self-attention over a dense or sparse neighbour list.

        Arguments:
            inputs: ``(..., N, in_parity, (in_max_degree+1)**2, num_features)``.
            basis: ``(..., N, M, 1, (basis_max_degree+1)**2, num_basis)`` (dense) or
                ``(..., E, 1, (basis_max_degree+1)**2, num_basis)`` (sparse) pair basis."""
        + CALL_ARGS
    )
