"""Configuration and call-time checks shared by Tensor and FusedTensor."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .._typing import ShapeError, check_degree, check_irreps, check_parity
from ._cg import output_parity


def resolve_config(
    num_features: int,
    max_degree1: int,
    max_degree2: int,
    parity1: int,
    parity2: int,
    max_degree: int | None,
    include_pseudotensors: bool,
) -> tuple[int, int, int, int, int, int, int]:
    """Validate sizes; return ``(F, L1, L2, P1, P2, L3, P3)`` with e3x's defaults and rules."""
    f = check_degree(num_features, "num_features", minimum=1)
    l1 = check_degree(max_degree1, "max_degree1")
    l2 = check_degree(max_degree2, "max_degree2")
    p1 = check_parity(parity1, "parity1")
    p2 = check_parity(parity2, "parity2")
    l3 = max(l1, l2) if max_degree is None else check_degree(max_degree, "max_degree")
    if l3 > l1 + l2:
        raise ValueError(
            f"max_degree for the tensor product of inputs with max_degree {l1} and {l2} can be at "
            f"most {l1 + l2}, received max_degree={l3}"
        )
    p3 = output_parity(p1, l1, p2, l2, l3, bool(include_pseudotensors))
    return f, l1, l2, p1, p2, l3, p3


def precheck_pair(module: Any, inputs1: Any, inputs2: Any) -> None:
    """Name the axis when ``inputs1``/``inputs2`` do not match the module's sizes."""
    what = f"({type(module).__name__}: parity1={module.parity1}, max_degree1={module.max_degree1}, " \
        f"parity2={module.parity2}, max_degree2={module.max_degree2}, num_features={module.num_features})"
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
