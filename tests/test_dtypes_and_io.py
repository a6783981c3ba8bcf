"""dtypes (float64 end to end, bfloat16 computation, float64 parameters) and save/load round trips.

References: the float32 run of the same parameters (dtypes) and the saved module itself (bit-exact).
"""

import io as _io

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_mp import io, ops
from eqx_mp.nn import Dense, Embed, ExponentialBasis, FusedTensor, MessagePass, Tensor

KEY = jax.random.key(0)
N, F, K = 3, 2, 2
ADJ = ops.dense_pairwise_indices(N)


def _cast(tree, dtype):
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree)


def _mp_inputs(dtype, L=1):
    x = jax.random.normal(jax.random.key(1), (N, 2, (L + 1) ** 2, F)).astype(dtype)
    b = jax.random.normal(jax.random.key(2), (N, N - 1, 1, (L + 1) ** 2, K)).astype(dtype)
    return x, b


# ----------------------------------------------------------------------------- dtypes


def test_float64_end_to_end():
    """Under enable_x64: float64 params and inputs give float64 outputs and gradients, equal to the
    float32 computation up to float32 rounding."""
    with jax.enable_x64(True):
        mp = MessagePass(F, K, 1, 1, param_dtype=jnp.float64, key=KEY)
        d = Dense(F, F, 1, param_dtype=jnp.float64, key=KEY)
        assert all(a.dtype == jnp.float64 for a in jax.tree_util.tree_leaves(eqx.filter(mp, eqx.is_array)))
        x, b = _mp_inputs(jnp.float64)
        out = d(mp(x, b, adj_idx=ADJ))
        assert out.dtype == jnp.float64
        g = jax.jit(jax.grad(lambda m, x: jnp.sum(m(x, b, adj_idx=ADJ) ** 2), argnums=(0, 1)))(mp, x)
        assert all(a.dtype == jnp.float64 for a in jax.tree_util.tree_leaves(g))
        ref = d(mp(x, b, adj_idx=ADJ))
    out32 = _cast(d, jnp.float32)(_cast(mp, jnp.float32)(x.astype(jnp.float32), b.astype(jnp.float32), adj_idx=ADJ))
    assert out32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(ref), np.asarray(out32, np.float64), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fused", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_bfloat16_computation_float32_params(fused):
    """dtype=bfloat16 with float32 parameters: bfloat16 output close to the float32 result."""
    mp32 = MessagePass(F, K, 1, 1, use_fused_tensor=fused, key=KEY)
    mp16 = MessagePass(F, K, 1, 1, use_fused_tensor=fused, dtype=jnp.bfloat16, key=KEY)
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(eqx.filter(mp16, eqx.is_array)))
    x, b = _mp_inputs(jnp.float32)
    out16, out32 = mp16(x, b, adj_idx=ADJ), mp32(x, b, adj_idx=ADJ)
    assert out16.dtype == jnp.bfloat16 and out32.dtype == jnp.float32
    scale = float(jnp.max(jnp.abs(out32)))
    np.testing.assert_allclose(np.asarray(out16, np.float32), np.asarray(out32), atol=0.05 * scale)
    d16 = Dense(F, F, 1, dtype=jnp.bfloat16, key=KEY)
    assert d16(x).dtype == jnp.bfloat16 and d16.kernel.dtype == jnp.float32
    t16 = Tensor(F, 1, 1, dtype=jnp.bfloat16, key=KEY)
    assert t16(x, x).dtype == jnp.bfloat16
    e16 = Embed(3, F, dtype=jnp.bfloat16, key=KEY)
    assert e16(jnp.array([0, 2])).dtype == jnp.bfloat16


def test_param_dtype_float64_promotes():
    """param_dtype=float64 (dtype=None): parameters are float64 and float32 inputs are promoted, so
    the output is float64 (the documented flax rule)."""
    with jax.enable_x64(True):
        for m in (Dense(F, F, 1, param_dtype=jnp.float64, key=KEY), Tensor(F, 1, 1, param_dtype=jnp.float64, key=KEY),
                  FusedTensor(F, 1, 1, param_dtype=jnp.float64, key=KEY), Embed(3, F, param_dtype=jnp.float64, key=KEY)):
            assert all(a.dtype == jnp.float64 for a in jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array)))
        x, b = _mp_inputs(jnp.float32)
        mp = MessagePass(F, K, 1, 1, param_dtype=jnp.float64, key=KEY)
        assert mp(x, b, adj_idx=ADJ).dtype == jnp.float64
        assert Dense(F, F, 1, param_dtype=jnp.float64, key=KEY)(x).dtype == jnp.float64
        mp32c = MessagePass(F, K, 1, 1, param_dtype=jnp.float64, dtype=jnp.float32, key=KEY)
        assert mp32c(x, b, adj_idx=ADJ).dtype == jnp.float32


# ----------------------------------------------------------------------------- save / load

MODULES = {
    "Dense": lambda: Dense(F, 3, 1, key=KEY),
    "Dense bf16 params no bias": lambda: Dense(F, 3, 1, use_bias=False, param_dtype=jnp.bfloat16, key=KEY),
    "Tensor": lambda: Tensor(F, 1, 1, parity2=1, key=KEY),
    "FusedTensor": lambda: FusedTensor(F, 1, 1, key=KEY),
    "MessagePass": lambda: MessagePass(F, K, 1, 1, use_basis_bias=True, key=KEY),
    "MessagePass fused": lambda: MessagePass(F, K, 1, 1, use_fused_tensor=True, key=KEY),
    "Embed": lambda: Embed(4, F, key=KEY),
    "ExponentialBasis": lambda: ExponentialBasis(0.7),
}


def _leaves(m):
    return jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array))


def _bit_equal(a, b):
    la, lb = _leaves(a), _leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_array_equal(np.asarray(u).reshape(-1).view(np.uint8), np.asarray(v).reshape(-1).view(np.uint8))
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)


@pytest.mark.parametrize("name", list(MODULES))
def test_round_trip_bit_exact(name, tmp_path):
    m = MODULES[name]()
    # Plain equinox, into a skeleton with different (random) values.
    buf = _io.BytesIO()
    eqx.tree_serialise_leaves(buf, m)
    buf.seek(0)
    other = jax.tree_util.tree_map(lambda a: a + 1 if eqx.is_inexact_array(a) else a, m)
    _bit_equal(eqx.tree_deserialise_leaves(buf, other), m)
    # eqx_mp.io: no skeleton needed; hyper-parameters come from the file.
    path = io.save(tmp_path / "m.eqx", m)
    loaded = io.load(path)
    assert type(loaded) is type(m)
    _bit_equal(loaded, m)
    _bit_equal(io.load(path, like=m), m)


def test_loaded_message_pass_computes_the_same(tmp_path):
    m = MODULES["MessagePass fused"]()
    x, b = _mp_inputs(jnp.float32)
    loaded = io.load(io.save(tmp_path / "mp.eqx", m))
    np.testing.assert_array_equal(np.asarray(loaded(x, b, adj_idx=ADJ)), np.asarray(m(x, b, adj_idx=ADJ)))


def test_equinox_wrong_configuration_shape_error():
    """What equinox itself raises for a leaf of another shape: RuntimeError naming the leaf."""
    buf = _io.BytesIO()
    eqx.tree_serialise_leaves(buf, Dense(F, 2, 1, key=KEY))
    buf.seek(0)
    with pytest.raises(RuntimeError, match=r"kernel.*\(2, 2, 2, 3\).*\(2, 2, 2, 2\)"):
        eqx.tree_deserialise_leaves(buf, Dense(F, 3, 1, key=KEY))


def test_equinox_silently_accepts_some_wrong_configurations():
    """Why eqx_mp.io exists: plain equinox loads these without complaint."""
    buf = _io.BytesIO()
    eqx.tree_serialise_leaves(buf, Dense(F, 2, 1, key=KEY))
    buf.seek(0)
    eqx.tree_deserialise_leaves(buf, Dense(F, 2, 1, use_bias=False, key=KEY))  # bias left unread
    buf = _io.BytesIO()
    eqx.tree_serialise_leaves(buf, Tensor(F, 1, 1, key=KEY))
    buf.seek(0)
    eqx.tree_deserialise_leaves(buf, Tensor(F, 1, 1, cartesian_order=False, key=KEY))  # static flag


@pytest.mark.parametrize(
    "saved, like, fragments",
    [
        (lambda: Dense(F, 2, 1, key=KEY), lambda: Dense(F, 2, 1, use_bias=False, key=KEY),
         ["use_bias", "True", "False"]),
        (lambda: Dense(F, 2, 1, key=KEY), lambda: Dense(F, 3, 1, key=KEY), ["'features'", "2", "3"]),
        (lambda: Tensor(F, 1, 1, key=KEY), lambda: Tensor(F, 1, 1, cartesian_order=False, key=KEY),
         ["cartesian_order"]),
        (lambda: MessagePass(F, K, 1, 1, key=KEY), lambda: MessagePass(F, K, 1, 1, use_fused_tensor=True, key=KEY),
         ["use_fused_tensor"]),
        (lambda: Dense(F, 2, 1, key=KEY), lambda: Tensor(F, 1, 1, key=KEY), ["Dense", "Tensor"]),
        (lambda: Dense(F, 2, 1, key=KEY), lambda: eqx.filter_eval_shape(Dense, F, 2, 1, param_dtype=jnp.float16, key=KEY),
         ["param_dtype", "float32", "float16"]),
    ],
)
def test_io_load_wrong_configuration(saved, like, fragments, tmp_path):
    path = io.save(tmp_path / "m.eqx", saved())
    with pytest.raises(ValueError) as info:
        io.load(path, like=like())
    for frag in fragments:
        assert frag in str(info.value), (frag, str(info.value))


def test_io_load_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "missing.eqx")
    p = tmp_path / "junk.eqx"
    p.write_bytes(b"not json\n")
    with pytest.raises(ValueError, match="JSON"):
        io.load(p)
    p.write_bytes(b'{"class": "os:system", "hyperparams": {}}\n')
    with pytest.raises(ValueError, match="refusing to load saved class 'os:system'"):
        io.load(p)
    # A file truncated inside the leaves.
    good = io.save(tmp_path / "d.eqx", Dense(F, 2, 1, key=KEY)).read_bytes()
    p.write_bytes(good[:-40])
    with pytest.raises(ValueError, match="Dense"):
        io.load(p)
    # Extra data after the leaves (a module with more parameters wrote it).
    p.write_bytes(good + b"\x00" * 8)
    with pytest.raises(ValueError, match="extra data"):
        io.load(p)
