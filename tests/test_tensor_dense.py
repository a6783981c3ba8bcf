"""TensorDense against e3x (values and gradients, float32/float64, several layouts), equivariance,
exact interop round trips, errors."""

import e3x
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, e3x_twin, rotate_features, trees_equal

import eqx_mp
from eqx_mp.interop import from_e3x, to_e3x

CONFIGS = [
    # (parity, max_degree, batch, options, dtype)
    (2, 1, (3,), dict(features=3, max_degree=2), "float64"),
    (1, 2, (4,), dict(use_fused_tensor=True), "float32"),
    (2, 2, (4,), dict(use_bias=False, include_pseudotensors=False, max_degree=1), "float32"),
    (2, 1, (2, 2), dict(features=2, use_fused_tensor=True), "float64"),
    (1, 1, (), dict(features=4, max_degree=0), "float32"),
]


def _inputs(parity, max_degree, batch, dtype, seed=0):
    x = np.random.default_rng(seed).normal(size=batch + (parity, (max_degree + 1) ** 2, 5))
    return jnp.asarray(x, dtype)


@pytest.mark.parametrize("parity, max_degree, batch, options, dtype", CONFIGS)
def test_matches_e3x(parity, max_degree, batch, options, dtype):
    with jax.enable_x64(dtype == "float64"):
        x = _inputs(parity, max_degree, batch, dtype)
        module = e3x.nn.TensorDense(param_dtype=jnp.dtype(dtype), **options)
        variables, ours = e3x_twin(module, (x,), dtype=dtype)
        assert isinstance(ours, eqx_mp.nn.TensorDense)
        y, y_ref = eqx.filter_jit(lambda m, v: m(v))(ours, x), jax.jit(module.apply)(variables, x)
        assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
        assert_close(y, y_ref, dtype)
        w = jnp.asarray(np.random.default_rng(1).normal(size=y.shape), dtype)

        def loss_ours(m, v):
            return jnp.sum(w * jnp.tanh(m(v)))

        def loss_ref(p, v):
            return jnp.sum(w * jnp.tanh(module.apply(p, v)))

        (gm, gx) = eqx.filter_jit(jax.grad(loss_ours, argnums=(0, 1)))(ours, x)
        (gp, gx_ref) = jax.jit(jax.grad(loss_ref, argnums=(0, 1)))(variables, x)
        assert_close(gx, gx_ref, dtype)
        _, gm_as_e3x = to_e3x(gm)  # parameter gradients in e3x's layout
        for a, b in zip(jax.tree_util.tree_leaves(gm_as_e3x), jax.tree_util.tree_leaves(gp)):
            assert_close(a, b, dtype)


@pytest.mark.parametrize("reflect", [False, True])
@pytest.mark.parametrize("fused", [False, True])
def test_equivariance(fused, reflect):
    with jax.enable_x64(True):
        td = eqx_mp.nn.TensorDense(
            4,
            2,
            features=3,
            max_degree=2,
            use_fused_tensor=fused,
            param_dtype=jnp.float64,
            key=jax.random.key(3),
        )
        x = jnp.asarray(np.random.default_rng(2).normal(size=(5, 2, 9, 4)))
        rot = eqx_mp.so3.random_rotation(jax.random.key(4))
        np.testing.assert_allclose(
            td(rotate_features(x, rot, reflect)), rotate_features(td(x), rot, reflect), atol=1e-12
        )


@pytest.mark.parametrize("fused", [False, True])
def test_interop_round_trips_are_exact(fused):
    x = _inputs(2, 1, (3,), "float32")
    module = e3x.nn.TensorDense(features=6, max_degree=2, use_fused_tensor=fused)
    variables, ours = e3x_twin(module, (x,))
    back_module, back_vars = to_e3x(ours)
    assert trees_equal(back_vars, variables)
    assert back_module.features == 6 and back_module.use_fused_tensor == fused
    np.testing.assert_array_equal(back_module.apply(back_vars, x), module.apply(variables, x))
    again = from_e3x(back_module, back_vars, x)
    assert trees_equal(eqx.filter(again, eqx.is_array), eqx.filter(ours, eqx.is_array))
    assert again.max_degree == ours.max_degree and again.out_parity == ours.out_parity


def test_defaults_and_errors():
    td = eqx_mp.nn.TensorDense(5, 1, in_parity=1, key=jax.random.key(0))
    assert (td.features, td.max_degree, td.out_parity) == (5, 1, 2)
    assert td.dense.features == 10 and td.use_bias and td.dense.use_bias
    y = td(jnp.ones((3, 1, 4, 5)))
    assert y.shape == (3, 2, 4, 5)
    with pytest.raises(
        ValueError,
        match="max_degree for the tensor product of inputs with max_degree 1 and 1 "
        "can be at most 2, received max_degree=3",
    ):
        eqx_mp.nn.TensorDense(5, 1, max_degree=3, key=jax.random.key(0))
    with pytest.raises(
        eqx_mp.ShapeError,
        match=r"inputs: axis -2 \(\(max_degree\+1\)\*\*2\) has size 9, expected 4",
    ):
        td(jnp.ones((3, 1, 9, 5)))
    with pytest.raises(
        eqx_mp.ShapeError, match=r"inputs: axis -1 \(features\) has size 4, expected 5"
    ):
        td(jnp.ones((3, 1, 4, 4)))
    with pytest.raises(TypeError, match="key"):
        eqx_mp.nn.TensorDense(5, 1)
