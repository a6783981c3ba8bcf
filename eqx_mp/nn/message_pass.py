"""Equivariant message passing (e3x's ``MessagePass``) as an eager Equinox module."""

from __future__ import annotations

from typing import Any, Callable, Union

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Integer

from .._checks import (
    AnyArray,
    ShapeError,
    check_array,
    check_int,
    check_irreps,
    check_key,
    check_neighbour_list,
    check_parity,
    typecheck,
)
from ._cg import flat_graph, message_pass
from ._common import count_params, irreps_str, promote_dtype
from .dense import Dense, default_kernel_init
from .fused_tensor import FusedTensor
from .tensor import Tensor
from .tensor_product import AbstractTensorProduct

__all__ = ["MessagePass"]


def _pair_weights(weights: jax.Array, pair_shape: tuple, slots: int, tail: tuple) -> jax.Array:
    """Weights broadcastable to ``pair_shape + (P, D, F)`` as ``(Ew, Sw, Fw)`` for the kernel.

    ``Ew`` is 1 (same for every pair) or the number of pairs, ``Sw`` 1 or ``P * D``, ``Fw`` 1 or
    ``F``; only the axes along which the weights vary are materialised.
    """
    full = pair_shape + tuple(tail)
    w = jnp.reshape(weights, (1,) * (len(full) - weights.ndim) + tuple(weights.shape))
    lead = w.shape[: len(pair_shape)]
    if all(d == 1 for d in lead):
        w = w.reshape((1,) + w.shape[len(pair_shape):])
    else:
        w = jnp.broadcast_to(w, pair_shape + w.shape[len(pair_shape):])
        w = w.reshape((-1,) + w.shape[len(pair_shape):])
    p, d, f = w.shape[1:]
    if p == 1 and d == 1:
        return w.reshape(w.shape[0], 1, f)
    w = jnp.broadcast_to(w, (w.shape[0],) + tuple(tail[:2]) + (f,))
    return w.reshape(w.shape[0], slots, f)


def broadcastable_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to ``target`` without changing ``target``."""
    if len(shape) > len(target):
        return False
    return all(a == b or a == 1 for a, b in zip(shape[::-1], target[::-1]))


class MessagePass(eqx.Module):
    r"""Equivariant message-passing step (``e3x.nn.MessagePass``).

    .. math::

        \mathbf{f} = \mathrm{dense}(\mathbf{b}), \qquad
        \mathbf{m}[i] = \sum_{j \in \mathcal{N}[i]} w[ij]\,\mathrm{tensor}(\mathbf{f}[ij], \mathbf{x}[j])

    over a dense (``adj_idx``, ``where``) or sparse (``dst_idx``, ``src_idx``, ``num_segments``)
    neighbour list. ``tensor`` is a :class:`~eqx_mp.nn.Tensor` or, with ``use_fused_tensor=True``,
    a :class:`~eqx_mp.nn.FusedTensor`.

    Attributes:
        filter: The :class:`~eqx_mp.nn.Dense` layer that turns the basis into filters
            (e3x's ``'filter'`` submodule; parity 1, ``num_basis -> num_features``).
        tensor: The :class:`~eqx_mp.nn.Tensor` / :class:`~eqx_mp.nn.FusedTensor` coupling filters
            (first factor) with gathered inputs (second factor).

    Example:
        >>> import jax, jax.numpy as jnp, eqx_mp
        >>> mp = eqx_mp.nn.MessagePass(8, 4, in_max_degree=1, basis_max_degree=2, key=jax.random.key(0))
        >>> x = jnp.ones((5, 2, 4, 8)); b = jnp.ones((5, 4, 1, 9, 4))
        >>> adj = eqx_mp.ops.dense_pairwise_indices(5)
        >>> mp(x, b, adj_idx=adj).shape
        (5, 2, 9, 8)
    """

    filter: Dense
    tensor: AbstractTensorProduct

    def __init__(
        self,
        num_features: int,
        num_basis: int,
        in_max_degree: int,
        basis_max_degree: int,
        *,
        in_parity: int = 2,
        max_degree: int | None = None,
        use_basis_bias: bool = False,
        include_pseudotensors: bool = True,
        cartesian_order: bool = True,
        use_fused_tensor: bool = False,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        dense_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        dense_bias_init: Callable[..., jax.Array] = jax.nn.initializers.zeros,
        tensor_kernel_init: Callable[..., Any] | None = None,
        key: jax.Array,
    ):
        """Build the layer eagerly.

        Arguments:
            num_features: Feature size ``F`` of inputs, filters and outputs.
            num_basis: Number ``K`` of basis functions (last axis of ``basis``).
            in_max_degree: Maximum degree ``L`` of the inputs.
            basis_max_degree: Maximum degree ``Lb`` of the basis.
            in_parity: Parity-axis size ``P`` of the inputs (1 or 2).
            max_degree: Output maximum degree (default ``max(in_max_degree, basis_max_degree)``;
                at most ``in_max_degree + basis_max_degree``).
            use_basis_bias: Whether the filter ``Dense`` has a bias.
            include_pseudotensors: If ``False``, paths producing pseudotensors are omitted.
            cartesian_order: If ``True``, Cartesian order is assumed.
            use_fused_tensor: Use :class:`FusedTensor` instead of :class:`Tensor`.
            dtype: dtype of the computation (default: promote inputs and parameters).
            param_dtype: dtype of the parameters.
            precision: ``jax.lax.Precision`` of the filter's matrix products.
            dense_kernel_init: Initializer of the filter weights (default LeCun normal).
            dense_bias_init: Initializer of the filter bias (default zeros).
            tensor_kernel_init: Initializer of the tensor kernel (default e3x's:
                ``tensor_lecun_normal()``, or ``fused_tensor_normal`` when fused).
            key: Keyword-only PRNG key.
        """
        check_key(key, "MessagePass")
        check_int(num_features, "num_features", minimum=1)
        check_int(num_basis, "num_basis", minimum=1)
        in_l = check_int(in_max_degree, "in_max_degree")
        basis_l = check_int(basis_max_degree, "basis_max_degree")
        check_parity(in_parity, "in_parity")
        if max_degree is not None and check_int(max_degree, "max_degree") > in_l + basis_l:
            raise ValueError(
                f"max_degree={max_degree} cannot be reached: coupling inputs of max degree "
                f"{in_l} with a basis of max degree {basis_l} gives at most {in_l + basis_l}"
            )
        kf, kt = jax.random.split(key)
        self.filter = Dense(
            num_basis, num_features, basis_l, parity=1, use_bias=use_basis_bias, dtype=dtype,
            param_dtype=param_dtype, precision=precision, kernel_init=dense_kernel_init,
            bias_init=dense_bias_init, key=kf,
        )
        cls = FusedTensor if use_fused_tensor else Tensor
        self.tensor = cls(
            num_features, basis_l, in_l, parity1=1, parity2=in_parity, max_degree=max_degree,
            include_pseudotensors=include_pseudotensors, cartesian_order=cartesian_order,
            dtype=dtype, param_dtype=param_dtype, precision=precision,
            kernel_init=tensor_kernel_init, key=kt,
        )

    # The settings live in the submodules; these read them (e3x's argument names).
    @property
    def num_features(self) -> int:
        """Feature size ``F`` of inputs, filters and outputs."""
        return self.tensor.num_features

    @property
    def num_basis(self) -> int:
        """Number ``K`` of basis functions."""
        return self.filter.in_features

    @property
    def in_max_degree(self) -> int:
        """Maximum degree ``L`` of the inputs."""
        return self.tensor.max_degree2

    @property
    def in_parity(self) -> int:
        """Parity-axis size of the inputs."""
        return self.tensor.parity2

    @property
    def basis_max_degree(self) -> int:
        """Maximum degree ``Lb`` of the basis."""
        return self.tensor.max_degree1

    @property
    def max_degree(self) -> int:
        """Maximum degree of the output (e3x's name)."""
        return self.tensor.max_degree

    @property
    def out_max_degree(self) -> int:
        """Maximum degree of the output (alias of ``max_degree``)."""
        return self.tensor.max_degree

    @property
    def out_parity(self) -> int:
        """Parity-axis size of the output."""
        return self.tensor.out_parity

    @property
    def use_basis_bias(self) -> bool:
        """Whether the filter has a bias."""
        return self.filter.use_bias

    @property
    def include_pseudotensors(self) -> bool:
        """Whether pseudotensor outputs are kept."""
        return self.tensor.include_pseudotensors

    @property
    def cartesian_order(self) -> bool:
        """Whether irreps components are in Cartesian order."""
        return self.tensor.cartesian_order

    @property
    def use_fused_tensor(self) -> bool:
        """Whether the tensor product is a :class:`FusedTensor`."""
        return isinstance(self.tensor, FusedTensor)

    @property
    def dtype(self) -> Any:
        """dtype of the computation (``None``: promote)."""
        return self.tensor.dtype

    @property
    def precision(self) -> Any:
        """Precision of the filter's matrix products."""
        return self.filter.precision

    def _precheck(
        self, inputs: Any, basis: Any, weights: Any = None, *, adj_idx: Any = None, where: Any = None,
        dst_idx: Any = None, src_idx: Any = None, num_segments: Any = None,
        indices_are_sorted: bool = False,
    ) -> None:
        cfg = (f"(MessagePass: in_parity={self.in_parity}, in_max_degree={self.in_max_degree}, "
               f"num_features={self.num_features})")
        check_irreps(inputs, "inputs", parity=self.in_parity, max_degree=self.in_max_degree,
                     features=self.num_features, min_ndim=4, what=cfg)
        bcfg = f"(MessagePass: basis_max_degree={self.basis_max_degree}, num_basis={self.num_basis})"
        check_irreps(basis, "basis", parity=1, max_degree=self.basis_max_degree,
                     features=self.num_basis, min_ndim=4, what=bcfg)
        pair_shape = check_neighbour_list(
            inputs.shape[:-3], inputs.shape[-4], adj_idx=adj_idx, where=where, dst_idx=dst_idx,
            src_idx=src_idx, num_segments=num_segments, layer="message passing",
        )
        if basis.shape[:-3] != pair_shape:
            raise ShapeError(
                f"basis has shape {basis.shape}; its leading axes {basis.shape[:-3]} must equal the "
                f"shape of the index list {pair_shape} (one basis entry per pair)"
            )
        if weights is not None:
            gathered = pair_shape + inputs.shape[-3:]
            check_array(weights, "weights")
            if not broadcastable_to(tuple(weights.shape), gathered):
                raise ValueError(
                    f"weights with shape {tuple(weights.shape)} cannot be broadcasted to gathered_inputs "
                    f"with shape {gathered}"
                )

    @typecheck(precheck=_precheck)
    def __call__(
        self,
        inputs: Float[AnyArray, "*batch N {self.in_parity} ({self.in_max_degree}+1)**2 {self.num_features}"],
        basis: Union[
            Float[AnyArray, "*batch N M 1 ({self.basis_max_degree}+1)**2 {self.num_basis}"],
            Float[AnyArray, "*batch E 1 ({self.basis_max_degree}+1)**2 {self.num_basis}"],
        ],
        weights: Float[AnyArray, "..."] | None = None,
        *,
        adj_idx: Integer[AnyArray, "*batch N M"] | None = None,
        where: Bool[AnyArray, "*batch N M"] | None = None,
        dst_idx: Integer[AnyArray, "*batch E"] | None = None,
        src_idx: Integer[AnyArray, "*batch E"] | None = None,
        num_segments: int | None = None,
        indices_are_sorted: bool = False,
    ) -> Float[Array, "*batch _N {self.out_parity} ({self.max_degree}+1)**2 {self.num_features}"]:
        """Apply one message-passing step.

        Arguments:
            inputs: ``(..., N, in_parity, (in_max_degree+1)**2, num_features)`` node features.
            basis: ``(..., N, M, 1, (basis_max_degree+1)**2, num_basis)`` (dense) or
                ``(..., E, 1, (basis_max_degree+1)**2, num_basis)`` (sparse) pair basis functions.
            weights: Optional per-pair weights broadcastable to the gathered inputs
                ``(..., N, M, P, (L+1)**2, F)`` / ``(..., E, P, (L+1)**2, F)``.
            adj_idx: Dense ``(..., N, M)`` neighbour indices in ``[0, N]``; ``N`` marks padding.
            where: Dense ``(..., N, M)`` boolean mask of pairs to sum (default: all pairs with
                ``0 <= adj_idx < N``; pairs outside that range are never summed, even where
                ``where`` is ``True``).
            dst_idx: Sparse ``(..., E)`` destination (receiving) indices in ``[0, num_segments]``.
            src_idx: Sparse ``(..., E)`` source (sending) indices in ``[0, N]``.
            num_segments: Number of outputs for sparse lists (default ``N``); a non-negative int.
                ``dst_idx == num_segments`` marks a padding pair, and so does ``src_idx == N``:
                both are dropped.
            indices_are_sorted: Whether ``dst_idx`` is sorted (may be faster; padding pairs must
                then come last).

        Index ranges:
            With concrete (eager, not traced) indices, any index outside the ranges above raises
            ``ValueError`` before anything is computed: a negative index, ``adj_idx``/``src_idx``
            ``> N``, or ``dst_idx > num_segments`` (``num_segments`` smaller than the largest
            real destination). Under ``jit``/``vmap`` the values are unknown at trace time, so
            they cannot be checked; then gathers clamp the index into ``[0, N-1]`` (values and
            gradients stay finite) and the pair is dropped from the sum: dense pairs outside
            ``[0, N)`` are masked out, sparse pairs with ``src_idx`` outside ``[0, N)`` or
            ``dst_idx`` outside ``[0, num_segments)`` contribute nothing.

        Returns:
            ``(..., N', out_parity, (max_degree+1)**2, num_features)`` messages, ``N' = N``
            (dense) or ``num_segments`` (sparse).

        Raises:
            ShapeError: Wrong shapes, dtypes or inconsistent batch axes (the message names the
                argument and axis).
            ValueError: If ``weights`` cannot be broadcast to the gathered inputs, or concrete
                indices are out of range.
            RuntimeError: If neither or both index formats are given.
        """
        n = inputs.shape[-4]
        segments = n if num_segments is None else int(num_segments)
        # inputs and basis are jax arrays already (the precheck converts); typed as such here.
        return self._apply(jnp.asarray(inputs), jnp.asarray(basis), weights, adj_idx, where,
                           dst_idx, src_idx, segments, indices_are_sorted)

    def _apply(
        self, inputs: jax.Array, basis: jax.Array, weights: Any, adj_idx: Any, where: Any,
        dst_idx: Any, src_idx: Any, num_segments: int, indices_are_sorted: bool,
    ) -> jax.Array:
        """The computation without the call-boundary checks: batch axes are folded into one graph
        and the fused engine (:mod:`eqx_mp.nn._cg`) runs gather, filter, tensor
        product, weights and sum block by block."""
        x, basis, kernel, bias, k, weights = promote_dtype(
            inputs, basis, self.filter.kernel[0], self.filter.bias, self.tensor.path_kernel(), weights,
            dtype=self.dtype,
        )
        n, f = x.shape[-4], self.num_features
        batch = x.shape[:-4]
        segments = n if adj_idx is not None else num_segments
        fg = flat_graph(n, segments, batch, adj_idx=adj_idx, where=where, dst_idx=dst_idx,
                        src_idx=src_idx, indices_are_sorted=indices_are_sorted)
        out_shape = batch + (segments, self.out_parity, (self.max_degree + 1) ** 2, f)
        num_pairs = fg.graph.num_pairs
        if num_pairs == 0 or n == 0 or segments == 0:
            return jnp.zeros(out_shape, x.dtype)
        basis = jnp.transpose(
            basis.reshape(num_pairs, (self.basis_max_degree + 1) ** 2, self.num_basis), (1, 0, 2))
        w = None if weights is None else _pair_weights(weights, fg.pair_shape, x.shape[-3] * x.shape[-2],
                                                       inputs.shape[-3:])
        out = message_pass(self.tensor.coupling_table(), self.basis_max_degree,
                           x.reshape(-1, x.shape[-3] * x.shape[-2], f), basis, kernel, bias, k, w, fg,
                           precision=self.filter.precision)
        return out.reshape(out_shape)

    def __repr__(self) -> str:
        kind = "FusedTensor" if self.use_fused_tensor else "Tensor"
        return (
            f"MessagePass(inputs [{irreps_str(self.in_parity, self.in_max_degree)}] x F={self.num_features}, "
            f"basis L={self.basis_max_degree} K={self.num_basis} -> "
            f"[{irreps_str(self.out_parity, self.max_degree)}], {kind}, "
            f"paths={len(self.tensor.paths)}, params={count_params(self)})"
        )
