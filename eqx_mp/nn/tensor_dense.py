"""Linear projection followed by a tensor product (e3x's ``TensorDense``)."""

from __future__ import annotations

from typing import Any, Callable, Union

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import AnyArray, check_int, check_irreps, check_key, check_parity, typecheck
from ..config import Config
from ._common import count_params, irreps_str
from .dense import Dense, default_kernel_init
from .fused_tensor import FusedTensor
from .tensor import Tensor

__all__ = ["TensorDense"]


class TensorDense(eqx.Module):
    r"""Two linear projections of the input coupled by a tensor product (``e3x.nn.TensorDense``).

    .. math::
        \mathbf{a}, \mathbf{b} = \mathrm{split}(\mathrm{dense}(\mathbf{x})), \qquad
        \mathbf{y} = \mathrm{tensor}(\mathbf{a}, \mathbf{b})

    ``dense`` maps ``in_features`` to ``2 * features`` (first half ``a``, second half ``b``);
    ``tensor`` is a :class:`~eqx_mp.nn.Tensor`, or with ``use_fused_tensor=True`` a
    :class:`~eqx_mp.nn.FusedTensor`, of max degree ``max_degree``.

    Attributes:
        dense: The :class:`~eqx_mp.nn.Dense` projection (e3x's ``'dense'``).
        tensor: The tensor product (e3x's ``'tensor'`` / ``'fused_tensor'``).

    Example:
        >>> import jax, jax.numpy as jnp, eqx_mp
        >>> td = eqx_mp.nn.TensorDense(8, 1, features=4, max_degree=2, key=jax.random.key(0))
        >>> td(jnp.ones((5, 2, 4, 8))).shape
        (5, 2, 9, 4)
    """

    dense: Dense
    tensor: Union[Tensor, FusedTensor]
    in_features: int = eqx.field(static=True)
    in_max_degree: int = eqx.field(static=True)
    in_parity: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    max_degree: int = eqx.field(static=True)
    out_parity: int = eqx.field(static=True)
    use_bias: bool = eqx.field(static=True)
    include_pseudotensors: bool = eqx.field(static=True)
    cartesian_order: bool = eqx.field(static=True)
    use_fused_tensor: bool = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)
    precision: Any = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        in_max_degree: int,
        *,
        in_parity: int = 2,
        features: int | None = None,
        max_degree: int | None = None,
        use_bias: bool = True,
        include_pseudotensors: bool = True,
        cartesian_order: bool = Config.cartesian_order,
        use_fused_tensor: bool = Config.use_fused_tensor,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        dense_kernel_init: Callable[..., jax.Array] = default_kernel_init,
        dense_bias_init: Callable[..., jax.Array] = jax.nn.initializers.zeros,
        tensor_kernel_init: Callable[..., Any] | None = None,
        key: jax.Array,
    ):
        """Build the layer eagerly (e3x infers the input sizes at ``init``; here they are given).

        Arguments:
            in_features: Feature size ``F_in`` of the inputs.
            in_max_degree: Maximum degree ``L_in`` of the inputs.
            in_parity: Parity-axis size of the inputs (1 or 2).
            features: Output features ``F_out`` (default ``F_in``).
            max_degree: Output maximum degree (default ``L_in``; at most ``2 * L_in``).
            use_bias: Whether the ``Dense`` projection has a bias.
            include_pseudotensors: If ``False``, paths producing pseudotensors are omitted.
            cartesian_order: If ``True``, Cartesian order is assumed.
            use_fused_tensor: Use :class:`FusedTensor` instead of :class:`Tensor`.
            dtype: dtype of the computation (default: promote inputs and parameters).
            param_dtype: dtype of the parameters.
            precision: ``jax.lax.Precision`` of the matrix products.
            dense_kernel_init: Initializer of the projection weights (default LeCun normal).
            dense_bias_init: Initializer of the projection bias (default zeros).
            tensor_kernel_init: Initializer of the tensor kernel (default e3x's).
            key: Keyword-only PRNG key.

        Raises:
            ValueError: If ``max_degree > 2 * in_max_degree`` (e3x's message) or a size is invalid.
        """
        check_key(key, "TensorDense")
        self.in_features = check_int(in_features, "in_features", minimum=1)
        self.in_max_degree = check_int(in_max_degree, "in_max_degree")
        self.in_parity = check_parity(in_parity, "in_parity")
        self.features = (
            self.in_features if features is None else check_int(features, "features", minimum=1)
        )
        self.use_bias = bool(use_bias)
        self.include_pseudotensors = bool(include_pseudotensors)
        self.cartesian_order = bool(cartesian_order)
        self.use_fused_tensor = bool(use_fused_tensor)
        self.dtype, self.precision = dtype, precision
        kd, kt = jax.random.split(key)
        common = dict(dtype=dtype, param_dtype=param_dtype, precision=precision)
        self.dense = Dense(self.in_features, 2 * self.features, self.in_max_degree,
                           parity=self.in_parity, use_bias=self.use_bias,
                           kernel_init=dense_kernel_init, bias_init=dense_bias_init, key=kd,
                           **common)
        cls = FusedTensor if self.use_fused_tensor else Tensor
        self.tensor = cls(self.features, self.in_max_degree, self.in_max_degree,
                          parity1=self.in_parity, parity2=self.in_parity, max_degree=max_degree,
                          include_pseudotensors=include_pseudotensors,
                          cartesian_order=cartesian_order, kernel_init=tensor_kernel_init, key=kt,
                          **common)
        self.max_degree, self.out_parity = self.tensor.max_degree, self.tensor.out_parity

    def _precheck(self, inputs: Any) -> None:
        check_irreps(
            inputs,
            "inputs",
            parity=self.in_parity,
            max_degree=self.in_max_degree,
            features=self.in_features,
            what=f"(TensorDense: in_parity={self.in_parity}, in_max_degree={self.in_max_degree}, "
            f"in_features={self.in_features})",
        )

    @typecheck(precheck=_precheck)
    def __call__(
        self,
        inputs: Float[
            AnyArray, "... {self.in_parity} ({self.in_max_degree}+1)**2 {self.in_features}"
        ],
    ) -> Float[Array, "... {self.out_parity} ({self.max_degree}+1)**2 {self.features}"]:
        """Tensor product of two linear projections of ``inputs``.

        Arguments:
            inputs: ``(..., in_parity, (in_max_degree+1)**2, in_features)``.

        Returns:
            ``(..., out_parity, (max_degree+1)**2, features)``.
        """
        x1, x2 = jnp.split(self.dense._apply(jnp.asarray(inputs)), 2, axis=-1)
        return self.tensor._apply(x1, x2)

    def __repr__(self) -> str:
        kind = "FusedTensor" if self.use_fused_tensor else "Tensor"
        return (
            f"TensorDense([{irreps_str(self.in_parity, self.in_max_degree)}] x {self.in_features} -> "
            f"[{irreps_str(self.out_parity, self.max_degree)}] x {self.features}, {kind}, "
            f"params={count_params(self)})"
        )
