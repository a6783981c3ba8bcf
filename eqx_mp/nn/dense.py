"""Equivariant linear layer (e3x's ``Dense``): one weight matrix per degree and parity."""

from __future__ import annotations

from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import AnyArray, check_int, check_irreps, check_key, check_parity, typecheck
from ._common import count_params, irreps_str, promote_dtype

__all__ = ["Dense"]

default_kernel_init = jax.nn.initializers.lecun_normal()


class Dense(eqx.Module):
    r"""A linear map over the feature axis with separate weights for every degree and parity.

    ``y[..., p, l, m, :] = x[..., p, l, m, :] @ W[p, l] (+ b on the scalar channel p=0, l=0)``.
    Equivalent to ``e3x.nn.Dense``; mixing different ``m`` or degrees would break equivariance,
    mixing features does not.

    Attributes:
        kernel: ``(parity, max_degree+1, in_features, features)`` weights. For ``parity=1`` entry
            ``[0, l]`` is e3x's parameter ``'{l}+'`` (even ``l``) or ``'{l}-'`` (odd ``l``); for
            ``parity=2`` entries ``[0, l]`` and ``[1, l]`` are ``'{l}+'`` and ``'{l}-'``.
        bias: ``(features,)`` bias of the scalar (``0+``) channel, or ``None``.
    """

    kernel: Float[Array, "P L F G"]
    bias: Float[Array, " G"] | None
    in_features: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    max_degree: int = eqx.field(static=True)
    parity: int = eqx.field(static=True)
    use_bias: bool = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)
    precision: Any = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        features: int,
        max_degree: int,
        *,
        parity: int = 2,
        use_bias: bool = True,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        kernel_init: Callable[..., jax.Array] = default_kernel_init,
        bias_init: Callable[..., jax.Array] = jax.nn.initializers.zeros,
        key: jax.Array,
    ):
        """Build the layer eagerly.

        Arguments:
            in_features: Size ``F_in`` of the input feature axis.
            features: Size ``F_out`` of the output feature axis.
            max_degree: Maximum degree ``L`` of the features (axis -2 has ``(L+1)**2`` entries).
            parity: Size of the parity axis of inputs and outputs, 1 or 2.
            use_bias: Whether to add a bias to the scalar channel (``l = 0``, even parity).
            dtype: dtype of the computation (default: promote inputs and parameters).
            param_dtype: dtype of the parameters.
            precision: ``jax.lax.Precision`` of the matrix products.
            kernel_init: ``init(key, (in_features, features), dtype)`` for each weight matrix.
            bias_init: ``init(key, (features,), dtype)`` for the bias.
            key: Keyword-only PRNG key.
        """
        check_key(key, "Dense")
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.features = check_int(features, "features", minimum=1)
        self.max_degree = check_int(max_degree, "max_degree")
        self.parity = check_parity(parity, "parity")
        self.use_bias = bool(use_bias)
        self.dtype = dtype
        self.precision = precision
        keys = jax.random.split(key, self.parity * (self.max_degree + 1) + 1)
        mats = [
            kernel_init(keys[i], (self.in_features, self.features), param_dtype)
            for i in range(self.parity * (self.max_degree + 1))
        ]
        self.kernel = jnp.stack(mats).reshape(
            self.parity, self.max_degree + 1, self.in_features, self.features
        )
        self.bias = bias_init(keys[-1], (self.features,), param_dtype) if self.use_bias else None

    def _precheck(self, inputs: Any) -> None:
        check_irreps(
            inputs,
            "inputs",
            parity=self.parity,
            max_degree=self.max_degree,
            features=self.in_features,
            what=f"(Dense: parity={self.parity}, max_degree={self.max_degree}, "
            f"in_features={self.in_features})",
        )

    @typecheck(precheck=_precheck)
    def __call__(
        self,
        inputs: Float[AnyArray, "... {self.parity} ({self.max_degree}+1)**2 {self.in_features}"],
    ) -> Float[Array, "... {self.parity} ({self.max_degree}+1)**2 {self.features}"]:
        """Apply the layer.

        Arguments:
            inputs: ``(..., parity, (max_degree+1)**2, in_features)``.

        Returns:
            ``(..., parity, (max_degree+1)**2, features)``.
        """
        return self._apply(jnp.asarray(inputs))  # an array (precheck)

    def _apply(self, inputs: jax.Array) -> jax.Array:
        """The computation without the call-boundary checks, for callers that have checked their
        inputs already (:class:`~eqx_mp.nn.TensorDense`, the attention modules)."""
        x, kernel, bias = promote_dtype(inputs, self.kernel, self.bias, dtype=self.dtype)
        rows = []
        for p in range(self.parity):
            blocks = []
            for l in range(self.max_degree + 1):
                y = jnp.matmul(x[..., p, l * l : (l + 1) ** 2, :], kernel[p, l], precision=self.precision)
                if bias is not None and p == 0 and l == 0:
                    y = y + bias
                blocks.append(y)
            rows.append(jnp.concatenate(blocks, axis=-2) if len(blocks) > 1 else blocks[0])
        return jnp.stack(rows, axis=-3)

    def __repr__(self) -> str:
        return (
            f"Dense({irreps_str(self.parity, self.max_degree)} x {self.in_features} -> "
            f"{self.features} features, bias={self.use_bias}, params={count_params(self)})"
        )
