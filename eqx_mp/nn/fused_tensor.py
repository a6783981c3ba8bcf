"""Fused tensor product (e3x's ``FusedTensor``): fewer parameters, same CG machinery as ``Tensor``.

e3x computes it by mapping irreps to matrices, multiplying matrices and projecting back. Every
step is equivariant, so for each degree triple the composite equals ``alpha(l1, l2, l3)`` times the
Clebsch-Gordan coupling (computed once in :func:`~eqx_mp.nn._cg.fused_path_scales`). The
layer is therefore a :class:`~eqx_mp.nn.Tensor` whose per-path kernel is the rank-one product
``alpha * w_in1[l1] * w_in2[l2] * w_out[l3]`` of e3x's eight fused parameters, and it reuses the
same sparse contraction.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._cg import allowed_paths, fused_path_scales, parity_entries
from .initializers import fused_tensor_normal
from .tensor_product import AbstractTensorProduct

__all__ = ["FusedTensor"]


class FusedTensor(AbstractTensorProduct):
    r"""Fused tensor product of two equivariant features (``e3x.nn.FusedTensor``).

    Attributes:
        kernel_e1, kernel_o1: ``(max_degree1+1, num_features)`` weights of the even/odd irreps of
            ``inputs1``.
        kernel_e2, kernel_o2: ``(max_degree2+1, num_features)``, likewise for ``inputs2``.
        kernel_eee, kernel_ooe, kernel_eoo, kernel_oeo: ``(max_degree+1, num_features)`` output
            weights of the even x even -> even, odd x odd -> even, even x odd -> odd and
            odd x even -> odd couplings.
    """

    kernel_e1: Float[Array, "L1 F"]
    kernel_o1: Float[Array, "L1 F"]
    kernel_e2: Float[Array, "L2 F"]
    kernel_o2: Float[Array, "L2 F"]
    kernel_eee: Float[Array, "L3 F"]
    kernel_ooe: Float[Array, "L3 F"]
    kernel_eoo: Float[Array, "L3 F"]
    kernel_oeo: Float[Array, "L3 F"]

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
        kernel_init: Callable[..., Callable[..., jax.Array]] | None = None,
        key: jax.Array,
    ):
        """Build the layer eagerly (arguments as :class:`~eqx_mp.nn.Tensor`).

        Arguments:
            num_features: Feature size ``F`` of both inputs and the output.
            max_degree1: Maximum degree ``L1`` of ``inputs1``.
            max_degree2: Maximum degree ``L2`` of ``inputs2``.
            parity1: Parity-axis size of ``inputs1`` (1 or 2).
            parity2: Parity-axis size of ``inputs2`` (1 or 2).
            max_degree: Output maximum degree (default ``max(L1, L2)``; at most ``L1+L2``).
            include_pseudotensors: If ``False``, pseudotensor outputs are omitted.
            cartesian_order: If ``True``, Cartesian order is assumed.
            dtype: dtype of the computation.
            param_dtype: dtype of the parameters.
            precision: Kept for e3x compatibility (unused: the contraction is elementwise).
            kernel_init: Factory ``kernel_init(scale, mask) -> init(key, shape, dtype)``
                (default e3x's ``fused_tensor_normal``), called with e3x's variance scales/masks.
            key: Keyword-only PRNG key.
        """
        self._configure(num_features, max_degree1, max_degree2, parity1, parity2, max_degree,
                        include_pseudotensors, cartesian_order, dtype, precision, key)
        factory = fused_tensor_normal if kernel_init is None else kernel_init
        l1, l2, l3, p1, p2 = self.max_degree1, self.max_degree2, self.max_degree, self.parity1, self.parity2
        lmax = max(l1, l2, l3)
        num_mat = 2 * math.ceil(lmax / 2) + 1
        var_in = 1.0 / math.sqrt(num_mat) * num_mat / min(l1 + 1, l2 + 1)
        if p1 == p2 == 2:
            var_out: Any = 0.5
        elif p1 == p2 == 1:
            var_out = 1.0 if (l1 == 0 or l2 == 0) else np.full((l3 + 1, 1), 2.0)
            if not np.isscalar(var_out):
                var_out[0] = 1.0
        else:
            var_out = 1.0
        even = (np.arange(lmax + 1) + 1) % 2
        odd = np.arange(lmax + 1) % 2
        mask_e1 = True if p1 == 2 else even[: l1 + 1, None].astype(bool)
        mask_o1 = True if p1 == 2 else odd[: l1 + 1, None].astype(bool)
        mask_e2 = True if p2 == 2 else even[: l2 + 1, None].astype(bool)
        mask_o2 = True if p2 == 2 else odd[: l2 + 1, None].astype(bool)
        mask_o3: Any = True
        if p1 == p2 == 1:
            mask_o3 = np.ones((l3 + 1, 1), dtype=bool)
            mask_o3[0] = False
        k = jax.random.split(key, 8)
        f = self.num_features
        self.kernel_e1 = factory(var_in, mask_e1)(k[0], (l1 + 1, f), param_dtype)
        self.kernel_o1 = factory(var_in, mask_o1)(k[1], (l1 + 1, f), param_dtype)
        self.kernel_e2 = factory(var_in, mask_e2)(k[2], (l2 + 1, f), param_dtype)
        self.kernel_o2 = factory(var_in, mask_o2)(k[3], (l2 + 1, f), param_dtype)
        self.kernel_eee = factory(var_out)(k[4], (l3 + 1, f), param_dtype)
        self.kernel_ooe = factory(var_out)(k[5], (l3 + 1, f), param_dtype)
        self.kernel_eoo = factory(var_out, mask_o3)(k[6], (l3 + 1, f), param_dtype)
        self.kernel_oeo = factory(var_out, mask_o3)(k[7], (l3 + 1, f), param_dtype)

    @property
    def paths(self) -> tuple[tuple[int, int, int, int, int, int], ...]:
        """Coupling paths with a nonzero fused coefficient ``(p1, l1, p2, l2, p3, l3)``."""
        scales = fused_path_scales(max(self.max_degree1, self.max_degree2, self.max_degree), self.cartesian_order)
        allowed = allowed_paths(self.parity1, self.max_degree1, self.parity2, self.max_degree2,
                                self.out_parity, self.max_degree)
        return tuple(p for p in allowed if (p[1], p[3], p[5]) in scales)

    def _path_index(self) -> tuple[np.ndarray, ...]:
        scales = fused_path_scales(max(self.max_degree1, self.max_degree2, self.max_degree), self.cartesian_order)
        d1 = {(p, l): d for p, l, d in parity_entries(self.parity1, self.max_degree1)}
        d2 = {(p, l): d for p, l, d in parity_entries(self.parity2, self.max_degree2)}
        rows = [
            (scales[(l1, l2, l3)], d1[(p1, l1)], l1, d2[(p2, l2)], l2, l3)
            for p1, l1, p2, l2, p3, l3 in self.paths
        ]
        cols = list(zip(*rows)) if rows else [()] * 6
        return tuple(np.asarray(c) for c in cols)

    def path_kernel(self) -> jax.Array:
        """Effective per-path kernel ``alpha * w_in1 * w_in2 * w_out``, ``(num_paths, F)``."""
        alpha, d1, l1, d2, l2, l3 = self._path_index()
        kin1 = jnp.stack([self.kernel_e1, self.kernel_o1])
        kin2 = jnp.stack([self.kernel_e2, self.kernel_o2])
        kout = jnp.stack([jnp.stack([self.kernel_eee, self.kernel_eoo]),
                          jnp.stack([self.kernel_oeo, self.kernel_ooe])])
        a = jnp.asarray(alpha, kin1.dtype)[:, None]
        return a * kin1[d1, l1] * kin2[d2, l2] * kout[d1, d2, l3]
