"""Tests of eqx_mp.nn.Embed against e3x.nn.Embed."""

from __future__ import annotations

import e3x
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqx_mp
from eqx_mp.interop import from_e3x
from eqx_mp.nn import Embed


def test_parameter_shape_and_default_init_match_e3x(dtype):
    """`embedding` has e3x's shape and e3x's default initializer (same key -> same values)."""
    key = jax.random.key(3)
    m = Embed(7, 5, param_dtype=dtype, key=key)
    assert m.embedding.shape == (7, 1, 1, 5) and m.embedding.dtype == dtype
    assert (m.num_embeddings, m.features) == (7, 5)
    ref = e3x.nn.modules.default_embed_init(key, (7, 1, 1, 5), dtype)
    np.testing.assert_array_equal(m.embedding, ref)
    # the flax module's parameter has the same shape and dtype
    params = e3x.nn.Embed(7, 5, param_dtype=dtype).init(key, jnp.zeros(2, jnp.int32))["params"]
    assert params["embedding"].shape == m.embedding.shape
    assert params["embedding"].dtype == m.embedding.dtype


def test_lookup_and_gradient_match_e3x(dtype):
    """Same weights -> same outputs and the same gradient w.r.t. the embedding table."""
    ref_mod = e3x.nn.Embed(6, 4, param_dtype=dtype)
    z = jnp.asarray([[0, 5, 2], [3, 3, 1]], dtype=jnp.int32)
    variables = ref_mod.init(jax.random.key(0), z)
    ours = from_e3x(ref_mod, variables, z)
    np.testing.assert_array_equal(ours.embedding, variables["params"]["embedding"])
    y, y_ref = ours(z), ref_mod.apply(variables, z)
    assert y.shape == (2, 3, 1, 1, 4) and y.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)
    w = jnp.asarray(np.random.default_rng(0).normal(size=y.shape), dtype)
    g = jax.grad(lambda m: jnp.sum(m(z) * w))(ours)
    g_ref = jax.grad(lambda v: jnp.sum(ref_mod.apply(v, z) * w))(variables)
    np.testing.assert_allclose(g.embedding, g_ref["params"]["embedding"], rtol=1e-6)


def test_input_kinds_and_dtype_override():
    m = Embed(4, 3, key=jax.random.key(1))
    assert m(jnp.int32(2)).shape == (1, 1, 3)
    np.testing.assert_array_equal(m(np.array([1, 3], dtype=np.uint8)), m.embedding[jnp.array([1, 3])])
    assert eqx.filter_jit(m)(jnp.arange(4)).shape == (4, 1, 1, 3)
    m16 = Embed(4, 3, dtype=jnp.bfloat16, key=jax.random.key(1))
    assert m16.embedding.dtype == jnp.float32 and m16(jnp.arange(2)).dtype == jnp.bfloat16
    ref = e3x.nn.Embed(4, 3, dtype=jnp.bfloat16)
    v = ref.init(jax.random.key(0), jnp.arange(2))
    assert ref.apply(v, jnp.arange(2)).dtype == jnp.bfloat16
    # custom initializer
    mc = Embed(2, 3, embedding_init=jax.nn.initializers.ones, key=jax.random.key(0))
    np.testing.assert_array_equal(mc.embedding, jnp.ones((2, 1, 1, 3)))
    # a pytree of arrays: filter_jit / tree utils see one parameter
    assert len(jax.tree.leaves(eqx.filter(m, eqx.is_array))) == 1


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda m: m(jnp.asarray([0.0, 1.0])), eqx_mp.ShapeError, "integer .*dtype, got dtype float32"),
        (lambda m: m(jnp.asarray([True])), eqx_mp.ShapeError, "got dtype bool"),
        (lambda m: m([0, 1]), eqx_mp.ShapeError, "inputs must be an integer array, got list"),
        (lambda m: Embed(0, 3, key=jax.random.key(0)), ValueError, "num_embeddings must be >= 1"),
        (lambda m: Embed(3, 2.0, key=jax.random.key(0)), TypeError, "features"),
        (lambda m: Embed(3, 2, embedding_init=lambda k, s, d: jnp.ones((3, 2), d),
                         key=jax.random.key(0)), eqx_mp.ShapeError, r"expected \(3, 1, 1, 2\)"),
    ],
)
def test_errors(call, exc, match):
    m = Embed(4, 3, key=jax.random.key(1))
    with pytest.raises(exc, match=match):
        call(m)
    # e3x raises ValueError for float input as well; ours is a ValueError too
    if "dtype float32" in match:
        with pytest.raises(ValueError):
            call(m)
