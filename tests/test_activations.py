"""Oracle and equivariance tests of eqx_mp.nn activations against e3x.nn.activations."""

from __future__ import annotations

import e3x
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_rotation

import eqx_mp
from eqx_mp.nn import activations as A

# (name, kwargs): every activation and option.
CASES = [
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", dict(negative_slope=0.2)),
    ("elu", {}),
    ("elu", dict(alpha=0.5)),
    ("selu", {}),
    ("celu", {}),
    ("celu", dict(alpha=2.0)),
    ("silu", {}),
    ("swish", {}),
    ("gelu", {}),
    ("gelu", dict(approximate=False)),
    ("mish", {}),
    ("mish", dict(fast=False)),
    ("serf", {}),
    ("shifted_softplus", {}),
    ("hard_tanh", {}),
    ("soft_sign", {}),
    ("relu6", {}),
    ("hard_silu", {}),
    ("hard_swish", {}),
    ("bent_identity", {}),
]


def _features(dtype, parity, max_degree, seed=0):
    """Random features; scalars include 0, +-tiny, and values beyond the kinks (+-1, 6)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=(2, parity, (max_degree + 1) ** 2, 8))
    x[0, 0, 0, :8] = [0.0, 1e-20, -1e-20, 1.0 + 1e-3, -1.0 - 1e-3, 7.0, -0.05, 0.05]
    return jnp.asarray(x, dtype=dtype)


def _evaluate(module, xs, cot):
    """Value and VJP (with fixed cotangents) of every case on every input, in one graph."""
    out = {}
    for i, (name, kwargs) in enumerate(CASES):
        fn = getattr(module, name)
        for j, x in enumerate(xs):
            y, vjp = jax.vjp(lambda x_, fn=fn, kwargs=kwargs: fn(x_, **kwargs), x)
            out[(i, j)] = (y, vjp(cot[j])[0])
    return out


def test_public_names_match_e3x():
    theirs = {n for n in dir(e3x.nn.activations) if not n.startswith("_")} - {
        "math", "jax", "jnp", "jaxtyping", "Array", "Float", "Callable", "Union",
    }
    assert set(A.__all__) == theirs
    for name in A.__all__:
        assert getattr(eqx_mp.nn, name) is getattr(A, name)
    assert A.swish is A.silu and A.hard_swish is A.hard_silu


def test_activations_match_e3x(dtype):
    """Every activation/option (P = 2, L = 1): values and VJPs equal e3x."""
    xs = [_features(dtype, 2, 1, 2)]
    cot = [jnp.asarray(np.random.default_rng(9).normal(size=x.shape), dtype) for x in xs]
    run = lambda m: jax.jit(lambda xs_: _evaluate(m, xs_, cot))(xs)
    ours, ref = run(A), run(e3x.nn.activations)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == jnp.float32 else dict(rtol=1e-13, atol=1e-13)
    for key, (y, g) in ours.items():
        y_ref, g_ref = ref[key]
        case = CASES[key[0]]
        assert y.shape == y_ref.shape == xs[key[1]].shape and y.dtype == g.dtype == dtype
        assert bool(jnp.all(jnp.isfinite(y))) and bool(jnp.all(jnp.isfinite(g))), case
        np.testing.assert_allclose(y, y_ref, **tol, err_msg=f"{case} value")
        np.testing.assert_allclose(g, g_ref, **tol, err_msg=f"{case} vjp")


def test_scalar_channel_is_the_plain_activation():
    """On the scalar channel the gated activation is the ordinary one (jax.nn where it exists)."""
    x = _features(jnp.float32, 2, 1)

    def pairs(x):
        s = x[..., 0, 0, :]
        return [
            (A.silu(x), jax.nn.silu(s)),
            (A.relu(x), jax.nn.relu(s)),
            (A.gelu(x, approximate=False), jax.nn.gelu(s, approximate=False)),
            (A.elu(x, 0.5), jax.nn.elu(s, 0.5)),
            (A.selu(x), jax.nn.selu(s)),
            (A.celu(x, 2.0), jax.nn.celu(s, 2.0)),
            (A.soft_sign(x), jax.nn.soft_sign(s)),
            (A.relu6(x), jax.nn.relu6(s)),
            (A.hard_silu(x), jax.nn.hard_silu(s)),
            (A.hard_tanh(x), jax.nn.hard_tanh(s)),
            (A.leaky_relu(x, 0.2), jax.nn.leaky_relu(s, 0.2)),
            (A.mish(x), s * jnp.tanh(jax.nn.softplus(s))),
            (A.shifted_softplus(x), jax.nn.softplus(s) - jnp.log(2.0)),
        ]

    for ours, plain in jax.jit(pairs)(x):
        np.testing.assert_allclose(ours[..., 0, 0, :], plain, rtol=1e-5, atol=1e-6)


def test_activations_are_equivariant():
    """act(x @ D) == act(x) @ D for a random rotation (P = 2), act commutes with reflect (P = 1)."""
    d = eqx_mp.so3.wigner_d(jnp.asarray(random_rotation(0), jnp.float32), 2)
    x = _features(jnp.float32, 2, 2, 5)
    xp1 = _features(jnp.float32, 1, 2, 6)
    rotate, reflect = eqx_mp.nn.rotate, eqx_mp.nn.reflect

    def errors(x_, xp1_):
        errs = []
        for name, kwargs in CASES:
            fn = getattr(A, name)
            errs.append(jnp.max(jnp.abs(fn(rotate(x_, d), **kwargs) - rotate(fn(x_, **kwargs), d))))
            errs.append(jnp.max(jnp.abs(fn(reflect(xp1_), **kwargs) - reflect(fn(xp1_, **kwargs)))))
        return jnp.stack(errs)

    errs = jax.jit(errors)(x, xp1)
    assert float(jnp.max(errs)) < 1e-4, errs


@pytest.mark.parametrize(
    "x, match",
    [
        (jnp.ones((4, 8)), r"shape of x must have at least three dimensions, received shape \(4, 8\)"),
        (jnp.ones((4, 3, 4, 8)), r"axis -3 \(parity\) has size 3"),
        (jnp.ones((4, 1, 5, 8)), r"axis -2 must have size \(L\+1\)\*\*2"),
        (jnp.ones((4, 1, 4, 8), jnp.complex64), r"real \(integer or floating-point\) dtype, got complex64"),
        (jnp.ones((4, 1, 4, 8), jnp.bool_), r"real \(integer or floating-point\) dtype, got bool"),
    ],
)
def test_errors(x, match):
    for fn in (A.silu, A.relu, A.gelu):
        with pytest.raises(eqx_mp.ShapeError, match=match):
            fn(x)


#: e3x's gates that need a floating dtype (``jnp.finfo``) fail on integer features; ours compute
#: them in JAX's default float.
E3X_FAILS_ON_INTEGERS = {"elu", "selu", "celu", "shifted_softplus", "bent_identity"}


def _all_cases(module, x):
    return [getattr(module, name)(x, **kwargs) for name, kwargs in CASES]


def test_integer_features_match_e3x():
    """Integer features: e3x's values and dtype wherever e3x accepts them (``relu`` stays
    integer); where e3x fails (or rounds the exact ``gelu`` gate to an integer), e3x's result for
    the same values as float32."""
    x = np.random.default_rng(3).integers(-6, 7, size=(2, 2, 4, 8)).astype(np.int32)
    x[0, 0, 0] = [0, 1, -1, 2, -2, 6, 7, -7]
    xi = jnp.asarray(x)
    xf = xi.astype(jnp.float32)
    e3x_act = e3x.nn.activations
    accepted = [(n, kw) for n, kw in CASES if n not in E3X_FAILS_ON_INTEGERS]
    ours = jax.jit(lambda v: _all_cases(A, v))(xi)
    on_floats = jax.jit(lambda v: _all_cases(e3x_act, v))(xf)
    on_ints = jax.jit(
        lambda v: [getattr(e3x_act, n)(v, **kw) for n, kw in accepted]
    )(xi)
    on_ints = dict(zip([(n, tuple(kw.items())) for n, kw in accepted], on_ints))
    for (name, kwargs), y, y_float in zip(CASES, ours, on_floats):
        case = (name, tuple(kwargs.items()))
        if name in E3X_FAILS_ON_INTEGERS:
            with pytest.raises(ValueError, match="not inexact"):
                jax.eval_shape(getattr(e3x_act, name), xi)
            expected = y_float
        elif case == ("gelu", (("approximate", False),)):
            assert on_ints[case].dtype == jnp.int32  # e3x rounds the gate to the input's dtype
            expected = y_float
        else:
            expected = on_ints[case]
        assert y.shape == x.shape and y.dtype == expected.dtype, (case, y.dtype, expected.dtype)
        np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6, err_msg=str(case))
    assert ours[[n for n, _ in CASES].index("relu")].dtype == jnp.int32


def test_numpy_features_match_e3x():
    """NumPy arrays are accepted (as by e3x) and give e3x's values, as JAX arrays."""
    x = np.asarray(_features(jnp.float32, 2, 1, seed=4))
    for name, kwargs in [("silu", {}), ("elu", dict(alpha=0.5)), ("relu", {})]:
        ours = getattr(A, name)(x, **kwargs)
        ref = getattr(e3x.nn.activations, name)(x, **kwargs)
        assert isinstance(ours, jax.Array) and ours.dtype == ref.dtype == jnp.float32
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6, err_msg=name)
    assert A.relu(x.astype(np.int64)).dtype == jnp.int32  # NumPy integers: JAX's default int


def test_too_few_dimensions_error_is_e3x_wording():
    """Our message starts with e3x's, then names the layout."""
    x = np.ones((4, 8), np.float32)
    with pytest.raises(ValueError) as theirs:
        e3x.nn.activations.relu(x)
    for fn in (A.relu, A.silu, A.gelu):
        with pytest.raises(eqx_mp.ShapeError) as ours:
            fn(x)
        assert str(ours.value).startswith(str(theirs.value)), (str(ours.value), str(theirs.value))
