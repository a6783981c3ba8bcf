"""MessagePass (and Tensor/FusedTensor/Dense) beyond the e3x oracle: O(3) equivariance, the
documented errors, behaviour under filter_jit/vmap, training with optax, interop round trips."""

import functools

import e3x
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import eqx_mp
from eqx_mp.interop import from_e3x, to_e3x

N, F, K = 5, 4, 6


def _geometry(seed=0):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(N, 3)).astype(np.float32) * 1.5
    dst, src = eqx_mp.ops.sparse_pairwise_indices(N)
    return jnp.asarray(r), dst, src


def _basis(disp, lb):
    return eqx_mp.nn.basis(disp, max_degree=lb, num=K, radial_fn=eqx_mp.nn.reciprocal_bernstein,
                           cutoff_fn=functools.partial(eqx_mp.nn.smooth_cutoff, cutoff=6.0))


def _transform(x, q, parity_axis_size):
    """Apply the O(3) element ``q`` to e3x-layout features ``(..., P, (L+1)**2, F)``.

    ``q = s R`` with ``s = det q``; a channel of parity ``d`` picks up ``s**d`` and rotates with
    ``D(R)`` (row-vector convention: ``Y(r @ R) = Y(r) @ D(R)``).
    """
    s = float(np.sign(np.linalg.det(np.asarray(q))))
    lmax = int(round(np.sqrt(x.shape[-2]))) - 1
    d = eqx_mp.so3.wigner_d(s * q, lmax)
    y = jnp.einsum("...pnf,nm->...pmf", x, d)
    if parity_axis_size == 2:
        sign = jnp.asarray([1.0, s])[:, None, None]
    else:  # P = 1: degree l has parity l % 2
        degs = np.repeat(np.arange(lmax + 1), 2 * np.arange(lmax + 1) + 1)
        sign = jnp.asarray(s ** (degs % 2), x.dtype)[None, :, None]
    return y * sign


@pytest.mark.parametrize(
    "parity,l_in,lb,fused,sparse,pseudo",
    [(2, 2, 2, False, True, True), (1, 1, 2, False, False, True), (2, 1, 3, True, True, True),
     (1, 2, 1, True, False, True), (2, 2, 1, False, False, False)],
)
def test_equivariance_rotations_and_reflections(parity, l_in, lb, fused, sparse, pseudo):
    r, dst, src = _geometry()
    mp = eqx_mp.MessagePass(F, K, l_in, lb, in_parity=parity, use_fused_tensor=fused,
                            include_pseudotensors=pseudo, key=jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (N, parity, (l_in + 1) ** 2, F))

    @jax.jit
    def run(r, x):
        disp = r[src] - r[dst]
        if sparse:
            return mp(x, _basis(disp, lb), dst_idx=dst, src_idx=src)
        adj = eqx_mp.ops.dense_pairwise_indices(N)
        disp = r[adj] - r[:, None, :]
        return mp(x, _basis(disp, lb), adj_idx=adj)

    out = run(r, x)
    for seed in range(3):
        rot = eqx_mp.so3.random_rotation(jax.random.key(10 + seed))
        for q in (rot, -rot):  # proper rotation and rotoreflection
            got = run(r @ q, _transform(x, q, parity))
            want = _transform(out, q, mp.out_parity)
            err = float(jnp.linalg.norm(got - want) / jnp.linalg.norm(want))
            assert err <= 1e-6, (seed, float(np.linalg.det(np.asarray(q))), err)


# ------------------------------------------------------------------------------- errors


@pytest.fixture(scope="module")
def layer():
    return eqx_mp.MessagePass(F, K, 2, 1, in_parity=2, key=jax.random.key(0))


def _ok_args(layer, m=3):
    x = jnp.ones((N, 2, 9, F))
    b = jnp.ones((N, m, 1, 4, K))
    adj = jnp.zeros((N, m), jnp.int32)
    return x, b, adj


@pytest.mark.parametrize(
    "case,match",
    [
        ("features", r"inputs: axis -1 \(features\) has size 3, expected 4"),
        ("degree", r"inputs: axis -2 \(\(max_degree\+1\)\*\*2\) has size 4, expected 9"),
        ("parity", r"inputs: axis -3 \(parity\) has size 1, expected 2"),
        ("basis_batch", r"basis has shape .*leading axes"),
        ("basis_degree", r"basis: axis -2 .* has size 9, expected 4"),
        ("basis_num", r"basis: axis -1 \(features\) has size 5, expected 6"),
    ],
)
def test_shape_errors_name_the_axis(layer, case, match):
    x, b, adj = _ok_args(layer)
    if case == "features":
        x = jnp.ones((N, 2, 9, 3))
    elif case == "degree":
        x = jnp.ones((N, 2, 4, F))
    elif case == "parity":
        x = jnp.ones((N, 1, 9, F))
    elif case == "basis_batch":
        b = jnp.ones((N, 2, 1, 4, K))
    elif case == "basis_degree":
        b = jnp.ones((N, 3, 1, 9, K))
    elif case == "basis_num":
        b = jnp.ones((N, 3, 1, 4, 5))
    with pytest.raises(eqx_mp.ShapeError, match=match):
        layer(x, b, adj_idx=adj)
    # the same check holds under filter_jit and vmap
    with pytest.raises(eqx_mp.ShapeError, match=match):
        eqx.filter_jit(lambda m, x, b: m(x, b, adj_idx=adj))(layer, x, b)
    with pytest.raises(eqx_mp.ShapeError, match=match):
        jax.vmap(lambda x, b: layer(x, b, adj_idx=adj))(x[None], b[None])


def test_non_broadcastable_weights(layer):
    x, b, adj = _ok_args(layer)
    with pytest.raises(ValueError, match=r"weights with shape \(5, 3, 2\) cannot be broadcasted"):
        layer(x, b, jnp.ones((N, 3, 2)), adj_idx=adj)
    # broadcastable weights are accepted and equal explicit multiplication of the inputs
    w = jnp.full((N, 3, 1, 1, 1), 0.5)
    assert jnp.allclose(layer(x, b, w, adj_idx=adj), 0.5 * layer(x, b, adj_idx=adj), rtol=1e-6)


def test_max_degree_above_reachable():
    with pytest.raises(ValueError, match=r"max_degree=4 cannot be reached.*at most 3"):
        eqx_mp.MessagePass(F, K, 2, 1, max_degree=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"can be at most 2, received max_degree=3"):
        eqx_mp.Tensor(F, 1, 1, max_degree=3, key=jax.random.key(0))


def test_index_format_errors(layer):
    x, b, adj = _ok_args(layer)
    with pytest.raises(RuntimeError, match="either dense indices"):
        layer(x, b)
    with pytest.raises(RuntimeError, match="both were provided"):
        layer(x, b, adj_idx=adj, dst_idx=adj.reshape(-1), src_idx=adj.reshape(-1))
    with pytest.raises(ValueError, match="contains index 9 > 5"):
        layer(x, b, adj_idx=adj.at[0, 0].set(9))


@pytest.mark.parametrize("cls, args", [(eqx_mp.MessagePass, (F, K, 1, 1)), (eqx_mp.Dense, (F, F, 1)),
                                        (eqx_mp.Tensor, (F, 1, 1)), (eqx_mp.FusedTensor, (F, 1, 1))])
def test_key_is_required_and_keyword_only(cls, args):
    """As in Equinox: ``key`` has no default, and ``key=None`` is refused with a clear message."""
    with pytest.raises(TypeError, match="required keyword-only argument: 'key'"):
        cls(*args)
    with pytest.raises(TypeError, match="keyword-only PRNG key"):
        cls(*args, key=None)


# ------------------------------------------------------------------------------- semantics


def test_dense_and_sparse_formats_agree_with_padding():
    mp = eqx_mp.MessagePass(F, K, 1, 1, in_parity=1, key=jax.random.key(3))
    x = jax.random.normal(jax.random.key(4), (N, 1, 4, F))
    rng = np.random.default_rng(0)
    adj = rng.integers(0, N + 1, size=(N, 3))  # N = padding
    b = jax.random.normal(jax.random.key(5), (N, 3, 1, 4, K))
    dense = mp(x, b, adj_idx=jnp.asarray(adj))
    keep = adj < N
    dst, src = np.nonzero(keep)[0], adj[keep]
    sparse = mp(x, b[jnp.asarray(keep)], dst_idx=jnp.asarray(dst), src_idx=jnp.asarray(src))
    assert jnp.allclose(dense, sparse, rtol=1e-5, atol=1e-6)
    # a node with no neighbours receives exactly zero
    adj0 = adj.copy()
    adj0[0] = N
    assert jnp.all(mp(x, b, adj_idx=jnp.asarray(adj0))[0] == 0)


def test_leading_batch_axes_equal_vmap():
    mp = eqx_mp.MessagePass(F, K, 1, 2, key=jax.random.key(6))
    x = jax.random.normal(jax.random.key(7), (3, N, 2, 4, F))
    b = jax.random.normal(jax.random.key(8), (3, N, 2, 1, 9, K))
    adj = jnp.asarray(np.random.default_rng(1).integers(0, N, size=(3, N, 2)))
    batched = mp(x, b, adj_idx=adj)
    looped = jax.vmap(lambda x, b, a: mp(x, b, adj_idx=a))(x, b, adj)
    assert batched.shape == (3, N, 2, 9, F)
    assert jnp.allclose(batched, looped, rtol=1e-5, atol=1e-6)


def test_submodules_and_repr():
    mp = eqx_mp.MessagePass(8, 4, 1, 2, use_fused_tensor=True, key=jax.random.key(0))
    assert isinstance(mp.filter, eqx_mp.Dense) and isinstance(mp.tensor, eqx_mp.FusedTensor)
    assert mp.filter.kernel.shape == (1, 3, 4, 8)
    assert (mp.max_degree, mp.out_parity) == (2, 2)
    text = repr(mp)
    assert "MessagePass" in text and "FusedTensor" in text and "params=" in text


def test_interop_round_trip_is_exact():
    x = jax.random.normal(jax.random.key(0), (N, 2, 4, F))
    b = jax.random.normal(jax.random.key(1), (N, 3, 1, 9, K))
    adj = jnp.zeros((N, 3), jnp.int32)
    for fused in (False, True):
        layer = e3x.nn.MessagePass(use_fused_tensor=fused, use_basis_bias=True)
        v = layer.init(jax.random.PRNGKey(0), x, b, adj_idx=adj)
        ours = from_e3x(layer, v, x, b, adj_idx=adj)
        layer2, v2 = to_e3x(ours)
        flat, flat2 = jax.tree_util.tree_leaves_with_path(v), jax.tree_util.tree_leaves_with_path(v2)
        assert [p for p, _ in flat] == [p for p, _ in flat2]
        assert all(np.array_equal(a, c) for (_, a), (_, c) in zip(flat, flat2))
        assert jnp.array_equal(layer2.apply(v2, x, b, adj_idx=adj), layer.apply(v, x, b, adj_idx=adj))


def test_training_step_lowers_the_loss():
    r, dst, src = _geometry(1)
    disp = r[src] - r[dst]
    b = _basis(disp, 2)
    x = jax.random.normal(jax.random.key(0), (N, 2, 4, F))
    teacher = eqx_mp.MessagePass(F, K, 1, 2, key=jax.random.key(1))
    target = teacher(x, b, dst_idx=dst, src_idx=src)  # reachable by the student's architecture
    mp = eqx_mp.MessagePass(F, K, 1, 2, key=jax.random.key(2))
    opt = optax.adam(3e-2)
    state = opt.init(eqx.filter(mp, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(mp, state):
        def loss(mp):
            return jnp.mean((mp(x, b, dst_idx=dst, src_idx=src) - target) ** 2)

        value, grads = eqx.filter_value_and_grad(loss)(mp)
        updates, state = opt.update(grads, state, mp)
        return eqx.apply_updates(mp, updates), state, value

    losses = []
    for _ in range(30):
        mp, state, value = step(mp, state)
        losses.append(float(value))
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses
