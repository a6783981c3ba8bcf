"""Derivatives of every order through the fused engine, against e3x and finite differences.

Training a potential on forces differentiates the layer twice (reverse over reverse); molecular
dynamics analysis and optimisers use Hessian-vector products (forward over reverse). Here, for
MessagePass (dense and sparse lists, P=1 and P=2, Tensor and FusedTensor, pair weights, basis
bias) and for standalone Tensor / FusedTensor, the parameter gradient of a force-style loss and
Hessian-vector products equal e3x's; ``jacfwd`` equals ``jacrev``; a third derivative matches
finite differences; ``vmap`` (also of per-example parameter gradients) equals a loop; and the
differentiated programs contain no loops outside the engine's primitive (nothing is
differentiated generically).
"""

from __future__ import annotations

import e3x
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqx_mp
from _oracle import Config, e3x_layer, make_inputs, ours_layer, randomize_bias
from eqx_mp.interop import from_e3x, to_e3x

CASES = {
    "sparse-P2-tensor-bias": dict(parity=2, in_degree=1, basis_degree=2, max_degree=None,
                                  use_basis_bias=True, fused=False, sparse=True, weights="none"),
    "dense-P1-tensor-pairw": dict(parity=1, in_degree=2, basis_degree=1, max_degree=2,
                                  use_basis_bias=False, fused=False, sparse=False, weights="pair"),
    "sparse-P2-fused-fullw-bias": dict(parity=2, in_degree=1, basis_degree=1, max_degree=1,
                                       use_basis_bias=True, fused=True, sparse=True, weights="full"),
    "dense-P1-fused-batch": dict(parity=1, in_degree=1, basis_degree=2, max_degree=None,
                                 use_basis_bias=False, fused=True, sparse=False, weights="none",
                                 batch=(2,)),
}
TOL = {"float32": 1e-5, "float64": 1e-10}


def _config(name: str, dtype: str) -> Config:
    kw = dict(include_pseudotensors=True, batch=(), dtype=dtype) | CASES[name]
    return Config(**kw)


def _rel(a, r) -> float:
    a, r = np.asarray(a, np.float64), np.asarray(r, np.float64)
    return float(np.linalg.norm(a - r) / max(np.linalg.norm(r), 1e-300))


def _setup(cfg: Config, seed: int):
    x, b, w, kw = make_inputs(cfg, seed)
    layer = e3x_layer(cfg)
    _, variables = to_e3x(ours_layer(cfg, x, b, seed))
    variables = randomize_bias(variables, seed)
    ours = from_e3x(layer, variables, x, b, w, **kw)
    out_shape = jax.eval_shape(lambda: layer.apply(variables, x, b, w, **kw)).shape
    rng = np.random.default_rng(seed + 1)
    dt = x.dtype
    c = jnp.asarray(rng.normal(size=out_shape), dt)
    targets = (jnp.asarray(rng.normal(size=x.shape), dt), jnp.asarray(rng.normal(size=b.shape), dt))
    tangents = (jnp.asarray(rng.normal(size=x.shape), dt), jnp.asarray(rng.normal(size=b.shape), dt))
    return layer, variables, ours, (x, b, w, kw), c, targets, tangents


def _f64(tree):
    return jax.tree.map(
        lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating)
        else a, tree)


@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", list(CASES))
def test_force_loss_gradient_and_hvp_match_e3x(name, dtype):
    """The oracle is e3x in float64 on exactly our inputs and weights (cast up from float32 in the
    float32 case): e3x's own float32 result of a second derivative carries rounding errors of up
    to ~1e-5 (measured), more than ours, so it cannot be the reference at 1e-5."""
    cfg = _config(name, dtype)
    with jax.enable_x64(dtype == "float64"):
        layer, variables, ours, (x, b, w, kw), c, targets, tangents = _setup(cfg, seed=len(name))

    def energy(apply, x, b, c):
        return lambda x, b: jnp.sum(jnp.tanh(apply(x, b)) * c)

    def force_loss(apply, x, b, c, targets):  # "forces" = gradients w.r.t. both inputs
        gx, gb = jax.grad(energy(apply, x, b, c), argnums=(0, 1))(x, b)
        return jnp.sum((gx - targets[0]) ** 2) + jnp.sum((gb - targets[1]) ** 2)

    def hvp(apply, x, b, c, tangents):
        return jax.jvp(jax.grad(energy(apply, x, b, c), argnums=(0, 1)), (x, b), tangents)[1]

    with jax.enable_x64(dtype == "float64"):
        data = (x, b, c, targets)
        g_ours = eqx.filter_jit(eqx.filter_grad(
            lambda m: force_loss(lambda x, b: m(x, b, w, **kw), *data)))(ours)
        g_ours = to_e3x(g_ours)[1]["params"]
        h_ours = eqx.filter_jit(lambda m: hvp(lambda x, b: m(x, b, w, **kw), x, b, c, tangents))(ours)
    with jax.enable_x64(True):
        ref = layer.clone(param_dtype=jnp.float64)
        v64, x64, b64, w64, c64, t64, tan64 = _f64((variables, x, b, w, c, targets, tangents))

        def e3x_apply(v):
            return lambda x, b: ref.apply(v, x, b, w64, **kw)

        g_ref = jax.jit(jax.grad(lambda v: force_loss(e3x_apply(v), x64, b64, c64, t64)))(v64)
        g_ref = g_ref["params"]
        h_ref = jax.jit(lambda v: hvp(e3x_apply(v), x64, b64, c64, tan64))(v64)

    leaves_ref = jax.tree.leaves(g_ref)
    total = np.sqrt(sum(np.sum(np.asarray(r, np.float64) ** 2) for r in leaves_ref))
    assert total > 1e-6
    for a, r in zip(jax.tree.leaves(g_ours), leaves_ref, strict=True):
        # a leaf whose exact gradient is zero is measured against the total
        den = max(np.linalg.norm(np.asarray(r, np.float64)), 1e-3 * total)
        assert np.linalg.norm(np.asarray(a, np.float64) - np.asarray(r, np.float64)) <= TOL[dtype] * den
    for a, r in zip(h_ours, h_ref, strict=True):
        assert _rel(a, r) <= TOL[dtype]


def _small_problem(seed=0, fused=False, dtype=jnp.float64):
    cfg = Config(parity=2, in_degree=1, basis_degree=1, max_degree=1, include_pseudotensors=True,
                 use_basis_bias=True, fused=fused, sparse=True, weights="full", batch=(),
                 dtype="float64" if dtype == jnp.float64 else "float32")
    x, b, w, kw = make_inputs(cfg, seed, n=3, m=2)
    mp = ours_layer(cfg, x, b, seed)
    mp = eqx.tree_at(lambda m: m.filter.bias, mp, jnp.linspace(-0.5, 0.5, x.shape[-1], dtype=dtype))
    return mp, x, b, w, kw


def test_jacfwd_equals_jacrev_and_hessian_is_symmetric():
    with jax.enable_x64(True):
        mp, x, b, w, kw = _small_problem()
        f = lambda x, b: mp(x, b, w, **kw)  # noqa: E731
        for argnum in (0, 1):
            jf = jax.jacfwd(f, argnums=argnum)(x, b)
            jr = jax.jacrev(f, argnums=argnum)(x, b)
            assert np.max(np.abs(np.asarray(jf))) > 1e-3
            np.testing.assert_allclose(jf, jr, rtol=0, atol=1e-13 * np.max(np.abs(np.asarray(jr))))
        e = lambda x: jnp.sum(jnp.sin(f(x, b)))  # noqa: E731
        h = np.asarray(jax.hessian(e)(x)).reshape(x.size, x.size)
        assert np.max(np.abs(h)) > 1e-3
        np.testing.assert_allclose(h, h.T, atol=1e-12 * np.max(np.abs(h)))
        hfr = np.asarray(jax.jacfwd(jax.jacrev(e))(x)).reshape(x.size, x.size)
        hrr = np.asarray(jax.jacrev(jax.jacrev(e))(x)).reshape(x.size, x.size)
        np.testing.assert_allclose(hfr, h, atol=1e-12 * np.max(np.abs(h)))
        np.testing.assert_allclose(hrr, h, atol=1e-12 * np.max(np.abs(h)))


@pytest.mark.parametrize("fused", [False, True])
def test_third_derivative_matches_finite_differences(fused):
    """d^3/ds^3 of E(s) = sum sin(mp(s x, s^2 basis, s w)) by three reverse passes, against central
    differences of the (analytic) second derivative."""
    with jax.enable_x64(True):
        mp, x, b, w, kw = _small_problem(seed=2, fused=fused)

        def e(s):
            return jnp.sum(jnp.sin(mp(s * x, s * s * b, s * w, **kw)))

        d2 = jax.grad(jax.grad(e))
        d3 = float(jax.grad(d2)(0.9))

        def central(h):
            return (float(d2(0.9 + h)) - float(d2(0.9 - h))) / (2 * h)

        fd = (4 * central(5e-4) - central(1e-3)) / 3  # Richardson: O(h^4)
        assert np.isfinite(d3) and abs(d3) > 1e-3
        assert abs(d3 - fd) <= 1e-6 * abs(d3)
        d3_fwd = float(jax.jacfwd(jax.jacfwd(jax.grad(e)))(0.9))  # forward over forward over reverse
        assert abs(d3_fwd - d3) <= 1e-10 * abs(d3)


def test_vmap_and_per_example_gradients_equal_a_loop():
    mp, x, b, w, kw = _small_problem(dtype=jnp.float32)
    xs = jnp.stack([x, 2 * x, -x])
    bs = jnp.stack([b, 0.5 * b, b])
    out = jax.vmap(lambda x, b: mp(x, b, w, **kw))(xs, bs)
    for i in range(3):
        np.testing.assert_allclose(out[i], mp(xs[i], bs[i], w, **kw), rtol=1e-6, atol=1e-6)

    def loss(m, x):
        return jnp.sum(jnp.tanh(m(x, b, w, **kw)))

    per_example = jax.vmap(lambda x: eqx.filter_grad(loss)(mp, x))(xs)  # batched parameter outputs
    for i in range(3):
        ref = eqx.filter_grad(loss)(mp, xs[i])
        for a, r in zip(jax.tree.leaves(per_example), jax.tree.leaves(ref), strict=True):
            np.testing.assert_allclose(a[i], r, rtol=2e-5, atol=2e-6)
    # an ensemble of layers (batched parameters) over one graph
    scales = jnp.asarray([1.0, 0.5])

    def scaled(s):
        return jax.tree.map(lambda a: a * s if eqx.is_inexact_array(a) else a, mp)

    ens = eqx.filter_vmap(lambda m: m(x, b, w, **kw))(jax.vmap(scaled)(scales))
    for i in range(2):
        np.testing.assert_allclose(ens[i], scaled(scales[i])(x, b, w, **kw), rtol=1e-5, atol=1e-6)


def _loops(jaxpr) -> list[str]:
    """Names of loop primitives anywhere in a (closed) jaxpr, sub-jaxprs included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("while", "scan"):
            found.append(eqn.primitive.name)
        for p in eqn.params.values():
            for sub in p if isinstance(p, (list, tuple)) else (p,):
                if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                    found += _loops(sub.jaxpr)
                elif hasattr(sub, "eqns"):
                    found += _loops(sub)
    return found


def _count(jaxpr, name: str) -> int:
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == name
        for p in eqn.params.values():
            for sub in p if isinstance(p, (list, tuple)) else (p,):
                if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                    n += _count(sub.jaxpr, name)
    return n


def test_force_training_stays_on_the_fused_engine():
    """The program of a force-training gradient has no loop outside the engine's primitive: the
    backward pass is not linearised and transposed generically."""
    mp, x, b, w, kw = _small_problem(dtype=jnp.float32)

    def force_loss(m):
        gx = jax.grad(lambda x: jnp.sum(jnp.tanh(m(x, b, w, **kw))))(x)
        return jnp.sum(gx ** 2)

    jaxpr = jax.make_jaxpr(eqx.filter_grad(force_loss))(mp).jaxpr
    assert _loops(jaxpr) == []
    assert _count(jaxpr, "eqx_mp_cg") >= 3  # forward, force backward, and the outer gradient


@pytest.mark.parametrize("fused", [False, True])
def test_tensor_second_order_and_hessian_match_e3x(fused):
    """Standalone Tensor / FusedTensor: parameter gradient of a gradient, and a Hessian, vs e3x."""
    with jax.enable_x64(True):
        cls = e3x.nn.FusedTensor if fused else e3x.nn.Tensor
        layer = cls(max_degree=2, include_pseudotensors=True, param_dtype=jnp.float64)
        rng = np.random.default_rng(4)
        x1 = jnp.asarray(rng.normal(size=(3, 2, 4, 2)))
        x2 = jnp.asarray(rng.normal(size=(3, 1, 9, 2)))
        ours_cls = eqx_mp.nn.FusedTensor if fused else eqx_mp.nn.Tensor
        ours = ours_cls(2, 1, 2, parity2=1, max_degree=2, param_dtype=jnp.float64,
                        key=jax.random.key(0))
        _, variables = to_e3x(ours)
        ours = from_e3x(layer, variables, x1, x2)

        def grad_loss(apply):
            g = jax.grad(lambda a, b: jnp.sum(jnp.sin(apply(a, b))), argnums=(0, 1))(x1, x2)
            return sum(jnp.sum(gi ** 2) for gi in g)

        g_ref = jax.grad(lambda v: grad_loss(lambda a, b: layer.apply(v, a, b)))(variables)
        g_ours = to_e3x(eqx.filter_grad(lambda m: grad_loss(m))(ours))[1]
        for a, r in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref), strict=True):
            np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-12)
        h_ref = jax.hessian(lambda a: jnp.sum(jnp.sin(layer.apply(variables, a, x2))))(x1)
        h_ours = jax.hessian(lambda a: jnp.sum(jnp.sin(ours(a, x2))))(x1)
        np.testing.assert_allclose(h_ours, h_ref, rtol=1e-10, atol=1e-12)
        jf = jax.jacfwd(ours, argnums=1)(x1, x2)
        jr = jax.jacrev(ours, argnums=1)(x1, x2)
        np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-14)
