"""Tensor product of two irreps features with one learnable weight per coupling path (e3x's ``Tensor``)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._cg import allowed_paths
from .initializers import tensor_lecun_normal
from .tensor_product import AbstractTensorProduct

__all__ = ["Tensor"]


class Tensor(AbstractTensorProduct):
    r"""Tensor product of two equivariant features, weighted per coupling path and feature.

    ``z^(c_γ) = sum_{(a_α, b_β) valid} w_(a_α, b_β, c_γ) ∘ (x^(a_α) ⊗^(c_γ) y^(b_β))`` exactly as
    ``e3x.nn.Tensor``, but contracted over the nonzero Clebsch-Gordan entries of allowed paths only
    (see :mod:`eqx_mp.nn._cg`) instead of a dense ``(L1+1)^2 x (L2+1)^2 x (L3+1)^2`` array.

    Attributes:
        kernel: ``(parity1, max_degree1+1, parity2, max_degree2+1, out_parity, max_degree+1,
            num_features)``, e3x's layout. Entries of forbidden paths are unused (zero at init,
            zero gradient).

    Example:
        >>> import jax, jax.numpy as jnp, eqx_mp
        >>> t = eqx_mp.nn.Tensor(8, 1, 2, key=jax.random.key(0))
        >>> t(jnp.ones((5, 2, 4, 8)), jnp.ones((5, 2, 9, 8))).shape
        (5, 2, 9, 8)
    """

    kernel: Float[Array, "P1 L1 P2 L2 P3 L3 F"]

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
        key: jax.Array,
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
        self._configure(num_features, max_degree1, max_degree2, parity1, parity2, max_degree,
                        include_pseudotensors, cartesian_order, dtype, precision, key)
        init = tensor_lecun_normal() if kernel_init is None else kernel_init
        shape = (self.parity1, self.max_degree1 + 1, self.parity2, self.max_degree2 + 1,
                 self.out_parity, self.max_degree + 1, self.num_features)
        self.kernel = init(key, shape, param_dtype)

    @property
    def paths(self) -> tuple[tuple[int, int, int, int, int, int], ...]:
        """All allowed coupling paths ``(p1, l1, p2, l2, p3, l3)`` (static)."""
        return allowed_paths(self.parity1, self.max_degree1, self.parity2, self.max_degree2,
                             self.out_parity, self.max_degree)

    def path_kernel(self) -> jax.Array:
        """Kernel rows of the allowed paths, ``(num_paths, num_features)``."""
        idx = tuple(np.asarray(i, dtype=np.int32) for i in zip(*self.paths))
        return self.kernel[idx]
