"""The abstract tensor product shared by :class:`~eqx_mp.nn.Tensor` and
:class:`~eqx_mp.nn.FusedTensor`: sizes, coupling paths, and the call through the contraction engine.

A concrete tensor product only says which coupling paths it has and how its parameters give one
weight per path and feature (:meth:`AbstractTensorProduct.path_kernel`); everything else (checks,
the sparse Clebsch-Gordan contraction, its derivatives) is here, once.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import (
    AnyArray,
    ShapeError,
    check_int,
    check_irreps,
    check_key,
    check_parity,
    typecheck,
)
from ._cg import Table, bilinear, output_parity, tensor_table
from ._common import count_params, irreps_str, promote_dtype

__all__ = ["AbstractTensorProduct"]


def _precheck(module: AbstractTensorProduct, inputs1: Any, inputs2: Any) -> None:
    """Name the axis when ``inputs1``/``inputs2`` do not match the module's sizes."""
    what = (f"({type(module).__name__}: parity1={module.parity1}, max_degree1={module.max_degree1}, "
            f"parity2={module.parity2}, max_degree2={module.max_degree2}, "
            f"num_features={module.num_features})")
    check_irreps(inputs1, "inputs1", parity=module.parity1, max_degree=module.max_degree1,
                 features=module.num_features, what=what)
    check_irreps(inputs2, "inputs2", parity=module.parity2, max_degree=module.max_degree2,
                 features=module.num_features, what=what)
    try:
        jnp.broadcast_shapes(inputs1.shape[:-3], inputs2.shape[:-3])
    except ValueError:
        raise ShapeError(
            f"leading (batch) axes of inputs1 {inputs1.shape[:-3]} and inputs2 "
            f"{inputs2.shape[:-3]} do not broadcast"
        ) from None


class AbstractTensorProduct(eqx.Module):
    """Equivariant tensor product of two irreps features with one weight per path and feature.

    Attributes:
        num_features: Feature size ``F`` of both inputs and the output.
        max_degree1, max_degree2: Maximum degrees ``L1``, ``L2`` of the inputs.
        parity1, parity2: Parity-axis sizes of the inputs (1 or 2).
        max_degree: Output maximum degree ``L3`` (e3x's name).
        out_parity: Parity-axis size of the output (e3x's rule, see
            :func:`~eqx_mp.nn._cg.output_parity`).
        include_pseudotensors: Whether pseudotensor outputs are kept.
        cartesian_order: Whether irreps components are in Cartesian order.
        dtype: dtype of the computation (``None``: promote inputs and parameters).
        precision: Kept for e3x compatibility (the contraction is elementwise).

    Subclasses set these with :meth:`_configure` in their ``__init__`` and implement
    :attr:`paths` and :meth:`path_kernel`.
    """

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

    def _configure(
        self, num_features: int, max_degree1: int, max_degree2: int, parity1: int, parity2: int,
        max_degree: int | None, include_pseudotensors: bool, cartesian_order: bool, dtype: Any,
        precision: Any, key: Any,
    ) -> None:
        """Validate and store the sizes (e3x's defaults and rules); called by ``__init__``."""
        check_key(key, type(self).__name__)
        self.num_features = check_int(num_features, "num_features", minimum=1)
        self.max_degree1 = l1 = check_int(max_degree1, "max_degree1")
        self.max_degree2 = l2 = check_int(max_degree2, "max_degree2")
        self.parity1 = check_parity(parity1, "parity1")
        self.parity2 = check_parity(parity2, "parity2")
        l3 = max(l1, l2) if max_degree is None else check_int(max_degree, "max_degree")
        if l3 > l1 + l2:
            raise ValueError(
                f"max_degree for the tensor product of inputs with max_degree {l1} and {l2} can be "
                f"at most {l1 + l2}, received max_degree={l3}"
            )
        self.max_degree = l3
        self.out_parity = output_parity(self.parity1, l1, self.parity2, l2, l3, bool(include_pseudotensors))
        self.include_pseudotensors = bool(include_pseudotensors)
        self.cartesian_order = bool(cartesian_order)
        self.dtype = dtype
        self.precision = precision

    @property
    @abc.abstractmethod
    def paths(self) -> tuple[tuple[int, int, int, int, int, int], ...]:
        """Coupling paths ``(p1, l1, p2, l2, p3, l3)`` the product contracts (static)."""

    @abc.abstractmethod
    def path_kernel(self) -> Float[Array, "num_paths {self.num_features}"]:
        """One weight per path (rows in :attr:`paths` order) and feature, ``(num_paths, F)``."""

    @property
    def out_max_degree(self) -> int:
        """Maximum degree of the output (alias of ``max_degree``)."""
        return self.max_degree

    def coupling_table(self) -> Table:
        """The static Clebsch-Gordan term table of :attr:`paths` (what the engine contracts)."""
        return tensor_table(self.parity1, self.max_degree1, self.parity2, self.max_degree2,
                            self.out_parity, self.max_degree, self.cartesian_order, self.paths)

    @typecheck(precheck=_precheck)
    def __call__(
        self,
        inputs1: Float[AnyArray, "*b1 {self.parity1} ({self.max_degree1}+1)**2 {self.num_features}"],
        inputs2: Float[AnyArray, "*b2 {self.parity2} ({self.max_degree2}+1)**2 {self.num_features}"],
    ) -> Float[Array, "... {self.out_parity} ({self.max_degree}+1)**2 {self.num_features}"]:
        """Compute the tensor product.

        Arguments:
            inputs1: ``(..., parity1, (max_degree1+1)**2, num_features)``.
            inputs2: ``(..., parity2, (max_degree2+1)**2, num_features)``; leading axes broadcast
                against ``inputs1``'s.

        Returns:
            ``(..., out_parity, (max_degree+1)**2, num_features)``.
        """
        return self._apply(jnp.asarray(inputs1), jnp.asarray(inputs2))  # arrays (precheck)

    def _apply(self, inputs1: jax.Array, inputs2: jax.Array) -> jax.Array:
        """The computation without the call-boundary checks (used by composite modules)."""
        x1, x2, k = promote_dtype(inputs1, inputs2, self.path_kernel(), dtype=self.dtype)
        f = self.num_features
        # Explicit sizes rather than -1: a reshape with -1 fails on zero-size batches.
        u = x1.reshape(x1.shape[:-3] + (x1.shape[-3] * x1.shape[-2], f))
        v = x2.reshape(x2.shape[:-3] + (x2.shape[-3] * x2.shape[-2], f))
        out = bilinear(self.coupling_table(), u, v, k)
        return out.reshape(out.shape[:-2] + (self.out_parity, (self.max_degree + 1) ** 2, f))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}([{irreps_str(self.parity1, self.max_degree1)}] x "
            f"[{irreps_str(self.parity2, self.max_degree2)}] -> "
            f"[{irreps_str(self.out_parity, self.max_degree)}], F={self.num_features}, "
            f"paths={len(self.paths)}, params={count_params(self)})"
        )
