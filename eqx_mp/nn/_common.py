"""Small helpers shared by the nn modules: dtype promotion, parameter counting, repr."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def promote_dtype(*arrays: Any, dtype: Any = None) -> tuple[Any, ...]:
    """Cast arrays to ``dtype`` or, if ``None``, to their common result type (flax's rule)."""
    present = [a for a in arrays if a is not None]
    target = jnp.result_type(*present) if dtype is None else dtype
    return tuple(None if a is None else jnp.asarray(a, target) for a in arrays)


def count_params(module: eqx.Module) -> int:
    """Number of scalar parameters (inexact array leaves) in a module."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(module, eqx.is_inexact_array))
    return int(sum(np.prod(x.shape) for x in leaves))


def irreps_str(parity: int, max_degree: int) -> str:
    """Human-readable irreps content, e.g. ``'0e+1o+2e'`` (P=1) or ``'0e+0o+1e+1o'`` (P=2)."""
    if parity == 1:
        return "+".join(f"{l}{'eo'[l % 2]}" for l in range(max_degree + 1))
    return "+".join(f"{l}{p}" for l in range(max_degree + 1) for p in "eo")

