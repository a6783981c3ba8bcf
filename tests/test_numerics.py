"""Numerical safety: finite values AND finite gradients (positions, inputs, parameters) in the edge
cases that padded batches and real geometries produce, and isolation of bad graphs in a batch.

Expected values come from mathematics (an empty sum is 0, Y_0 = 1 and Y_l>0 = 0 at r = 0, scalar
outputs are rotation invariant) or from the clean single-graph run.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_mp import ops, so3

from _reliability import CUTOFF, RADIAL, F, K, basis, energy, message_pass

N = 3
ADJ = ops.dense_pairwise_indices(N)
DST, SRC = ops.sparse_pairwise_indices(N)
POS = jnp.array([[0.0, 0.0, 0.0], [1.1, 0.2, -0.3], [-0.4, 0.9, 0.5]])
# Scalar inputs, basis and output up to degree 1: the l > 0 basis part (the delicate one at r = 0)
# is exercised while the layer stays cheap to compile (2 shared CPU cores).
X = jax.random.normal(jax.random.key(3), (N, 1, 1, F))


def _mp():
    return message_pass(1, parity=1, in_max_degree=0)


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(tree))


@jax.jit
def _vg_dense(mp, pos, x, adj):
    return jax.value_and_grad(lambda m, p, xx: energy(m, p, xx, adj=adj), argnums=(0, 1, 2), has_aux=True)(mp, pos, x)


@jax.jit
def _vg_sparse(mp, pos, x, dst, src):
    return jax.value_and_grad(
        lambda m, p, xx: energy(m, p, xx, dense=False, dst=dst, src=src), argnums=(0, 1, 2), has_aux=True
    )(mp, pos, x)


def _value_and_grads(mp, pos, x, dense=True, adj=None, dst=None, src=None):
    """Jitted (one compile per shape, shared by the tests): energy, output, (d/dparams, d/dpos, d/dx)."""
    (e, out), g = _vg_dense(mp, pos, x, adj) if dense else _vg_sparse(mp, pos, x, dst, src)
    return e, out, g


@pytest.mark.parametrize("dense", [True, False])
def test_coincident_atoms(dense):
    """Zero-length displacements (all atoms on one point): finite values and gradients."""
    mp = _mp()
    pos = jnp.zeros((N, 3))
    kw = dict(adj=ADJ) if dense else dict(dense=False, dst=DST, src=SRC)
    e, out, (gm, gp, gx) = _value_and_grads(mp, pos, X, **kw)
    assert _finite((e, out, gm, gp, gx))
    # Mathematics at r = 0: Y_0 = 1 and Y_l>0 = 0, times radial_fn(0) * cutoff(0).
    b = basis(jnp.zeros((2, 3)))
    expected = RADIAL(jnp.zeros(()), K) * CUTOFF(jnp.zeros(()))
    np.testing.assert_allclose(b[:, 0, 0], jnp.broadcast_to(expected, (2, K)), rtol=1e-6)
    np.testing.assert_array_equal(b[:, 0, 1:], 0.0)


def test_all_pairs_padded():
    """Every neighbour slot is padding: the output is exactly the empty sum 0, gradients finite and
    zero w.r.t. the inputs."""
    mp = _mp()
    adj = jnp.full_like(ADJ, N)
    e, out, (gm, gp, gx) = _value_and_grads(mp, POS, X, adj=adj)
    assert _finite((gm, gp))
    np.testing.assert_array_equal(out, 0.0)
    np.testing.assert_array_equal(gx, 0.0)
    np.testing.assert_array_equal(gp, 0.0)


@pytest.mark.parametrize("dense", [True, False])
def test_zero_edges(dense):
    """E = 0 (sparse) and M = 0 (dense): output of shape (N, ...) equal to zero, gradients zero."""
    mp = _mp()
    if dense:
        idx, b = dict(adj_idx=jnp.zeros((N, 0), jnp.int32)), jnp.zeros((N, 0, 1, 4, K))
    else:
        idx, b = dict(dst_idx=jnp.zeros((0,), jnp.int32), src_idx=jnp.zeros((0,), jnp.int32)), jnp.zeros((0, 1, 4, K))
    out, g = jax.value_and_grad(lambda m, x: jnp.sum(m(x, b, **idx) ** 2), argnums=(0, 1))(mp, X)
    assert mp(X, b, **idx).shape == (N, mp.out_parity, 4, F)
    assert (mp.in_max_degree, mp.basis_max_degree) == (0, 1)
    assert float(out) == 0.0
    assert _finite(g)
    np.testing.assert_array_equal(g[1], 0.0)


def test_basis_of_zero_edges():
    b = basis(jnp.zeros((0, 3)))
    assert b.shape == (0, 1, 4, K)


def test_single_atom():
    """One atom, its only neighbour slot padded (dense) / no pair (sparse): zeros, finite grads."""
    mp = _mp()
    pos, x = POS[:1], X[:1]
    e, out, g = _value_and_grads(mp, pos, x, adj=jnp.array([[1]]))
    assert _finite(g)
    np.testing.assert_array_equal(out, 0.0)
    e2, out2, g2 = _value_and_grads(mp, pos, x, dense=False, dst=jnp.array([1]), src=jnp.array([1]))
    assert _finite(g2) and out2.shape == (1, mp.out_parity, 4, F)
    np.testing.assert_array_equal(out2, 0.0)


def test_max_degree_zero_everywhere():
    """L = 0 inputs, basis and output, parity 1: finite values/gradients and (scalars only)
    invariance of the output under a rotation of the positions."""
    mp = message_pass(0, parity=1)
    x = X
    e, out, g = _value_and_grads(mp, POS, x, adj=ADJ)
    assert out.shape == (N, 1, 1, F) and _finite((out, g))
    rot = so3.rotation(jnp.array([0.3, -0.2, 0.9]), jnp.array(1.3))
    _, out_rot, _ = _value_and_grads(mp, POS @ rot, x, adj=ADJ)
    np.testing.assert_allclose(out_rot, out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [1e-12, 1e-6, 1e3, 1e6, 1e20])
def test_tiny_and_huge_distances(scale):
    """Distances from 1e-12 to 1e20 (float32): finite values and gradients. Beyond the cutoff the
    messages vanish (smooth_cutoff is exactly 0), so the output is exactly 0."""
    mp = _mp()
    e, out, g = _value_and_grads(mp, POS * scale, X, adj=ADJ)
    assert _finite((e, out, g))
    if scale >= 1e3:
        np.testing.assert_array_equal(out, 0.0)


def test_basis_gradient_at_1e_minus_20():
    g = jax.jit(jax.grad(lambda r: jnp.sum(basis(r) ** 2)))(jnp.array([[0.3, -0.5, 0.8]]) * 1e-20)
    assert _finite(g)


# ----------------------------------------------------------------------------- batch isolation


def _batch_with_bad_graph(bad):
    """Batch of two graphs (leading axis): graph 0 clean, graph 1 with inf/NaN."""
    pos = jnp.stack([POS, POS.at[1].set(bad)])
    x = jnp.stack([X, X.at[2, 0, 0, 0].set(bad)])
    return pos, x


@functools.partial(jax.jit, static_argnums=3)
def _batched_energy(mp, pos, x, dense):
    """Per-graph basis (vmap), batched MessagePass call; returns per-graph outputs."""
    if dense:
        adj = jnp.broadcast_to(ADJ, (2,) + ADJ.shape)
        r = jax.vmap(lambda p, a: ops.gather_src(p, adj_idx=a) - p[:, None, :])(pos, adj)
        b = jax.vmap(basis)(r)
        return mp(x, b, adj_idx=adj)
    dst, src = jnp.broadcast_to(DST, (2, 6)), jnp.broadcast_to(SRC, (2, 6))
    r = jax.vmap(lambda p, d, s: ops.gather_src(p, src_idx=s) - ops.gather_dst(p, dst_idx=d))(pos, dst, src)
    b = jax.vmap(basis)(r)
    return mp(x, b, dst_idx=dst, src_idx=src)


@functools.partial(jax.jit, static_argnums=3)
def _clean_graph_grads(mp, pos, x, dense):
    return jax.grad(lambda p, xx: jnp.sum(_batched_energy(mp, p, xx, dense)[0] ** 2), argnums=(0, 1))(pos, x)


@functools.partial(jax.jit, static_argnums=3)
def _per_graph_param_grads(mp, pos, x, dense):
    kw = dict(adj=ADJ) if dense else dict(dense=False, dst=DST, src=SRC)
    return jax.vmap(jax.grad(lambda m, p, xx: energy(m, p, xx, **kw)[0]), in_axes=(None, 0, 0))(mp, pos, x)


@pytest.mark.parametrize("bad", [jnp.nan, pytest.param(jnp.inf, marks=pytest.mark.slow)])
@pytest.mark.parametrize("dense", [True, False])
def test_bad_graph_does_not_poison_batch(bad, dense):
    mp = _mp()
    pos, x = _batch_with_bad_graph(bad)
    kw = dict(adj=ADJ) if dense else dict(dense=False, dst=DST, src=SRC)
    e_clean, out_clean, (gm_clean, gp_clean, gx_clean) = _value_and_grads(mp, POS, X, **kw)

    out = _batched_energy(mp, pos, x, dense)
    assert not _finite(out[1])  # the bad graph really is bad
    np.testing.assert_allclose(out[0], out_clean, rtol=1e-6, atol=1e-7)

    # Gradients of the clean graph's energy w.r.t. the whole batch's positions and inputs.
    gp, gx = _clean_graph_grads(mp, pos, x, dense)
    np.testing.assert_allclose(gp[0], gp_clean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gx[0], gx_clean, rtol=1e-5, atol=1e-6)

    # Parameter gradients are summed over the batch, so a NaN graph poisons a *summed* gradient
    # (inherent to shared parameters, as in any framework); per-graph gradients stay separate.
    gm = _per_graph_param_grads(mp, pos, x, dense)
    for a, b in zip(jax.tree_util.tree_leaves(gm), jax.tree_util.tree_leaves(gm_clean)):
        np.testing.assert_allclose(a[0], b, rtol=1e-5, atol=1e-6)


def test_batched_basis_isolates_graphs():
    r = jnp.stack([jnp.array([[1.0, 0.0, 0.0]]), jnp.array([[jnp.inf, 0.0, 0.0]])])
    b = jax.jit(basis)(r)
    np.testing.assert_allclose(b[0], jax.jit(basis)(r[0]), rtol=1e-6)
