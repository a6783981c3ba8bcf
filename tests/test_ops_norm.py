"""ops.norm / normalize / normalize_and_return_norm / inverse_softplus / evaluate_derivatives against
e3x (values and gradients, float32 and float64, several shapes and axes), derivatives of every
order at zero, finite differences away from zero."""

import e3x
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_mp import ops

CASES = [
    ((4, 3), -1, False),
    ((4, 3), 0, True),
    ((2, 3, 4), (0, 2), True),
    ((2, 3, 4), None, False),
    ((), None, True),
]
TOL = {"float32": 2e-6, "float64": 1e-13}


def _x(shape, dtype, seed=0):
    x = np.random.default_rng(seed).normal(size=shape)
    if x.ndim >= 2:
        x[0] = 0.0  # a zero group (zero vector) in every batch
    return jnp.asarray(x, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, axis, keepdims", CASES)
def test_norm_and_normalize_match_e3x(shape, axis, keepdims, dtype):
    with jax.enable_x64(dtype == "float64"):
        x = _x(shape, dtype)
        tol = TOL[dtype]
        w = jnp.asarray(np.random.default_rng(1).normal(size=shape), dtype)

        def run(mod, v):
            outs = (
                mod.norm(v, axis, keepdims),
                mod.normalize(v, axis),
                *mod.normalize_and_return_norm(v, axis, keepdims),
            )

            def loss(u):  # gradient through a non-trivial scalar function of all outputs
                y, n = mod.normalize_and_return_norm(u, axis, keepdims)
                return (
                    jnp.sum(w * y) + jnp.sum(jnp.sin(mod.norm(u, axis, keepdims))) + jnp.sum(n**2)
                )

            return outs, jax.grad(loss)(v)

        (outs, g), (refs, g_ref) = (
            jax.jit(lambda v: run(ops, v))(x),
            jax.jit(lambda v: run(e3x.ops, v))(x),
        )
        for ours, ref in zip(outs, refs):
            assert ours.shape == ref.shape and ours.dtype == ref.dtype
            np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)
        assert bool(jnp.all(jnp.isfinite(g)))
        np.testing.assert_allclose(g, g_ref, rtol=10 * tol, atol=10 * tol)
        # Eager (no jit) gives the same values.
        np.testing.assert_allclose(ops.norm(x, axis, keepdims), outs[0], rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["norm", "normalize"])
def test_derivatives_of_every_order_at_zero_match_e3x(name):
    """At the zero vector (float64): full derivative tensors of orders 1..3, and directional
    derivatives of orders 1..6, are finite and equal to e3x's."""
    with jax.enable_x64(True):
        z = jnp.zeros(3)
        f, g = (
            (lambda v: getattr(ops, name)(v, axis=-1)),
            (lambda v: getattr(e3x.ops, name)(v, axis=-1)),
        )
        for order in range(1, 4):
            f, g = jax.jacfwd(f), jax.jacrev(g)
            a, b = jax.jit(f)(z), jax.jit(g)(z)
            assert a.shape == (3,) * (order + (name == "normalize")) and bool(
                jnp.all(jnp.isfinite(a))
            )
            np.testing.assert_allclose(a, b, atol=1e-12)
        d = jnp.array([0.3, -1.2, 0.5])
        ours = jax.jit(
            lambda t: jnp.stack(
                ops.evaluate_derivatives(lambda s: getattr(ops, name)(s * d, axis=-1), t, 6)
            )
        )(0.0)
        ref = jax.jit(
            lambda t: jnp.stack(
                e3x.ops.evaluate_derivatives(lambda s: getattr(e3x.ops, name)(s * d, axis=-1), t, 6)
            )
        )(0.0)
        assert bool(jnp.all(jnp.isfinite(ours)))
        np.testing.assert_allclose(ours, ref, atol=1e-12)
        # First derivative of the norm at 0 is 0, of normalize the identity (e3x's definitions).
        np.testing.assert_array_equal(jax.grad(ops.norm)(z), np.zeros(3))
        np.testing.assert_array_equal(jax.jacfwd(lambda v: ops.normalize(v, -1))(z), np.eye(3))


def test_gradient_matches_finite_differences_float64():
    with jax.enable_x64(True):
        x = jnp.asarray(np.random.default_rng(3).normal(size=(4, 3)))
        w = jnp.asarray(np.random.default_rng(4).normal(size=(4, 3)))

        def f(v):
            y, n = ops.normalize_and_return_norm(v, axis=-1)
            return jnp.sum(w * y) + jnp.sum(n**3)

        g = jax.grad(f)(x)
        eps = 1e-6
        fd = np.zeros(x.shape)
        for idx in np.ndindex(*x.shape):
            d = jnp.zeros(x.shape).at[idx].set(eps)
            fd[idx] = (f(x + d) - f(x - d)) / (2 * eps)
        np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-8)


def test_overflow_and_underflow_safe():
    big = jnp.array([[3e30, 4e30], [3e-30, 4e-30]], jnp.float32)
    np.testing.assert_allclose(ops.norm(big, axis=-1), [5e30, 5e-30], rtol=1e-6)
    assert float(jnp.linalg.norm(big[0])) == float("inf")  # what the naive formula gives
    # One huge entry elsewhere in the array does not underflow a small vector's norm (each group is
    # scaled by its own largest entry).
    np.testing.assert_allclose(
        ops.norm(jnp.array([[1e-30, 0.0], [1e30, 0.0]]), axis=-1), [1e-30, 1e30], rtol=1e-6
    )


def test_zero_group_is_not_nan_under_jit_with_constant_input():
    """XLA may rewrite (x/a)**2 as x**2/a**2: a zero group scaled by finfo.tiny would give 0/0."""
    z = jnp.zeros((2, 3)).at[1].set(1.0)
    out = jax.jit(lambda s: ops.norm(z, axis=-1) * s)(1.0)
    np.testing.assert_allclose(out, [0.0, np.sqrt(3.0)], rtol=1e-6)
    g = jax.jit(jax.grad(lambda s: jnp.sum(ops.normalize(z * s, axis=-1))))(2.0)
    assert bool(jnp.isfinite(g))


def test_integer_and_python_inputs_are_promoted():
    np.testing.assert_allclose(ops.norm(jnp.array([3, 4])), 5.0)
    assert ops.norm(jnp.array([3, 4])).dtype == jnp.float32
    np.testing.assert_allclose(ops.normalize([0, 2], axis=-1), [0.0, 1.0])
    np.testing.assert_allclose(ops.inverse_softplus(2), e3x.ops.inverse_softplus(2.0), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inverse_softplus_matches_e3x_and_inverts(dtype):
    with jax.enable_x64(dtype == "float64"):
        x = jnp.asarray([1e-3, 0.5, 2.0, 30.0], dtype)
        y = ops.inverse_softplus(x)
        np.testing.assert_allclose(y, e3x.ops.inverse_softplus(x), rtol=TOL[dtype])
        np.testing.assert_allclose(jax.nn.softplus(y), x, rtol=10 * TOL[dtype])
        g = jax.grad(lambda v: jnp.sum(ops.inverse_softplus(v)))(x)
        np.testing.assert_allclose(
            g, jax.grad(lambda v: jnp.sum(e3x.ops.inverse_softplus(v)))(x), rtol=TOL[dtype]
        )
        np.testing.assert_allclose(g, 1 / -jnp.expm1(-x), rtol=10 * TOL[dtype])  # d/dx exactly


def test_evaluate_derivatives_matches_e3x():
    with jax.enable_x64(True):
        x = jnp.linspace(-1.0, 2.0, 5)
        f = lambda v: jnp.exp(0.5 * v) * jnp.sin(v)  # noqa: E731
        ours = ops.evaluate_derivatives(f, x, 4)
        ref = e3x.ops.evaluate_derivatives(f, x, 4)
        assert len(ours) == 5
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, rtol=1e-13)
        np.testing.assert_allclose(ours[2], jax.vmap(jax.grad(jax.grad(f)))(x), rtol=1e-12)
        assert [float(v) for v in ops.evaluate_derivatives(jnp.sin, 0.0, 2)] == [0.0, 1.0, 0.0]


def test_evaluate_derivatives_errors():
    with pytest.raises(ValueError, match="max_order must be >= 0, received -1"):
        ops.evaluate_derivatives(jnp.sin, jnp.ones(2), -1)
    with pytest.raises(TypeError, match="max_order must be an int"):
        ops.evaluate_derivatives(jnp.sin, jnp.ones(2), 1.5)
