"""MultiHeadAttention / SelfAttention against e3x (values and gradients, float32/float64, dense and
sparse lists, every option), second derivatives (force training), equivariance, exact interop
round trips, no per-pair (L+1)**2 x F arrays, robustness, errors."""

import functools

import e3x
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, e3x_twin, rotate_features, trees_equal

import eqx_mp
from eqx_mp.interop import from_e3x, to_e3x

N, M, K = 4, 5, 3


def _arr(rng, shape, dtype):
    return jnp.asarray(rng.normal(size=shape), dtype)


def _graph(kind, n, m_kv, rng, batch=()):
    """Dense: every query attends to 3 slots (one padding entry); sparse: a fixed pair list."""
    if kind == "dense":
        adj = np.stack([rng.permutation(m_kv)[:3] for _ in range(n)])
        adj[-1, -1] = m_kv  # padding
        adj = np.broadcast_to(adj, batch + adj.shape)
        return dict(adj_idx=jnp.asarray(adj)), batch + adj.shape[-2:]
    dst = np.array([0, 0, 1, 1, 1, 2, 3, 3])[: 2 * n]
    src = np.array([1, 4, 0, 2, 3, 1, 0, 2]) % m_kv
    return dict(dst_idx=jnp.asarray(dst), src_idx=jnp.asarray(src)), dst.shape


CASES = {
    # name: (self-attention?, kind, (Pq, Lq), (Pkv, Lkv), Lb, options, dtype)
    "SA dense L1 heads2 f64": (True, "dense", (2, 1), None, 2, dict(num_heads=2), "float64"),
    "SA sparse P1 L2 fused bias f32": (
        True,
        "sparse",
        (1, 2),
        None,
        1,
        dict(num_heads=3, use_fused_tensor=True, use_basis_bias=True, max_degree=1),
        "float32",
    ),
    "SA dense no qk encoding f32": (
        True,
        "dense",
        (2, 1),
        None,
        1,
        dict(num_heads=2, use_relative_positional_encoding_qk=False),
        "float32",
    ),
    "SA sparse no v encoding f64": (
        True,
        "sparse",
        (2, 2),
        None,
        1,
        dict(use_relative_positional_encoding_v=False),
        "float64",
    ),
    "MHA sparse mixed layouts biases f32": (
        False,
        "sparse",
        (1, 2),
        (2, 1),
        1,
        dict(
            num_heads=2,
            qkv_features=4,
            out_features=5,
            query_use_bias=True,
            key_use_bias=True,
            value_use_bias=True,
        ),
        "float32",
    ),
    "MHA dense N!=M f64": (False, "dense", (2, 1), (1, 1), 2, dict(num_heads=2), "float64"),
}


def _setup(case, seed=0):
    self_att, kind, (pq, lq), kv, lb, options, dtype = CASES[case]
    rng = np.random.default_rng(seed)
    f = 6
    n_kv = N if self_att else M
    idx, pairs = _graph(kind, N, n_kv, rng)
    xq = _arr(rng, (N, pq, (lq + 1) ** 2, f), dtype)
    b = _arr(rng, pairs + (1, (lb + 1) ** 2, K), dtype)
    cut = jnp.asarray(rng.uniform(0.2, 1.0, size=pairs), dtype)
    if self_att:
        module = e3x.nn.SelfAttention(param_dtype=jnp.dtype(dtype), **options)
        args = (xq, b, cut)
    else:
        pkv, lkv = kv
        xkv = _arr(rng, (n_kv, pkv, (lkv + 1) ** 2, 4), dtype)
        module = e3x.nn.MultiHeadAttention(param_dtype=jnp.dtype(dtype), **options)
        args = (xq, xkv, b, cut)
    variables, ours = e3x_twin(module, args, idx, dtype=dtype, seed=seed)
    return module, variables, ours, args, idx, dtype


@pytest.mark.parametrize("case", list(CASES))
def test_matches_e3x(case):
    with jax.enable_x64(CASES[case][-1] == "float64"):
        module, variables, ours, args, idx, dtype = _setup(case)
        y = eqx.filter_jit(lambda m, a: m(*a, **idx))(ours, args)
        y_ref = jax.jit(lambda v, a: module.apply(v, *a, **idx))(variables, args)
        assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
        assert_close(y, y_ref, dtype)
        w = jnp.asarray(np.random.default_rng(5).normal(size=y.shape), dtype)
        g = eqx.filter_jit(
            jax.grad(lambda m, a: jnp.sum(w * jnp.tanh(m(*a, **idx))), argnums=(0, 1))
        )(ours, args)
        g_ref = jax.jit(
            jax.grad(lambda v, a: jnp.sum(w * jnp.tanh(module.apply(v, *a, **idx))), argnums=(0, 1))
        )(variables, args)
        for a, b in zip(g[1], g_ref[1]):  # inputs, basis, cutoff
            assert_close(a, b, dtype)
        _, gp = to_e3x(g[0])  # parameter gradients in e3x's layout
        assert jax.tree_util.tree_structure(gp) == jax.tree_util.tree_structure(g_ref[0])
        for a, b in zip(jax.tree_util.tree_leaves(gp), jax.tree_util.tree_leaves(g_ref[0])):
            assert_close(a, b, dtype)


def _potential(att, positions, numbers_emb, kind_idx, basis_fn, apply):
    """Energy of a tiny attention model: basis of the pair vectors -> self-attention -> sum."""
    dst, src = kind_idx
    r = positions[src] - positions[dst]
    b, cut = basis_fn(r)
    y = apply(att, numbers_emb, b, cut, dst, src)
    return jnp.sum(y[..., 0, 0, :] ** 2)


def test_force_training_derivatives_match_e3x():
    """d/dparams of sum(forces**2) (a second derivative through attention) equals e3x's (f64)."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(7)
        pos = jnp.asarray(rng.normal(size=(N, 3)) * 1.2)
        x = jnp.asarray(rng.normal(size=(N, 2, 4, 4)))
        dst, src = eqx_mp.ops.sparse_pairwise_indices(N)

        def basis(lib, r):
            return lib.nn.basis(
                r,
                max_degree=1,
                num=K,
                radial_fn=lib.nn.reciprocal_bernstein,
                cutoff_fn=functools.partial(lib.nn.smooth_cutoff, cutoff=3.0),
                return_cutoff=True,
            )

        b0, c0 = basis(e3x, pos[src] - pos[dst])
        module = e3x.nn.SelfAttention(num_heads=2, use_basis_bias=True, param_dtype=jnp.float64)
        variables, ours = e3x_twin(
            module, (x, b0, c0), dict(dst_idx=dst, src_idx=src), dtype="float64"
        )

        def loss(att, apply, lib):
            f = -jax.grad(
                lambda p: _potential(att, p, x, (dst, src), lambda r: basis(lib, r), apply)
            )(pos)
            return jnp.sum(f**2)

        ours_apply = lambda m, xx, b, c, d, s: m(xx, b, c, dst_idx=d, src_idx=s)  # noqa: E731
        ref_apply = lambda v, xx, b, c, d, s: module.apply(v, xx, b, c, dst_idx=d, src_idx=s)  # noqa: E731
        val, g = eqx.filter_jit(jax.value_and_grad(lambda m: loss(m, ours_apply, eqx_mp)))(ours)
        val_ref, g_ref = jax.jit(jax.value_and_grad(lambda v: loss(v, ref_apply, e3x)))(variables)
        np.testing.assert_allclose(val, val_ref, rtol=1e-11)
        for a, b in zip(jax.tree_util.tree_leaves(to_e3x(g)[1]), jax.tree_util.tree_leaves(g_ref)):
            assert_close(a, b, "float64")


@pytest.mark.parametrize("reflect", [False, True])
def test_self_attention_equivariance(reflect):
    """Rotating (and reflecting) positions and input features rotates the output features."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        pos = jnp.asarray(rng.normal(size=(N, 3)))
        x = jnp.asarray(rng.normal(size=(N, 2, 4, 5)))
        adj = eqx_mp.ops.dense_pairwise_indices(N)
        sa = eqx_mp.nn.SelfAttention(
            5,
            1,
            K,
            2,
            num_heads=1,
            max_degree=2,
            use_basis_bias=True,
            param_dtype=jnp.float64,
            key=jax.random.key(1),
        )

        def run(p, xx):
            r = p[adj] - p[:, None, :]
            b, c = eqx_mp.nn.basis(
                r,
                max_degree=2,
                num=K,
                radial_fn=eqx_mp.nn.basic_gaussian,
                cutoff_fn=functools.partial(eqx_mp.nn.smooth_cutoff, cutoff=4.0),
                return_cutoff=True,
            )
            return sa(xx, b, c, adj_idx=adj)

        rot = eqx_mp.so3.random_rotation(jax.random.key(2))
        mat = -rot if reflect else rot
        np.testing.assert_allclose(
            run(pos @ mat, rotate_features(x, rot, reflect)),
            rotate_features(run(pos, x), rot, reflect),
            atol=1e-11,
        )


@pytest.mark.parametrize(
    "case", ["SA sparse P1 L2 fused bias f32", "MHA sparse mixed layouts biases f32"]
)
def test_interop_round_trips_are_exact(case):
    module, variables, ours, args, idx, _ = _setup(case)
    back_module, back_vars = to_e3x(ours)
    assert type(back_module) is type(module)
    assert trees_equal(back_vars, variables)
    np.testing.assert_array_equal(
        back_module.apply(back_vars, *args, **idx), module.apply(variables, *args, **idx)
    )
    again = from_e3x(back_module, back_vars, *args, **idx)
    assert type(again) is type(ours)
    assert trees_equal(eqx.filter(again, eqx.is_array), eqx.filter(ours, eqx.is_array))


def _largest_intermediate(jaxpr) -> int:
    """Largest number of elements of any value in a jaxpr, sub-jaxprs (loop bodies) included."""
    biggest = 0
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            biggest = max(biggest, int(np.prod(getattr(v.aval, "shape", ()), dtype=np.int64)))
        for p in eqn.params.values():
            subs = p if isinstance(p, (list, tuple)) else [p]
            for sub in subs:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    biggest = max(biggest, _largest_intermediate(inner))
    return biggest


def test_nothing_of_size_pairs_times_irreps_times_features_is_materialised():
    """Forward and backward: no array of pairs x (L+1)**2 x F elements exists (e3x's has them)."""
    n, f, l, lb = 300, 8, 2, 2
    dst, src = eqx_mp.ops.sparse_pairwise_indices(40)  # 1560 pairs per graph, 6 graphs of 40 atoms
    dst = jnp.concatenate([dst + 40 * g for g in range(n // 40)])
    src = jnp.concatenate([src + 40 * g for g in range(n // 40)])
    e = dst.shape[0]
    x = jnp.zeros((n, 2, (l + 1) ** 2, f))
    b = jnp.zeros((e, 1, (lb + 1) ** 2, K))
    sa = eqx_mp.nn.SelfAttention(f, l, K, lb, num_heads=2, key=jax.random.key(0))
    threshold = e * (l + 1) ** 2 * f

    def loss(m, xx, bb):
        return jnp.sum(m(xx, bb, dst_idx=dst, src_idx=src) ** 2)

    ours = jax.make_jaxpr(jax.value_and_grad(loss, argnums=(0, 1, 2)))(sa, x, b)
    assert _largest_intermediate(ours.jaxpr) < threshold
    module = e3x.nn.SelfAttention(num_heads=2)
    variables = jax.eval_shape(
        lambda: module.init(jax.random.key(0), x, b, dst_idx=dst, src_idx=src)
    )
    ref = jax.make_jaxpr(
        jax.value_and_grad(
            lambda v, xx, bb: jnp.sum(module.apply(v, xx, bb, dst_idx=dst, src_idx=src) ** 2),
            argnums=(0, 1, 2),
        )
    )(variables, x, b)
    assert _largest_intermediate(ref.jaxpr) >= threshold  # the check can fail


def test_no_nan_when_every_neighbour_is_cut_off():
    """e3x divides 0 by 0 when all of a node's neighbours have cutoff 0; here the attention sum is
    0 (the output is the output layer's bias) and gradients are finite."""
    with jax.enable_x64(True):
        module, variables, ours, args, idx, dtype = _setup("SA dense L1 heads2 f64")
        x, b, cut = args
        cut = cut.at[0].set(0.0)
        y = ours(x, b, cut, **idx)
        assert bool(jnp.all(jnp.isfinite(y)))
        assert bool(jnp.any(jnp.isnan(module.apply(variables, x, b, cut, **idx))))
        np.testing.assert_allclose(y[0], ours.out(jnp.zeros_like(y[:1, ..., :6]))[0], atol=1e-12)
        g = jax.grad(lambda xx: jnp.sum(ours(xx, b, cut, **idx) ** 2))(x)
        assert bool(jnp.all(jnp.isfinite(g)))
        valid = y[1:]
        assert_close(
            valid, module.apply(variables, x, b, cut.at[0].set(1e-30), **idx)[1:], "float64"
        )


def test_batch_axes_and_vmap():
    with jax.enable_x64(True):
        module, variables, ours, args, idx, dtype = _setup("SA sparse no v encoding f64")
        x, b, cut = args
        xs, bs, cs = jnp.stack([x, 2 * x]), jnp.stack([b, -b]), jnp.stack([cut, cut**2])
        bidx = {k: jnp.stack([v, v]) for k, v in idx.items()}
        batched = ours(xs, bs, cs, **bidx)
        one = [ours(xs[i], bs[i], cs[i], **idx) for i in range(2)]
        np.testing.assert_allclose(batched, jnp.stack(one), atol=1e-12)
        vm = jax.vmap(lambda a, bb, c: ours(a, bb, c, **idx))(xs, bs, cs)
        np.testing.assert_allclose(vm, batched, atol=1e-12)
        assert_close(batched, module.apply(variables, xs, bs, cs, **bidx), "float64")


def test_errors_match_e3x_wording():
    key = jax.random.key(0)
    with pytest.raises(
        ValueError, match=r"qkv_features \(6\) must be divisible by num_heads \(4\)"
    ):
        eqx_mp.nn.SelfAttention(6, 1, K, 1, num_heads=4, key=key)
    with pytest.raises(TypeError, match="when using relative positional encodings, 'basis' is"):
        eqx_mp.nn.SelfAttention(6, 1, key=key)
    sa = eqx_mp.nn.SelfAttention(6, 1, K, 1, num_heads=2, key=key)
    x = jnp.ones((N, 2, 4, 6))
    adj = eqx_mp.ops.dense_pairwise_indices(N)
    with pytest.raises(
        TypeError,
        match="when using relative positional encodings, 'basis' is a required "
        "argument, received basis=None",
    ):
        sa(x, adj_idx=adj)
    mha = eqx_mp.nn.MultiHeadAttention(6, 6, 1, 1, K, 1, key=key)
    with pytest.raises(ValueError, match="inputs_q and inputs_kv have incompatible shapes"):
        mha(
            jnp.ones((2, N, 2, 4, 6)),
            jnp.ones((3, N, 2, 4, 6)),
            jnp.ones((2, N, 3, 1, 4, K)),
            adj_idx=jnp.zeros((2, N, 3), jnp.int32),
        )
    b = jnp.ones((N, N - 1, 1, 4, K))
    with pytest.raises(
        eqx_mp.ShapeError, match=r"cutoff_value must have the shape of the index list \(4, 3\)"
    ):
        sa(x, b, jnp.ones((N,)), adj_idx=adj)
    with pytest.raises(
        eqx_mp.ShapeError, match=r"basis: axis -1 \(features\) has size 2, expected 3"
    ):
        sa(x, jnp.ones((N, N - 1, 1, 4, 2)), adj_idx=adj)
    with pytest.raises(ValueError, match="adj_idx contains negative index"):
        sa(x, b, adj_idx=adj.at[0, 0].set(-1))
