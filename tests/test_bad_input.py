"""Bad input on every public entry point gives a clear error: type AND a message naming the argument
and the expected vs actual value, raised before any XLA computation.

Also: the documented behaviour of out-of-range indices (ValueError when concrete; under jit clamped
gathers and masked/dropped pairs), checked against the same graph with those pairs marked as padding.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqx_mp
from eqx_mp import ShapeError, nn, ops, so3
from eqx_mp.nn import Dense, Embed, FusedTensor, MessagePass, Tensor

KEY = jax.random.key(0)
N, F, K = 3, 2, 2


@pytest.fixture(scope="module")
def mp():
    return MessagePass(F, K, in_max_degree=1, basis_max_degree=1, key=KEY)


@pytest.fixture(scope="module")
def mp0():
    """All-scalar layer: cheap to jit (the jit tests only concern index handling)."""
    return MessagePass(F, K, in_max_degree=0, basis_max_degree=0, in_parity=1, key=KEY)


@pytest.fixture(scope="module")
def graph0():
    x = jax.random.normal(jax.random.key(1), (N, 1, 1, F))
    adj = ops.dense_pairwise_indices(N)
    b = jax.random.normal(jax.random.key(2), (N, N - 1, 1, 1, K))
    dst, src = ops.sparse_pairwise_indices(N)
    bs = jax.random.normal(jax.random.key(3), (dst.shape[0], 1, 1, K))
    return dict(x=x, adj=adj, b=b, dst=dst, src=src, bs=bs)


@pytest.fixture(scope="module")
def graph():
    x = jax.random.normal(jax.random.key(1), (N, 2, 4, F))
    adj = ops.dense_pairwise_indices(N)
    b = jax.random.normal(jax.random.key(2), (N, N - 1, 1, 4, K))
    dst, src = ops.sparse_pairwise_indices(N)
    bs = jax.random.normal(jax.random.key(3), (dst.shape[0], 1, 4, K))
    return dict(x=x, adj=adj, b=b, dst=dst, src=src, bs=bs)


def _raises(exc, *fragments):
    """pytest.raises that also requires every fragment in the message."""

    class _Ctx:
        def __enter__(self):
            self.ctx = pytest.raises(exc)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *a):
            out = self.ctx.__exit__(*a)
            msg = str(self.info.value)
            for frag in fragments:
                assert frag in msg, f"{frag!r} not in message {msg!r}"
            return out

    return _Ctx()


# ----------------------------------------------------------------------------- MessagePass calls

MP_CASES = {
    # name: (lambda g -> (args, kwargs), exception, fragments)
    "int inputs": (lambda g: ((g["x"].astype(jnp.int32), g["b"]), dict(adj_idx=g["adj"])), ShapeError,
                   ["inputs", "floating-point", "int32"]),
    "complex inputs": (lambda g: ((g["x"].astype(jnp.complex64), g["b"]), dict(adj_idx=g["adj"])),
                       ShapeError, ["inputs", "floating-point", "complex64"]),
    "rank 3 inputs": (lambda g: ((g["x"][0], g["b"]), dict(adj_idx=g["adj"])), ShapeError,
                      ["inputs", "at least 4 dimensions", "(2, 4, 2)"]),
    "parity 3": (lambda g: ((jnp.ones((N, 3, 4, F)), g["b"]), dict(adj_idx=g["adj"])), ShapeError,
                 ["inputs", "axis -3 (parity)", "size 3", "expected 2"]),
    "degree too high": (lambda g: ((jnp.ones((N, 2, 9, F)), g["b"]), dict(adj_idx=g["adj"])),
                        ShapeError, ["inputs", "axis -2", "size 9", "expected 4", "max_degree=1"]),
    "not a square": (lambda g: ((jnp.ones((N, 2, 5, F)), g["b"]), dict(adj_idx=g["adj"])), ShapeError,
                     ["inputs", "axis -2", "size 5", "expected 4"]),
    "features": (lambda g: ((jnp.ones((N, 2, 4, 3)), g["b"]), dict(adj_idx=g["adj"])), ShapeError,
                 ["inputs", "axis -1 (features)", "size 3", "expected 2"]),
    "basis parity": (lambda g: ((g["x"], jnp.ones((N, N - 1, 2, 4, K))), dict(adj_idx=g["adj"])),
                     ShapeError, ["basis", "axis -3 (parity)", "size 2", "expected 1"]),
    "basis degree": (lambda g: ((g["x"], jnp.ones((N, N - 1, 1, 9, K))), dict(adj_idx=g["adj"])),
                     ShapeError, ["basis", "axis -2", "size 9", "expected 4", "basis_max_degree=1"]),
    "basis num": (lambda g: ((g["x"], jnp.ones((N, N - 1, 1, 4, 3))), dict(adj_idx=g["adj"])),
                  ShapeError, ["basis", "axis -1", "size 3", "expected 2", "num_basis=2"]),
    "basis M": (lambda g: ((g["x"], jnp.ones((N, N, 1, 4, K))), dict(adj_idx=g["adj"])), ShapeError,
                ["basis", "(3, 3)", "index list (3, 2)"]),
    "basis int": (lambda g: ((g["x"], g["b"].astype(jnp.int32)), dict(adj_idx=g["adj"])), ShapeError,
                  ["basis", "floating-point", "int32"]),
    "float adj_idx": (lambda g: ((g["x"], g["b"]), dict(adj_idx=g["adj"].astype(jnp.float32))),
                      ShapeError, ["adj_idx", "integer dtype", "float32"]),
    "adj_idx 1-d": (lambda g: ((g["x"], g["b"]), dict(adj_idx=jnp.zeros((N,), jnp.int32))), ShapeError,
                    ["adj_idx", "at least two dimensions", "(3,)"]),
    "adj_idx N": (lambda g: ((g["x"], g["b"]), dict(adj_idx=jnp.zeros((N + 1, N - 1), jnp.int32))),
                  ShapeError, ["adj_idx", "(4, 2)", "(3,)"]),
    "where int": (lambda g: ((g["x"], g["b"]), dict(adj_idx=g["adj"], where=jnp.ones((N, N - 1), jnp.int32))),
                  ShapeError, ["where", "boolean", "int32"]),
    "where shape": (lambda g: ((g["x"], g["b"]), dict(adj_idx=g["adj"], where=jnp.ones((N, N), bool))),
                    ShapeError, ["where", "(3, 3)", "(3, 2)"]),
    "no indices": (lambda g: ((g["x"], g["b"]), {}), RuntimeError, ["adj_idx", "dst_idx", "src_idx"]),
    "both indices": (lambda g: ((g["x"], g["b"]), dict(adj_idx=g["adj"], dst_idx=g["dst"], src_idx=g["src"])),
                     RuntimeError, ["both were provided"]),
    "only dst_idx": (lambda g: ((g["x"], g["bs"]), dict(dst_idx=g["dst"])), ValueError,
                     ["src_idx is None"]),
    "dst/src shapes": (lambda g: ((g["x"], g["bs"]), dict(dst_idx=g["dst"][:-1], src_idx=g["src"])),
                       ShapeError, ["dst_idx", "(5,)", "src_idx", "(6,)"]),
    "float src_idx": (lambda g: ((g["x"], g["bs"]), dict(dst_idx=g["dst"], src_idx=g["src"].astype(float))),
                      ShapeError, ["src_idx", "integer dtype", "float32"]),
    "basis E": (lambda g: ((g["x"], g["bs"][:-1]), dict(dst_idx=g["dst"], src_idx=g["src"])), ShapeError,
                ["basis", "(5,)", "index list (6,)"]),
    "num_segments < max dst": (lambda g: ((g["x"], g["bs"]), dict(dst_idx=g["dst"], src_idx=g["src"], num_segments=1)),
                               ValueError, ["dst_idx", "index 2 > 1", "num_segments=1"]),
    "num_segments negative": (lambda g: ((g["x"], g["bs"]), dict(dst_idx=g["dst"], src_idx=g["src"], num_segments=-1)),
                              ValueError, ["num_segments", "non-negative int", "-1"]),
    "num_segments float": (lambda g: ((g["x"], g["bs"]), dict(dst_idx=g["dst"], src_idx=g["src"], num_segments=3.0)),
                           ValueError, ["num_segments", "3.0"]),
    "negative adj_idx": (lambda g: ((g["x"], g["b"]), dict(adj_idx=g["adj"].at[0, 0].set(-1))), ValueError,
                         ["adj_idx", "negative index -1", "[0, 3]"]),
    "adj_idx > N": (lambda g: ((g["x"], g["b"]), dict(adj_idx=g["adj"].at[0, 0].set(N + 1))), ValueError,
                    ["adj_idx", "index 4 > 3", "3 marks padding"]),
    "negative src_idx": (lambda g: ((g["x"], g["bs"]), dict(dst_idx=g["dst"], src_idx=g["src"].at[0].set(-2))),
                         ValueError, ["src_idx", "negative index -2"]),
    "src_idx > N": (lambda g: ((g["x"], g["bs"]), dict(dst_idx=g["dst"], src_idx=g["src"].at[0].set(7))),
                    ValueError, ["src_idx", "index 7 > 3"]),
    "negative dst_idx": (lambda g: ((g["x"], g["bs"]), dict(dst_idx=g["dst"].at[0].set(-1), src_idx=g["src"])),
                         ValueError, ["dst_idx", "negative index -1"]),
    "weights not broadcastable": (lambda g: ((g["x"], g["b"], jnp.ones((N, N - 1, 3))), dict(adj_idx=g["adj"])),
                                  ValueError, ["weights", "(3, 2, 3)", "(3, 2, 2, 4, 2)"]),
    "weights int": (lambda g: ((g["x"], g["b"], jnp.ones((N, N - 1, 1, 1, 1), jnp.int32)), dict(adj_idx=g["adj"])),
                    ShapeError, ["weights", "floating-point", "int32"]),
    "batch: inputs vs adj_idx": (
        lambda g: ((jnp.ones((2, N, 2, 4, F)), jnp.ones((3, N, N - 1, 1, 4, K))),
                   dict(adj_idx=jnp.broadcast_to(g["adj"], (3, N, N - 1)))),
        ShapeError, ["adj_idx", "(3, 3, 2)", "(2, 3)"]),
    "batch: basis vs adj_idx": (
        lambda g: ((jnp.ones((2, N, 2, 4, F)), jnp.ones((3, N, N - 1, 1, 4, K))),
                   dict(adj_idx=jnp.broadcast_to(g["adj"], (2, N, N - 1)))),
        ShapeError, ["basis", "(3, 3, 2)", "(2, 3, 2)"]),
    "batch: inputs vs src_idx": (
        lambda g: ((jnp.ones((2, N, 2, 4, F)), jnp.ones((3, 6, 1, 4, K))),
                   dict(dst_idx=jnp.broadcast_to(g["dst"], (3, 6)), src_idx=jnp.broadcast_to(g["src"], (3, 6)))),
        ShapeError, ["src_idx", "(3,)", "(2,)"]),
    "inputs list": (lambda g: ((np.ones((N, 2, 4, F)).tolist(), g["b"]), dict(adj_idx=g["adj"])), ShapeError,
                    ["inputs", "array", "list"]),
}


@pytest.mark.parametrize("case", list(MP_CASES))
def test_message_pass_bad_call(mp, graph, case):
    make, exc, fragments = MP_CASES[case]
    args, kwargs = make(graph)
    with _raises(exc, *fragments):
        mp(*args, **kwargs)


def test_message_pass_numpy_inputs_accepted(mp, graph):
    """NumPy arrays work like JAX arrays (as in e3x), rather than failing the type check."""
    out = mp(np.asarray(graph["x"]), np.asarray(graph["b"]), adj_idx=np.asarray(graph["adj"]))
    ref = mp(graph["x"], graph["b"], adj_idx=graph["adj"])
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))


# ----------------------------------------------------------------------------- indices under jit


def test_index_range_behaviour_is_documented():
    doc = MessagePass.__call__.__doc__
    for frag in ("ValueError", "jit", "clamp", "num_segments", "dropped"):
        assert frag in doc, frag
    assert "clamp" in ops.indexed.__doc__ and "jit" in ops.indexed_sum.__doc__


def test_out_of_range_indices_under_jit_dense(mp0, graph0):
    """Under jit, out-of-range adj_idx cannot raise; such pairs are masked like padding pairs."""
    mp, x, b, adj = mp0, graph0["x"], graph0["b"], graph0["adj"]
    fn = jax.jit(lambda m, x, b, a: m(x, b, adj_idx=a))
    bad = adj.at[0, 0].set(-1).at[1, 1].set(N + 5)
    padded = adj.at[0, 0].set(N).at[1, 1].set(N)
    out = fn(mp, x, b, bad)
    ref = mp(x, b, adj_idx=padded)  # eager, the same graph with those pairs marked as padding
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    grads = jax.grad(lambda x, b: jnp.sum(fn(mp, x, b, bad) ** 2), argnums=(0, 1))(x, b)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
    assert float(jnp.abs(grads[1][0, 0]).max()) == 0.0 and float(jnp.abs(grads[1][1, 1]).max()) == 0.0


def test_out_of_range_indices_under_jit_sparse(mp0, graph0):
    """Under jit: dst_idx >= num_segments (num_segments smaller than the largest dst_idx), negative
    dst_idx and out-of-range src_idx drop the pair (compared with the pair removed)."""
    mp, x, bs, dst, src = mp0, graph0["x"], graph0["bs"], graph0["dst"], graph0["src"]
    fn = jax.jit(lambda m, x, b, d, s: m(x, b, dst_idx=d, src_idx=s, num_segments=2))
    # dst = [0 0 1 1 2 2]; with num_segments=2 the pairs with dst 2 cannot be summed.
    bad_dst = dst.at[0].set(-1)
    bad_src = src.at[1].set(-4).at[2].set(N + 7)
    out = fn(mp, x, bs, bad_dst, bad_src)
    keep = np.array([3])  # the only pair with an in-range dst and src
    ref = mp(x, bs[keep], dst_idx=dst[keep], src_idx=src[keep], num_segments=2)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    assert out.shape == (2, 1, 1, F)
    g = jax.grad(lambda x: jnp.sum(fn(mp, x, bs, bad_dst, bad_src) ** 2))(x)
    assert bool(jnp.all(jnp.isfinite(g)))
    # Eagerly (concrete indices) the same call is an error naming the argument.
    with _raises(ValueError, "dst_idx", "negative index -1"):
        mp(x, bs, dst_idx=bad_dst, src_idx=src, num_segments=2)


# ----------------------------------------------------------------------------- other layers

INPUTS = jnp.ones((N, 2, 4, F))


@pytest.mark.parametrize(
    "x, exc, fragments",
    [
        (INPUTS.astype(jnp.int32), ShapeError, ["inputs", "floating-point", "int32"]),
        (INPUTS.astype(jnp.complex64), ShapeError, ["inputs", "floating-point", "complex64"]),
        (jnp.ones((4, 2)), ShapeError, ["inputs", "at least 3 dimensions", "(4, 2)"]),
        (jnp.ones((N, 1, 4, F)), ShapeError, ["inputs", "axis -3 (parity)", "size 1", "expected 2"]),
        (jnp.ones((N, 3, 4, F)), ShapeError, ["inputs", "axis -3 (parity)", "size 3", "expected 2"]),
        (jnp.ones((N, 2, 9, F)), ShapeError, ["inputs", "axis -2", "size 9", "expected 4"]),
        (jnp.ones((N, 2, 4, 3)), ShapeError, ["inputs", "axis -1 (features)", "size 3", "expected 2"]),
        ([1.0, 2.0], ShapeError, ["inputs", "list"]),
    ],
)
def test_dense_bad_call(x, exc, fragments):
    d = Dense(F, 3, 1, key=KEY)
    with _raises(exc, *fragments):
        d(x)


@functools.lru_cache(maxsize=None)
def _layer(cls):
    return cls(F, 1, 1, key=KEY)


@pytest.mark.parametrize("cls", [Tensor, FusedTensor])
@pytest.mark.parametrize(
    "x1, x2, fragments",
    [
        (INPUTS.astype(jnp.int32), INPUTS, ["inputs1", "floating-point", "int32"]),
        (INPUTS, INPUTS.astype(jnp.complex64), ["inputs2", "floating-point", "complex64"]),
        (jnp.ones((N, 3, 4, F)), INPUTS, ["inputs1", "axis -3 (parity)", "size 3", "expected 2"]),
        (INPUTS, jnp.ones((N, 2, 9, F)), ["inputs2", "axis -2", "size 9", "expected 4"]),
        (INPUTS, jnp.ones((N, 2, 4, 3)), ["inputs2", "axis -1 (features)", "size 3", "expected 2"]),
        (INPUTS, jnp.ones((N + 1, 2, 4, F)), ["inputs1", "(3,)", "inputs2", "(4,)", "broadcast"]),
        (jnp.ones((4, F)), INPUTS, ["inputs1", "at least 3 dimensions"]),
    ],
)
def test_tensor_bad_call(cls, x1, x2, fragments):
    t = _layer(cls)
    with _raises(ShapeError, *fragments):
        t(x1, x2)


def test_tensor_numpy_inputs_accepted():
    t = _layer(Tensor)
    x = jax.random.normal(KEY, (N, 2, 4, F))
    np.testing.assert_array_equal(np.asarray(t(np.asarray(x), x)), np.asarray(t(x, x)))
    d = Dense(F, 3, 1, key=KEY)
    np.testing.assert_array_equal(np.asarray(d(np.asarray(x))), np.asarray(d(x)))


# ----------------------------------------------------------------------------- constructors

CTOR_CASES = {
    "MessagePass F=0": (lambda: MessagePass(0, 2, 1, 1, key=KEY), ValueError, ["num_features", ">= 1", "0"]),
    "MessagePass float F": (lambda: MessagePass(2.0, 2, 1, 1, key=KEY), TypeError, ["num_features", "int", "2.0"]),
    "MessagePass num_basis=0": (lambda: MessagePass(2, 0, 1, 1, key=KEY), ValueError, ["num_basis", "0"]),
    "MessagePass negative degree": (lambda: MessagePass(2, 2, -1, 1, key=KEY), ValueError, ["in_max_degree", "-1"]),
    "MessagePass bool degree": (lambda: MessagePass(2, 2, True, 1, key=KEY), TypeError, ["in_max_degree", "bool"]),
    "MessagePass in_parity=3": (lambda: MessagePass(2, 2, 1, 1, in_parity=3, key=KEY), ValueError, ["in_parity", "1", "2", "got 3"]),
    "MessagePass unreachable max_degree": (lambda: MessagePass(2, 2, 1, 1, max_degree=3, key=KEY), ValueError,
                                           ["max_degree=3", "at most 2"]),
    "MessagePass missing key": (lambda: MessagePass(2, 2, 1, 1), TypeError, ["MessagePass", "key"]),
    "Dense parity=3": (lambda: Dense(2, 2, 1, parity=3, key=KEY), ValueError, ["parity", "got 3"]),
    "Dense features=0": (lambda: Dense(2, 0, 1, key=KEY), ValueError, ["features", "0"]),
    "Dense missing key": (lambda: Dense(2, 2, 1), TypeError, ["Dense", "key"]),
    "Tensor parity2=3": (lambda: Tensor(2, 1, 1, parity2=3, key=KEY), ValueError, ["parity2", "got 3"]),
    "Tensor unreachable max_degree": (lambda: Tensor(2, 1, 1, max_degree=3, key=KEY), ValueError,
                                      ["at most 2", "max_degree=3"]),
    "Tensor missing key": (lambda: Tensor(2, 1, 1), TypeError, ["Tensor", "key"]),
    "FusedTensor unreachable max_degree": (lambda: FusedTensor(2, 0, 1, max_degree=2, key=KEY), ValueError,
                                           ["at most 1", "max_degree=2"]),
    "FusedTensor parity1=0": (lambda: FusedTensor(2, 1, 1, parity1=0, key=KEY), ValueError, ["parity1", "got 0"]),
    "FusedTensor missing key": (lambda: FusedTensor(2, 1, 1), TypeError, ["FusedTensor", "key"]),
    "Embed num_embeddings=0": (lambda: Embed(0, 2, key=KEY), ValueError, ["num_embeddings", "0"]),
    "Embed missing key": (lambda: Embed(3, 2), TypeError, ["key"]),
    "ExponentialBasis gamma<=0": (lambda: nn.ExponentialBasis(0.0), ValueError, ["initial_gamma", "positive"]),
    "dense_pairwise_indices(0)": (lambda: ops.dense_pairwise_indices(0), ValueError, ["num", "0"]),
    "dense_pairwise_indices(2.5)": (lambda: ops.dense_pairwise_indices(2.5), TypeError, ["num", "int", "2.5"]),
    "sparse_pairwise_indices(-1)": (lambda: ops.sparse_pairwise_indices(-1), ValueError, ["num", "-1"]),
}


@pytest.mark.parametrize("case", list(CTOR_CASES))
def test_constructor_errors(case):
    make, exc, fragments = CTOR_CASES[case]
    with _raises(exc, *fragments):
        make()


# ----------------------------------------------------------------------------- Embed


def test_embed_bad_input_and_documented_out_of_range():
    e = Embed(3, 2, key=KEY)
    with _raises(ShapeError, "inputs", "integer", "float32"):
        e(jnp.array([0.0, 1.0]))
    with _raises(ShapeError, "inputs", "integer", "bool"):
        e(jnp.array([True]))
    with _raises(ShapeError, "inputs", "list"):
        e([0, 1])
    # Documented (e3x's jnp.take): negative counts from the end, too large gives NaN -- loud, not silent.
    np.testing.assert_array_equal(e(jnp.array([-1]))[0], e.embedding[2])
    assert bool(jnp.all(jnp.isnan(e(jnp.array([3])))))


# ----------------------------------------------------------------------------- so3 / basis


RF = functools.partial(nn.reciprocal_bernstein)
R = jnp.ones((4, 3))

FN_CASES = {
    "basis r (...,4)": (lambda: nn.basis(jnp.ones((4, 4)), max_degree=1, num=2, radial_fn=RF), ShapeError,
                        ["r", "(..., 3)", "(4, 4)"]),
    "basis scalar r": (lambda: nn.basis(jnp.ones(()), max_degree=1, num=2, radial_fn=RF), ShapeError, ["r", "()"]),
    "basis int r": (lambda: nn.basis(R.astype(jnp.int32), max_degree=1, num=2, radial_fn=RF), ShapeError,
                    ["r", "floating-point", "int32"]),
    "basis complex r": (lambda: nn.basis(R.astype(jnp.complex64), max_degree=1, num=2, radial_fn=RF), ShapeError,
                        ["r", "floating-point", "complex64"]),
    "basis max_degree=-1": (lambda: nn.basis(R, max_degree=-1, num=2, radial_fn=RF), ValueError, ["max_degree", "-1"]),
    "basis float max_degree": (lambda: nn.basis(R, max_degree=1.0, num=2, radial_fn=RF), TypeError, ["max_degree", "1.0"]),
    "basis num=0": (lambda: nn.basis(R, max_degree=1, num=0, radial_fn=RF), ValueError, ["num", "0"]),
    "basis return_cutoff without cutoff_fn": (
        lambda: nn.basis(R, max_degree=1, num=2, radial_fn=RF, return_cutoff=True), ValueError, ["cutoff_fn"]),
    "sh int": (lambda: so3.spherical_harmonics(R.astype(jnp.int32), 2), ShapeError, ["r", "floating-point", "int32"]),
    "sh complex": (lambda: so3.spherical_harmonics(R.astype(jnp.complex64), 2), ShapeError, ["r", "complex64"]),
    "sh (...,2)": (lambda: so3.spherical_harmonics(jnp.ones((4, 2)), 2), ShapeError,
                   ["r", "axis -1", "size 2", "expected 3"]),
    "sh max_degree=-1": (lambda: so3.spherical_harmonics(R, -1), ValueError, ["max_degree", "-1"]),
    "sh max_degree=1.5": (lambda: so3.spherical_harmonics(R, 1.5), TypeError, ["max_degree", "1.5"]),
    "sh normalization": (lambda: so3.spherical_harmonics(R, 1, normalization="foo"), ValueError,
                         ["normalization", "racah", "foo"]),
    "wigner_d 4x4": (lambda: so3.wigner_d(jnp.eye(4), 2), ShapeError, ["rot", "(..., 3, 3)", "size 4", "expected 3"]),
    "wigner_d 1-d": (lambda: so3.wigner_d(jnp.ones(3), 2), ShapeError, ["rot", "(..., 3, 3)", "(3,)"]),
    "wigner_d bool": (lambda: so3.wigner_d(jnp.eye(3, dtype=bool), 2), ShapeError, ["rot", "bool"]),
    "wigner_d complex": (lambda: so3.wigner_d(jnp.eye(3, dtype=jnp.complex64), 1), ShapeError, ["rot", "complex64"]),
    "wigner_d max_degree=-1": (lambda: so3.wigner_d(jnp.eye(3), -1), ValueError, ["max_degree", "-1"]),
}


@pytest.mark.parametrize("case", list(FN_CASES))
def test_function_bad_input(case):
    make, exc, fragments = FN_CASES[case]
    with _raises(exc, *fragments):
        make()


# ----------------------------------------------------------------------------- ops

ADJ = ops.dense_pairwise_indices(N)
DST, SRC = ops.sparse_pairwise_indices(N)
P = jnp.ones((6, 2))

OPS_CASES = {
    "gather float idx": (lambda: ops.gather_src(jnp.ones((N, 2)), adj_idx=ADJ.astype(float)), ShapeError,
                         ["adj_idx", "integer dtype", "float32"]),
    "gather no idx": (lambda: ops.gather_src(jnp.ones((N, 2))), RuntimeError, ["adj_idx", "src_idx"]),
    "gather batch": (lambda: ops.gather_src(jnp.ones((2, N, 2)), adj_idx=jnp.zeros((3, N, 2), jnp.int32)),
                     ShapeError, ["adj_idx", "(3, 3, 2)", "(2, 3, 2)", "(3,) != (2,)"]),
    "gather list": (lambda: ops.gather_src([1.0, 2.0], src_idx=SRC), ShapeError, ["inputs", "array", "list"]),
    "gather src > N": (lambda: ops.gather_src(jnp.ones((N, 2)), src_idx=SRC.at[0].set(7)), ValueError,
                       ["src_idx", "index 7 > 3", "N=3"]),
    "gather negative src": (lambda: ops.gather_src(jnp.ones((N, 2)), src_idx=SRC.at[0].set(-1)), ValueError,
                            ["src_idx", "negative index -1"]),
    "gather_dst dst > N": (lambda: ops.gather_dst(jnp.ones((N, 2)), dst_idx=DST.at[0].set(9)), ValueError,
                           ["dst_idx", "index 9 > 3"]),
    "indexed_sum no num_segments": (lambda: ops.indexed_sum(P, dst_idx=DST), TypeError, ["num_segments", "required"]),
    "indexed_sum num_segments < max dst": (lambda: ops.indexed_sum(P, dst_idx=DST, num_segments=1), ValueError,
                                           ["dst_idx", "index 2 > 1", "num_segments=1"]),
    "indexed_sum num_segments float": (lambda: ops.indexed_sum(P, dst_idx=DST, num_segments=2.5), ValueError,
                                       ["num_segments", "non-negative int", "2.5"]),
    "indexed_sum num_segments negative": (lambda: ops.indexed_sum(P, dst_idx=DST, num_segments=-1), ValueError,
                                          ["num_segments", "-1"]),
    "indexed_sum negative dst": (lambda: ops.indexed_sum(P, dst_idx=DST.at[0].set(-1), num_segments=3), ValueError,
                                 ["dst_idx", "negative index -1"]),
    "indexed_sum float dst": (lambda: ops.indexed_sum(P, dst_idx=DST.astype(float), num_segments=3), ShapeError,
                              ["dst_idx", "integer dtype", "float32"]),
    "indexed_sum shape": (lambda: ops.indexed_sum(P[:5], dst_idx=DST, num_segments=3), ShapeError,
                          ["dst_idx", "(6,)", "(5, 2)"]),
    "indexed_sum complex": (lambda: ops.indexed_sum(P.astype(jnp.complex64), dst_idx=DST, num_segments=3), TypeError,
                            ["inputs", "complex64"]),
    "indexed_sum list": (lambda: ops.indexed_sum([1.0], dst_idx=DST, num_segments=3), ShapeError, ["inputs", "list"]),
    "indexed_sum dense without where": (lambda: ops.indexed_sum(jnp.ones((N, 2, 2)), adj_idx=ADJ), TypeError,
                                        ["where", "required"]),
    "indexed_sum where int": (lambda: ops.indexed_sum(jnp.ones((N, 2, 2)), adj_idx=ADJ, where=jnp.ones((N, 2), jnp.int32)),
                              ShapeError, ["where", "boolean", "int32"]),
    "indexed_sum dense shape": (lambda: ops.indexed_sum(jnp.ones((N, 3, 2)), adj_idx=ADJ, where=ADJ < N), ShapeError,
                                ["adj_idx", "(3, 2)", "(3, 3, 2)"]),
    "indexed_max negative dst": (lambda: ops.indexed_max(P, dst_idx=DST.at[0].set(-1), num_segments=3), ValueError,
                                 ["dst_idx", "negative"]),
    "indexed_softmax int": (lambda: ops.indexed_softmax(jnp.ones(6, jnp.int32), dst_idx=DST, num_segments=3),
                            ShapeError, ["inputs", "floating point", "int32"]),
}


@pytest.mark.parametrize("case", list(OPS_CASES))
def test_ops_bad_input(case):
    make, exc, fragments = OPS_CASES[case]
    with _raises(exc, *fragments):
        make()


def test_indexed_sum_out_of_range_under_jit_dropped():
    """Documented: under jit, dst_idx outside [0, num_segments) is dropped (no error, no NaN)."""
    vals = jnp.arange(6.0)
    fn = jax.jit(lambda v, d: ops.indexed_sum(v, dst_idx=d, num_segments=2))
    out = fn(vals, jnp.array([0, 0, 1, 1, 2, -1]))
    np.testing.assert_array_equal(out, jnp.array([0.0 + 1.0, 2.0 + 3.0]))
    g = jax.jit(lambda x, s: ops.gather_src(x, src_idx=s))(jnp.arange(3.0), jnp.array([-1, 5]))
    np.testing.assert_array_equal(g, jnp.array([0.0, 2.0]))  # clamped to [0, N-1]


# ----------------------------------------------------------------------------- activations


@pytest.mark.parametrize(
    "x, fragments",
    [
        (jnp.ones((N, 2, 4, F), jnp.bool_), ["x", "floating-point", "bool"]),
        (jnp.ones((N, 2, 4, F), jnp.complex64), ["x", "floating-point", "complex64"]),
        (jnp.ones((4, 2)), ["x", "at least three dimensions", "(4, 2)"]),
        (jnp.ones((N, 3, 4, F)), ["x", "axis -3 (parity)", "size 3"]),
        (jnp.ones((N, 2, 5, F)), ["x", "axis -2", "(L+1)**2", "size 5"]),
    ],
)
@pytest.mark.parametrize("act", [nn.relu, nn.silu, nn.gelu])
def test_activation_bad_input(act, x, fragments):
    with _raises(ShapeError, *fragments):
        act(x)


def test_shape_error_is_value_and_type_error():
    assert issubclass(eqx_mp.ShapeError, ValueError) and issubclass(eqx_mp.ShapeError, TypeError)
