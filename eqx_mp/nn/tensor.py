"""Tensor product of two irreps features with one learnable weight per coupling path (e3x's ``Tensor``)."""

from __future__ import annotations

from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._typing import AnyArray, Array, Float, typecheck
from ._common import check_key, count_params, irreps_str, promote_dtype
from ._cg import allowed_paths, bilinear, tensor_table
from ._tensor_common import precheck_pair, resolve_config
from .initializers import tensor_lecun_normal

__all__ = ["Tensor"]


class Tensor(eqx.Module):
    r"""Tensor product of two equivariant features, weighted per coupling path and feature.

    ``z^(c_γ) = sum_{(a_α, b_β) valid} w_(a_α, b_β, c_γ) ∘ (x^(a_α) ⊗^(c_γ) y^(b_β))`` exactly as
    ``e3x.nn.Tensor``, but contracted over the nonzero Clebsch-Gordan entries of allowed paths only
    (see :mod:`eqx_mp.nn._cg`) instead of a dense ``(L1+1)^2 x (L2+1)^2 x (L3+1)^2`` array.

    Attributes:
        kernel: ``(parity1, max_degree1+1, parity2, max_degree2+1, out_parity, max_degree+1,
            num_features)``, e3x's layout. Entries of forbidden paths are unused (zero at init,
            zero gradient).
    """

    kernel: Float[Array, "P1 L1 P2 L2 P3 L3 F"]
    num_features: int = eqx.field(static=True)
    max_degree1: int = eqx.field(static=True)
    max_degree2: int = eqx.field(static=True)
    parity1: int = eqx.field(static=True)
    parity2: int = eqx.field(static=True)
    max_degree: int = eqx.field(static=True)
    out_parity: int = eqx.field(static=True)
    include_pseudotensors: bool = eqx.field(static=True)
    cartesian_order: bool = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)
    precision: Any = eqx.field(static=True)

    def __init__(
        self,
        num_features: int,
        max_degree1: int,
        max_degree2: int,
        *,
        parity1: int = 2,
        parity2: int = 2,
        max_degree: int | None = None,
        include_pseudotensors: bool = True,
        cartesian_order: bool = True,
        dtype: Any = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
        kernel_init: Callable[..., jax.Array] | None = None,
        key: jax.Array | None = None,
    ):
        """Build the layer eagerly.

        Arguments:
            num_features: Feature size ``F`` of both inputs and the output.
            max_degree1: Maximum degree ``L1`` of ``inputs1``.
            max_degree2: Maximum degree ``L2`` of ``inputs2``.
            parity1: Parity-axis size of ``inputs1`` (1 or 2).
            parity2: Parity-axis size of ``inputs2`` (1 or 2).
            max_degree: Output maximum degree ``L3`` (default ``max(L1, L2)``; at most ``L1+L2``).
            include_pseudotensors: If ``False``, paths producing pseudotensors are omitted and the
                output has one parity channel.
            cartesian_order: If ``True``, Cartesian order of the irreps components is assumed.
            dtype: dtype of the computation (default: promote inputs and kernel).
            param_dtype: dtype of the kernel.
            precision: Kept for e3x compatibility (the contraction is elementwise, so unused).
            kernel_init: ``init(key, shape, dtype)`` (default e3x's ``tensor_lecun_normal()``).
            key: Keyword-only PRNG key.
        """
        check_key(key, "Tensor")
        (self.num_features, self.max_degree1, self.max_degree2, self.parity1, self.parity2,
         self.max_degree, self.out_parity) = resolve_config(
            num_features, max_degree1, max_degree2, parity1, parity2, max_degree, include_pseudotensors
        )
        self.include_pseudotensors = bool(include_pseudotensors)
        self.cartesian_order = bool(cartesian_order)
        self.dtype = dtype
        self.precision = precision
        init = tensor_lecun_normal() if kernel_init is None else kernel_init
        shape = (self.parity1, self.max_degree1 + 1, self.parity2, self.max_degree2 + 1,
                 self.out_parity, self.max_degree + 1, self.num_features)
        self.kernel = init(key, shape, param_dtype)

    @property
    def out_max_degree(self) -> int:
        """Maximum degree of the output (alias of ``max_degree``)."""
        return self.max_degree

    @property
    def paths(self) -> tuple[tuple[int, int, int, int, int, int], ...]:
        """Allowed coupling paths ``(p1, l1, p2, l2, p3, l3)`` (static)."""
        return allowed_paths(self.parity1, self.max_degree1, self.parity2, self.max_degree2,
                             self.out_parity, self.max_degree)

    def path_kernel(self) -> jax.Array:
        """Kernel rows of the allowed paths, ``(num_paths, num_features)``."""
        idx = tuple(np.asarray(i, dtype=np.int32) for i in zip(*self.paths))
        return self.kernel[idx]

    def _table(self):
        return tensor_table(self.parity1, self.max_degree1, self.parity2, self.max_degree2,
                            self.out_parity, self.max_degree, self.cartesian_order)

    @typecheck(precheck=precheck_pair)
    def __call__(
        self,
        inputs1: Float[AnyArray, "*b1 {self.parity1} ({self.max_degree1}+1)**2 {self.num_features}"],
        inputs2: Float[AnyArray, "*b2 {self.parity2} ({self.max_degree2}+1)**2 {self.num_features}"],
    ) -> Float[Array, "... {self.out_parity} ({self.max_degree}+1)**2 {self.num_features}"]:
        """Compute the weighted tensor product.

        Arguments:
            inputs1: ``(..., parity1, (max_degree1+1)**2, num_features)``.
            inputs2: ``(..., parity2, (max_degree2+1)**2, num_features)``; leading axes broadcast.

        Returns:
            ``(..., out_parity, (max_degree+1)**2, num_features)``.
        """
        return self._apply(inputs1, inputs2)

    def _apply(self, inputs1: jax.Array, inputs2: jax.Array) -> jax.Array:
        return apply_tensor_product(self, inputs1, inputs2, self.path_kernel())

    def __repr__(self) -> str:
        return (
            f"Tensor([{irreps_str(self.parity1, self.max_degree1)}] x "
            f"[{irreps_str(self.parity2, self.max_degree2)}] -> "
            f"[{irreps_str(self.out_parity, self.max_degree)}], F={self.num_features}, "
            f"paths={len(self.paths)}, params={count_params(self)})"
        )


def apply_tensor_product(module: Any, inputs1: jax.Array, inputs2: jax.Array, k: jax.Array) -> jax.Array:
    """Run the sparse CG bilinear map of ``module`` (Tensor or FusedTensor) with path kernel ``k``."""
    x1, x2, k = promote_dtype(inputs1, inputs2, k, dtype=module.dtype)
    f = module.num_features
    # Explicit sizes rather than -1: a reshape with -1 fails on zero-size batches (E = 0 pairs).
    u = x1.reshape(x1.shape[:-3] + (x1.shape[-3] * x1.shape[-2], f))
    v = x2.reshape(x2.shape[:-3] + (x2.shape[-3] * x2.shape[-2], f))
    out = bilinear(module._table(), u, v, k)
    return out.reshape(out.shape[:-2] + (module.out_parity, (module.max_degree + 1) ** 2, f))
