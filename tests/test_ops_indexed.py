"""ops.indexed_softmax: e3x's values where e3x's are defined, 0 (not NaN/inf) elsewhere."""

import e3x
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_mp import ops


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_indexed_softmax_sparse_matches_e3x(dtype):
    with jax.enable_x64(dtype == "float64"):
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.normal(size=(9, 2)), dtype)
        dst = jnp.array([0, 0, 1, 2, 2, 2, 1, 3, 3])  # 3 = num_segments: padding pairs
        mask = jnp.asarray(rng.uniform(0.1, 1.0, size=(9, 2)), dtype)
        for m in (None, mask):
            ours = ops.indexed_softmax(x, m, dst_idx=dst, num_segments=3)
            ref = e3x.ops.indexed_softmax(x, m, dst_idx=dst, num_segments=3)
            tol = 1e-6 if dtype == "float32" else 1e-14
            np.testing.assert_allclose(ours[:7], ref[:7], rtol=tol, atol=tol)
            np.testing.assert_array_equal(ours[7:], 0.0)  # padding pairs take no part
            seg = jax.ops.segment_sum(ours[:7], dst[:7], 3)
            np.testing.assert_allclose(seg, np.ones((3, 2)), rtol=10 * tol)
        g = jax.grad(
            lambda v: jnp.sum(ops.indexed_softmax(v, mask, dst_idx=dst, num_segments=3) * x)
        )(x)
        g_ref = jax.grad(
            lambda v: jnp.sum(e3x.ops.indexed_softmax(v, mask, dst_idx=dst, num_segments=3) * x)
        )(x)
        np.testing.assert_allclose(g[:7], g_ref[:7], rtol=1e-5, atol=1e-6)


def test_indexed_softmax_dense_and_degenerate_neighbourhoods():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3)))
    adj = jnp.array([[1, 2, 3], [0, 3, 3], [3, 3, 3]])
    where = adj < 3
    ours = ops.indexed_softmax(x, adj_idx=adj, where=where)
    ref = e3x.ops.indexed_softmax(x, adj_idx=adj, where=where)
    np.testing.assert_allclose(ours[where], ref[where], rtol=1e-6)
    np.testing.assert_array_equal(ours[~where], 0.0)
    assert not bool(jnp.all(jnp.isfinite(ref)))  # e3x: inf for a row without neighbours
    # A neighbourhood whose masked exponentials all vanish (every neighbour cut off): 0, not 0/0.
    dst = jnp.array([0, 0, 1])
    mask = jnp.array([0.0, 0.0, 1.0])
    ours = ops.indexed_softmax(jnp.array([1.0, 2.0, 3.0]), mask, dst_idx=dst, num_segments=2)
    np.testing.assert_array_equal(ours, [0.0, 0.0, 1.0])
    assert bool(
        jnp.all(
            jnp.isnan(
                e3x.ops.indexed_softmax(
                    jnp.array([1.0, 2.0, 3.0]), mask, dst_idx=dst, num_segments=2
                )[:2]
            )
        )
    )
    g = jax.grad(lambda v: jnp.sum(ops.indexed_softmax(v, adj_idx=adj, where=where) ** 2))(x)
    assert bool(jnp.all(jnp.isfinite(g)))
