"""The fused message pass against an unfused reference built from public parts.

The reference is the textbook pipeline ``indexed_sum(tensor(filter(basis), gather_src(x) * w))``
with eqx_mp's standalone ``Dense``/``Tensor`` modules and ``ops``. Its tensor product runs on the
same contraction engine in its plain per-pair mode (checked against e3x in the oracle tests);
what it does not share is the message pass's gathering, filtering, weighting, blocking, padding
and scattering, and their derivative programs. Blocks are forced small so that every case spans
several blocks and a padded last block.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close

import eqx_mp
from eqx_mp.nn._cg import schedule

#: Errors relative to each array's largest magnitude (no absolute floor).
RELATIVE = dict(rtol=0, floor=1e-30)


@pytest.fixture(params=["cpu", "gpu"])
def small_blocks(request, monkeypatch):
    """Every schedule, with blocks forced small: 32-pair blocks (the CPU schedule's minimum,
    looped contractions); 8-pair blocks or one dense row (the GPU schedule's, wide contractions,
    the pair axis padded to whole blocks)."""
    monkeypatch.setattr(schedule, "CPU_BLOCK_BYTES", 1)
    monkeypatch.setattr(schedule, "GPU_MEMORY_FRACTION", 1e-30)
    monkeypatch.setattr(eqx_mp.Config, "schedule", request.param)


def reference(mp, x, b, w=None, **kw):
    gathered = eqx_mp.ops.gather_src(x, adj_idx=kw.get("adj_idx"), src_idx=kw.get("src_idx"))
    if w is not None:
        gathered = gathered * w
    prod = mp.tensor(mp.filter(b), gathered)
    if "adj_idx" in kw:
        n = x.shape[-4]
        where = (kw["adj_idx"] < n) if kw.get("where") is None else kw["where"] & (kw["adj_idx"] < n)
        return eqx_mp.ops.indexed_sum(prod, adj_idx=kw["adj_idx"], where=where)
    src_ok = kw["src_idx"] < x.shape[-4]
    segs = kw.get("num_segments", x.shape[-4])
    dst = jnp.where(src_ok, kw["dst_idx"], segs)
    return eqx_mp.ops.indexed_sum(prod, dst_idx=dst, num_segments=segs)


def problem(seed, *, sparse, batch=(), n=11, m=7, f=3, l=1, lb=2, p=2, k=2, weights=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=batch + (n, p, (l + 1) ** 2, f)).astype(np.float32)
    adj = rng.integers(0, n + 1, size=batch + (n, m))  # n = padding
    if sparse:
        e = n * m
        src = adj.reshape(batch + (e,))
        dst = np.broadcast_to(np.repeat(np.arange(n), m), batch + (e,)).copy()
        dst[src == n] = n
        kw = dict(dst_idx=jnp.asarray(dst), src_idx=jnp.asarray(src))
        pair = batch + (e,)
    else:
        kw = dict(adj_idx=jnp.asarray(adj))
        pair = batch + (n, m)
    b = rng.normal(size=pair + (1, (lb + 1) ** 2, k)).astype(np.float32)
    w = None
    if weights is not None:
        shape = tuple(pair[i] if s == "E" else s for i, s in enumerate(weights[: len(pair)]))
        shape = shape + tuple({"P": p, "D": (l + 1) ** 2, "F": f}.get(s, s) for s in weights[len(pair):])
        w = jnp.asarray(rng.uniform(0.5, 1.5, size=shape).astype(np.float32))
    mp = eqx_mp.nn.MessagePass(f, k, l, lb, in_parity=p, use_basis_bias=True, key=jax.random.key(seed))
    # Non-zero biases so that their gradients and padded-pair handling are exercised.
    mp = eqx.tree_at(lambda t: t.filter.bias, mp, jnp.asarray(rng.normal(size=(f,)).astype(np.float32)))
    return mp, jnp.asarray(x), jnp.asarray(b), w, kw


def both(mp, x, b, w, kw):
    """Outputs and gradients (module, x, basis, weights) of the kernel and of the reference."""
    rng = np.random.default_rng(1)
    cot = None
    res = []
    for fn in (lambda m, x, b, w: m(x, b, w, **kw), lambda m, x, b, w: reference(m, x, b, w, **kw)):
        out = fn(mp, x, b, w)
        cot = jnp.asarray(rng.normal(size=out.shape).astype(np.float32)) if cot is None else cot
        grads = eqx.filter_grad(lambda args: jnp.sum(fn(*args) * cot))((mp, x, b, w))
        res.append((out, grads))
    return res


CASES = [
    dict(sparse=False),
    dict(sparse=True),
    dict(sparse=False, batch=(2,), weights=("E", "E", "E", 1, 1, 1)),
    dict(sparse=True, batch=(2,), weights=("E", "E", "P", "D", "F")),
    dict(sparse=True, weights=(1, "P", 1, "F")),
    dict(sparse=False, weights=("E", "E", 1, "D", 1)),
    dict(sparse=False, p=1, l=2, lb=1),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_kernel_matches_unfused_reference_over_several_blocks(small_blocks, case):
    mp, x, b, w, kw = problem(case, **CASES[case])
    n_pairs = int(np.prod(b.shape[:-3]))
    assert n_pairs > 2 * 32 and n_pairs % 32 != 0  # several blocks and a padded last one
    (out, g), (ref, g_ref) = both(mp, x, b, w, kw)
    assert_close(out, ref, 2e-5, **RELATIVE)
    assert_close(g, g_ref, 2e-5, **RELATIVE)


def test_sorted_indices_and_explicit_num_segments(small_blocks):
    mp, x, b, _, kw = problem(3, sparse=True)
    order = np.argsort(np.asarray(kw["dst_idx"]), kind="stable")
    kw = dict(dst_idx=kw["dst_idx"][order], src_idx=kw["src_idx"][order], num_segments=12)
    b = b[order]
    out = mp(x, b, indices_are_sorted=True, **kw)
    assert out.shape[0] == 12
    assert_close(out, reference(mp, x, b, **kw), 2e-5, **RELATIVE)


def test_padded_pairs_with_nan_basis_give_finite_values_and_gradients(small_blocks):
    """Padding pairs are never summed, even when their basis rows hold garbage (NaN)."""
    mp, x, b, _, kw = problem(5, sparse=False)
    pad = np.asarray(kw["adj_idx"]) == x.shape[0]
    b_nan = jnp.where(pad[..., None, None, None], jnp.nan, b)

    def loss(m, x, b):
        return jnp.sum(m(x, b, **kw) ** 2)

    v, g = eqx.filter_value_and_grad(loss)(mp, x, b_nan)
    assert np.isfinite(float(v))
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree.leaves(g))
    v_clean = loss(mp, x, jnp.where(pad[..., None, None, None], 0.0, b))
    np.testing.assert_allclose(float(v), float(v_clean), rtol=1e-6)


def test_second_order_gradients_match_reference(small_blocks):
    """Force-style training: gradient (w.r.t. parameters) of a gradient (w.r.t. the basis)."""
    mp, x, b, _, kw = problem(7, sparse=True, n=6, m=6)

    def outer(fn):
        def force_loss(m):
            forces = jax.grad(lambda b: jnp.sum(jnp.sin(fn(m, x, b))))(b)
            return jnp.sum(forces ** 2)
        return eqx.filter_grad(force_loss)(mp)

    g = outer(lambda m, x, b: m(x, b, **kw))
    g_ref = outer(lambda m, x, b: reference(m, x, b, **kw))
    assert_close(g, g_ref, 5e-5, **RELATIVE)


def test_empty_pair_list():
    mp, x, _, _, _ = problem(0, sparse=True)
    b = jnp.zeros((0, 1, 9, 2))
    e = jnp.zeros((0,), jnp.int32)
    out = mp(x, b, dst_idx=e, src_idx=e)
    assert out.shape == (x.shape[0], mp.out_parity, (mp.max_degree + 1) ** 2, 3)
    assert not np.any(np.asarray(out))


@pytest.mark.parametrize("fuse", [True, False])
def test_path_gradient_from_partial_sums_or_separately(small_blocks, monkeypatch, fuse):
    """The kernel gradient fused with another contraction (per-path partial sums, used from degree
    3 on) and computed on its own agree with the reference, at a low degree where both run."""
    from eqx_mp.nn._cg import engine as eng

    monkeypatch.setattr(eng, "_fuse_path_gradient", lambda table, hole: fuse)
    mp, x, b, w, kw = problem(12, sparse=True, weights=("E", "P", 1, "F"))
    (out, g), (ref, g_ref) = both(mp, x, b, w, kw)
    assert_close(out, ref, 2e-5, **RELATIVE)
    assert_close(g, g_ref, 2e-5, **RELATIVE)
