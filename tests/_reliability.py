"""Cached tiny layers and graphs shared by the reliability tests (construction is the slow part)."""

import functools

import jax
import jax.numpy as jnp

from eqx_mp import nn, ops

F, K = 2, 2
RADIAL = functools.partial(nn.reciprocal_bernstein)
CUTOFF = functools.partial(nn.smooth_cutoff, cutoff=5.0)


@functools.lru_cache(maxsize=None)
def message_pass(max_degree: int = 1, fused: bool = False, parity: int = 2, param_dtype=jnp.float32, dtype=None,
                 in_max_degree: int | None = None):
    in_l = max_degree if in_max_degree is None else in_max_degree
    return nn.MessagePass(F, K, in_max_degree=in_l, basis_max_degree=max_degree, in_parity=parity,
                          max_degree=max_degree, use_fused_tensor=fused, param_dtype=param_dtype, dtype=dtype,
                          key=jax.random.key(7))


def basis(r, max_degree: int = 1):
    return nn.basis(r, max_degree=max_degree, num=K, radial_fn=RADIAL, cutoff_fn=CUTOFF)


def energy(mp, positions, x, *, dense=True, adj=None, dst=None, src=None, num_segments=None):
    """A scalar built from positions -> basis -> MessagePass (dense or sparse neighbour list)."""
    L = mp.basis_max_degree
    if dense:
        r = ops.gather_src(positions, adj_idx=adj) - positions[..., :, None, :]
        out = mp(x, basis(r, L), adj_idx=adj)
    else:
        r = ops.gather_src(positions, src_idx=src) - ops.gather_dst(positions, dst_idx=dst)
        out = mp(x, basis(r, L), dst_idx=dst, src_idx=src, num_segments=num_segments)
    return jnp.sum(out**2), out
