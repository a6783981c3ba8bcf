"""Initializers for tensor-product kernels (e3x's ``e3x.nn.initializers`` names and semantics).

Standard initializers cannot infer fan-in/fan-out from a tensor kernel's shape
``(P1, L1+1, P2, L2+1, P3, L3+1, F)``: the fans are counted over the allowed coupling paths, and
the entries of parity-forbidden or triangle-forbidden paths are initialised to zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from ._cg import parity_entries

__all__ = [
    "tensor_variance_scaling",
    "tensor_lecun_normal",
    "tensor_lecun_uniform",
    "tensor_glorot_normal",
    "tensor_glorot_uniform",
    "tensor_xavier_normal",
    "tensor_xavier_uniform",
    "tensor_he_normal",
    "tensor_he_uniform",
    "tensor_kaiming_normal",
    "tensor_kaiming_uniform",
    "fused_tensor_normal",
    "fused_tensor_uniform",
]

Initializer = Callable[..., jax.Array]
Distribution = Literal["truncated_normal", "normal", "uniform"]


def tensor_fans_and_mask(shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fan_in, fan_out, mask)`` of a tensor kernel of shape ``(P1, L1+1, P2, L2+1, P3, L3+1, F)``.

    ``fan_in`` has shape ``(1, 1, 1, 1, P3, L3+1, 1)`` (paths into each output irrep), ``fan_out``
    ``(P1, L1+1, P2, L2+1, 1, 1, 1)`` and ``mask`` (bool, full shape) marks allowed paths.
    """
    if len(shape) != 7:
        raise ValueError(f"shape should be len=7, received len={len(shape)}")
    fan_in = np.zeros((1, 1, 1, 1, shape[4], shape[5], 1))
    fan_out = np.zeros((shape[0], shape[1], shape[2], shape[3], 1, 1, 1))
    mask = np.zeros(tuple(shape), dtype=bool)
    for p1, l1, d1 in parity_entries(shape[0], shape[1] - 1):
        for p2, l2, d2 in parity_entries(shape[2], shape[3] - 1):
            for p3, l3, d3 in parity_entries(shape[4], shape[5] - 1):
                if (d1 + d2) % 2 == d3 and abs(l1 - l2) <= l3 <= l1 + l2:
                    mask[p1, l1, p2, l2, p3, l3, :] = True
                    fan_in[0, 0, 0, 0, p3, l3, 0] += 1
                    fan_out[p1, l1, p2, l2, 0, 0, 0] += 1
    return fan_in, fan_out, mask


def random_array(
    key: jax.Array,
    shape: Sequence[int],
    distribution: Distribution,
    variance: Any,
    dtype: Any,
) -> jax.Array:
    """Random array with the given (broadcastable) variance, as e3x draws it."""
    if distribution == "truncated_normal":
        stddev = jnp.sqrt(jnp.asarray(variance, dtype)) / jnp.asarray(0.87962566103423978, dtype)
        return stddev * jax.random.truncated_normal(key, -2, 2, tuple(shape), dtype)
    if distribution == "normal":
        return jnp.sqrt(jnp.asarray(variance, dtype)) * jax.random.normal(key, tuple(shape), dtype)
    if distribution == "uniform":
        return jnp.sqrt(3 * jnp.asarray(variance, dtype)) * jax.random.uniform(
            key, tuple(shape), dtype, minval=-1, maxval=1
        )
    raise ValueError(f"invalid distribution {distribution!r}; use 'truncated_normal', 'normal' or 'uniform'")


def tensor_variance_scaling(
    scale: float,
    mode: Literal["fan_in", "fan_out", "fan_avg"],
    distribution: Distribution,
    dtype: Any = jnp.float_,
) -> Initializer:
    """Variance scaling for tensor-product kernels (like ``jax.nn.initializers.variance_scaling``).

    Arguments:
        scale: Scaling factor for the variance.
        mode: ``'fan_in'``, ``'fan_out'`` or ``'fan_avg'``; fans count allowed coupling paths.
        distribution: ``'truncated_normal'``, ``'normal'`` or ``'uniform'``.
        dtype: Default dtype of the parameters.

    Returns:
        ``init(key, shape, dtype=dtype)`` for kernels of shape ``(P1, L1+1, P2, L2+1, P3, L3+1, F)``;
        forbidden paths are zero.
    """
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"invalid mode {mode!r} for variance scaling initializer")

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = dtype) -> jax.Array:
        dtype = jax.dtypes.canonicalize_dtype(dtype)
        fan_in, fan_out, mask = tensor_fans_and_mask(shape)
        den = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        den = np.where(den > 0, den, 1.0)
        params = random_array(key, shape, distribution, scale / den, dtype)
        return jnp.where(mask, params, 0)

    return init


def tensor_lecun_normal(dtype: Any = jnp.float_) -> Initializer:
    """Tensor-kernel LeCun normal (fan_in, truncated normal); e3x's Tensor default."""
    return tensor_variance_scaling(1.0, "fan_in", "truncated_normal", dtype)


def tensor_lecun_uniform(dtype: Any = jnp.float_) -> Initializer:
    """Tensor-kernel LeCun uniform (fan_in, uniform)."""
    return tensor_variance_scaling(1.0, "fan_in", "uniform", dtype)


def tensor_glorot_normal(dtype: Any = jnp.float_) -> Initializer:
    """Tensor-kernel Glorot normal (fan_avg, truncated normal)."""
    return tensor_variance_scaling(1.0, "fan_avg", "truncated_normal", dtype)


def tensor_glorot_uniform(dtype: Any = jnp.float_) -> Initializer:
    """Tensor-kernel Glorot uniform (fan_avg, uniform)."""
    return tensor_variance_scaling(1.0, "fan_avg", "uniform", dtype)


def tensor_he_normal(dtype: Any = jnp.float_) -> Initializer:
    """Tensor-kernel He normal (scale 2, fan_in, truncated normal)."""
    return tensor_variance_scaling(2.0, "fan_in", "truncated_normal", dtype)


def tensor_he_uniform(dtype: Any = jnp.float_) -> Initializer:
    """Tensor-kernel He uniform (scale 2, fan_in, uniform)."""
    return tensor_variance_scaling(2.0, "fan_in", "uniform", dtype)


tensor_xavier_normal = tensor_glorot_normal
tensor_xavier_uniform = tensor_glorot_uniform
tensor_kaiming_normal = tensor_he_normal
tensor_kaiming_uniform = tensor_he_uniform


def _fused_init(distribution: Distribution, scale: Any, mask: Any, dtype: Any) -> Initializer:
    def init(key: jax.Array, shape: Sequence[int], dtype: Any = dtype) -> jax.Array:
        dtype = jax.dtypes.canonicalize_dtype(dtype)
        params = random_array(key, shape, distribution, scale, dtype)
        return jnp.where(mask, params, 0)

    return init


def fused_tensor_normal(scale: Any = 1.0, mask: Any = True, dtype: Any = jnp.float_) -> Initializer:
    """FusedTensor kernel initializer factory (truncated normal); e3x's FusedTensor default.

    Arguments:
        scale: Variance (float or array broadcastable to the kernel shape).
        mask: Entries where the mask is ``False`` are zero.
        dtype: Default dtype.

    Returns:
        ``init(key, shape, dtype=dtype)``.
    """
    return _fused_init("truncated_normal", scale, mask, dtype)


def fused_tensor_uniform(scale: Any = 1.0, mask: Any = True, dtype: Any = jnp.float_) -> Initializer:
    """FusedTensor kernel initializer factory (uniform); see :func:`fused_tensor_normal`."""
    return _fused_init("uniform", scale, mask, dtype)
