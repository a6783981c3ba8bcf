"""Oracle tests of eqx_mp.nn.functions against e3x.nn.functions (values and gradients, f32/f64)."""

from __future__ import annotations

import e3x
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_rotation

import eqx_mp
from eqx_mp.nn import functions as F


def _tol(dtype, what="value"):
    """float64: agreement to ~1e-12 (measured: <= 4e-15). float32: values to 1e-6; derivatives
    to 5e-5 absolute, since both implementations carry float32 rounding error there (measured
    against a float64 evaluation: reverse-mode d/dx reciprocal_bernstein(kind='damped') is off by
    1.0e-5 in e3x and 1.2e-5 here)."""
    if dtype == jnp.float64:
        return dict(rtol=1e-12, atol=1e-13)
    return dict(rtol=1e-6, atol=1e-6) if what == "value" else dict(rtol=1e-5, atol=5e-5)


def _unit_inputs(dtype, seed=0):
    """Random points in [0, 1.3] plus the special points 0, 1 and values next to them."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.0, 1.3, size=(3, 5))
    u[0, :4] = [0.0, 1.0, 1e-9, 1 - 1e-9]
    return jnp.asarray(u, dtype=dtype)


def _inputs(dtype, limit, seed=0):
    return _unit_inputs(dtype, seed) * limit


def _evaluate_all(module, cases, nums, u):
    """Values and elementwise derivatives d/dx (forward mode) of every case, in one graph."""
    out = {}
    for i, (name, kwargs) in enumerate(cases):
        limit = kwargs.get("limit", kwargs.get("cutoff", kwargs.get("x1", 3.0)))
        x = u * limit
        fn = getattr(module, name)
        for num in nums:
            args = () if num is None else (num,)
            out[(i, num)] = jax.jvp(
                lambda x_, fn=fn, args=args, kwargs=kwargs: fn(x_, *args, **kwargs),
                (x,),
                (jnp.ones_like(x),),
            )
    return out


def _compiled(fn, *args):
    """``fn(*args)`` as one compiled graph (many small functions: one compilation)."""
    return jax.jit(fn)(*args)


def _compare_all(cases, nums, dtype):
    u = _unit_inputs(dtype)
    ours = _compiled(lambda u_: _evaluate_all(F, cases, nums, u_), u)
    ref = _compiled(lambda u_: _evaluate_all(e3x.nn.functions, cases, nums, u_), u)
    worst = 0.0
    for key, (y, g) in ours.items():
        name, kwargs = cases[key[0]]
        y_ref, g_ref = ref[key]
        assert y.shape == y_ref.shape == g.shape == g_ref.shape, (name, kwargs)
        assert y.dtype == g.dtype == dtype, (name, kwargs, y.dtype)
        for a, b, what in ((y, y_ref, "value"), (g, g_ref, "grad")):
            assert bool(jnp.all(jnp.isfinite(a))), (name, kwargs, key[1], what)
            np.testing.assert_allclose(
                a, b, **_tol(dtype, what), err_msg=f"{name} {kwargs} {key[1]} {what}"
            )
            worst = max(worst, float(jnp.max(jnp.abs(a - b))))
    return worst


# (name, kwargs) variants. The fast set covers every function and every option at least once
# (each family with each mapping); the slow sweep takes the full product.
RADIAL_CASES = [
    ("basic_bernstein", dict(limit=2.5)),
    ("basic_chebyshev", dict(limit=3.0)),
    ("basic_gaussian", dict(limit=2.0)),
    ("basic_fourier", dict(limit=1.5)),
    ("sinc", dict(limit=2.0)),
    ("rectangular_window", dict(limit=2.0)),
    ("triangular_window", dict(limit=2.0)),
    ("smooth_window", dict(limit=2.0)),
    ("reciprocal_bernstein", dict(kind="shifted")),
    ("reciprocal_bernstein", dict(kind="cuspless", use_reciprocal_weighting=True)),
    ("reciprocal_chebyshev", dict(kind="damped")),
    ("reciprocal_gaussian", dict(kind="cuspless")),
    ("reciprocal_fourier", dict(kind="damped", use_reciprocal_weighting=True)),
    ("exponential_bernstein", dict()),
    ("exponential_chebyshev", dict(gamma=0.5, cuspless=True)),
    ("exponential_gaussian", dict(gamma=2.0, use_exponential_weighting=True)),
    ("exponential_fourier", dict(cuspless=True, use_exponential_weighting=True)),
]

# float64 repeats one case per distinct code path (each polynomial family / window / mapping kind);
# the slow sweep runs everything in both precisions.
RADIAL_CASES_F64 = [RADIAL_CASES[i] for i in (0, 1, 2, 4, 5, 6, 7, 9, 10, 11, 16)]

FULL_RADIAL_CASES = [
    (f"basic_{fam}", dict(limit=limit))
    for fam in ("bernstein", "chebyshev", "gaussian", "fourier")
    for limit in (1.0, 2.5)
] + [(n, dict(limit=2.0)) for n in ("sinc", "rectangular_window", "triangular_window",
                                      "smooth_window")]
for _fam in ("bernstein", "chebyshev", "gaussian", "fourier"):
    for _kind in ("shifted", "damped", "cuspless"):
        for _w in (False, True):
            FULL_RADIAL_CASES.append(
                (f"reciprocal_{_fam}", dict(kind=_kind, use_reciprocal_weighting=_w))
            )
    for _gamma in (0.5, 2.0):
        for _cuspless in (False, True):
            for _w in (False, True):
                FULL_RADIAL_CASES.append(
                    (f"exponential_{_fam}",
                     dict(gamma=_gamma, cuspless=_cuspless, use_exponential_weighting=_w))
                )

SCALAR_CASES = [
    ("smooth_cutoff", dict()),
    ("smooth_cutoff", dict(cutoff=2.5)),
    ("cosine_cutoff", dict(cutoff=2.5)),
    ("smooth_switch", dict()),
    ("smooth_switch", dict(x0=0.5, x1=2.0)),
    ("smooth_damping", dict()),
    ("smooth_damping", dict(gamma=3.0)),
    ("reciprocal_mapping", dict(kind="shifted")),
    ("reciprocal_mapping", dict(kind="damped")),
    ("reciprocal_mapping", dict(kind="cuspless")),
    ("exponential_mapping", dict()),
    ("exponential_mapping", dict(gamma=0.7, cuspless=True)),
]


def test_public_names_match_e3x():
    ours = set(F.__all__)
    theirs = {n for n in dir(e3x.nn.functions) if not n.startswith("_")} - {
        "bernstein", "chebyshev", "cutoff", "damping", "gaussian", "mappings", "switch",
        "trigonometric", "window",
    }
    assert ours == theirs
    for name in ours:
        assert getattr(eqx_mp.nn, name) is getattr(F, name)


def test_radial_functions_match_e3x(dtype):
    """All basis functions, all options (num = 4; num = 1 where it is a special case): values and
    d/dx equal e3x."""
    _compare_all(RADIAL_CASES if dtype == jnp.float32 else RADIAL_CASES_F64, (4,), dtype)
    _compare_all(
        [("basic_bernstein", dict(limit=2.5)), ("reciprocal_chebyshev", dict(kind="damped"))],
        (1,),
        dtype,
    )


@pytest.mark.slow
def test_radial_functions_match_e3x_full_sweep(dtype):
    """The full product of families x mappings x options x num in {1, 2, 5} (slow)."""
    _compare_all(FULL_RADIAL_CASES, (1, 2, 5), dtype)


def test_scalar_functions_match_e3x(dtype):
    """Cutoffs, switch, damping and mappings: values and d/dx equal e3x, finite at 0/cutoff."""
    _compare_all(SCALAR_CASES, (None,), dtype)


def test_reverse_mode_matches_e3x():
    """Reverse mode (custom JVPs transposed) on the functions that define their own JVP."""
    x = _inputs(jnp.float32, 2.0)
    w = jnp.asarray(np.random.default_rng(1).normal(size=(5,)), jnp.float32)

    def loss(module, x_):
        return (
            jnp.sum(module.basic_bernstein(x_, 5, limit=2.0) * w)
            + jnp.sum(module.reciprocal_chebyshev(x_, 5, kind="damped") * w)
            + jnp.sum(module.smooth_window(x_, 5, limit=2.0) * w)
            + jnp.sum(module.smooth_switch(x_, 0.5, 1.5))
            + jnp.sum(module.smooth_cutoff(x_, 2.0))
        )

    ours = _compiled(jax.grad(lambda x_: loss(F, x_)), x)
    ref = _compiled(jax.grad(lambda x_: loss(e3x.nn.functions, x_)), x)
    assert bool(jnp.all(jnp.isfinite(ours)))
    np.testing.assert_allclose(ours, ref, **_tol(jnp.float32, "grad"))


def test_cutoff_values_and_gradients_at_special_points(dtype):
    """smooth_cutoff: 1 at 0, 0 at/after cutoff, zero derivative at both ends (not NaN)."""
    x = jnp.asarray([0.0, 2.0, 3.0], dtype=dtype)
    y = F.smooth_cutoff(x, cutoff=2.0)
    np.testing.assert_allclose(y, [1.0, 0.0, 0.0])
    g = jax.jit(jax.vmap(jax.grad(lambda t: F.smooth_cutoff(t, cutoff=2.0))))(x)
    np.testing.assert_array_equal(g, jnp.zeros(3, dtype))
    g2 = jax.jit(jax.vmap(jax.grad(jax.grad(lambda t: F.smooth_switch(t, 0.5, 2.0)))))(
        jnp.asarray([0.5, 2.0, 1.0], dtype)
    )
    assert bool(jnp.all(jnp.isfinite(g2)))
    g2_ref = jax.jit(jax.vmap(jax.grad(jax.grad(lambda t: e3x.nn.smooth_switch(t, 0.5, 2.0)))))(
        jnp.asarray([0.5, 2.0, 1.0], dtype)
    )
    np.testing.assert_allclose(g2, g2_ref, **_tol(dtype, "grad"))


def test_gamma_is_differentiable_and_traceable():
    """gamma / cutoff may be traced (learnable): jit + d/dgamma, d/dcutoff equal e3x's."""
    x = _inputs(jnp.float32, 3.0)
    names = ("exponential_bernstein", "exponential_chebyshev", "exponential_gaussian",
             "exponential_fourier")

    def losses(module, gamma):
        out = [jnp.sum(getattr(module, n)(x, 4, gamma=gamma, cuspless=True) ** 2) for n in names]
        out.append(jnp.sum(module.smooth_damping(x, gamma)))
        return jnp.stack(out)

    ours = _compiled(jax.jacobian(lambda g: losses(F, g)), jnp.float32(0.8))
    ref = _compiled(jax.jacobian(lambda g: losses(e3x.nn.functions, g)), jnp.float32(0.8))
    assert bool(jnp.all(jnp.isfinite(ours)))
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)

    # A traced cutoff works here (e3x compares it in Python and cannot trace it):
    # d/dc f(x/c) = -(x/c) * d/dx f(x/c), with d/dx from e3x.
    c = jnp.float32(2.0)
    ours_dc = _compiled(jax.grad(lambda c_: jnp.sum(F.smooth_cutoff(x, c_))), c)
    dx = _compiled(jax.grad(lambda x_: jnp.sum(e3x.nn.smooth_cutoff(x_, 2.0))), x)
    np.testing.assert_allclose(ours_dc, jnp.sum(-(x / c) * dx), rtol=1e-5)


def test_numpy_input_and_batch_shapes():
    x = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(2, 3, 2)
    y = F.basic_bernstein(x, 3)
    assert isinstance(y, jax.Array) and y.shape == (2, 3, 2, 3)
    np.testing.assert_allclose(y, e3x.nn.basic_bernstein(jnp.asarray(x), 3), rtol=1e-6)
    assert F.smooth_cutoff(jnp.float32(0.5)).shape == ()
    assert F.sinc(jnp.float32(0.5), 4).shape == (4,)
    vm = jax.vmap(lambda t: F.basic_gaussian(t, 3))(jnp.ones((4,), jnp.float32))
    assert vm.shape == (4, 3)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: F.basic_bernstein(jnp.ones(3), 0), ValueError, "num must be greater or equal to 1, received 0"),
        (lambda: F.sinc(jnp.ones(3), 2.5), TypeError, "num must be an int|'name': 'num'"),
        (lambda: F.basic_gaussian(jnp.ones(3, jnp.complex64), 4), eqx_mp.ShapeError, "real .bool, integer or floating point., got dtype complex64"),
        (lambda: F.basic_fourier([0.1, 0.2], 4), eqx_mp.ShapeError, "x must be a number or a real JAX/NumPy array, got list"),
        (lambda: F.reciprocal_gaussian(jnp.ones(3), 4, kind="bad"), ValueError, "kind must be"),
        (lambda: F.reciprocal_mapping(jnp.ones(3), kind="bad"), ValueError, "received 'bad'"),
        (lambda: F.smooth_cutoff(jnp.ones(3), cutoff=0.0), ValueError, "cutoff must be larger"),
        (lambda: F.cosine_cutoff(jnp.ones(3), -1.0), ValueError, "cutoff must be larger"),
        (lambda: F.smooth_switch(jnp.ones(3), 1.0, 0.5), ValueError, "x1 must be larger"),
        (lambda: F.smooth_window(jnp.ones(3), num=-1), ValueError, "num must be greater or equal to 0, received -1"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# basis / ExponentialBasis (e3x.nn.wrappers)
# ---------------------------------------------------------------------------------------------


def _vectors(dtype, cutoff=2.0, seed=0):
    """Random vectors (|r| up to ~1.2 cutoff) including r = 0 and |r| = cutoff exactly."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(2, 4, 3))
    r *= rng.uniform(0.1, 1.2 * cutoff, size=(2, 4, 1)) / np.linalg.norm(r, axis=-1, keepdims=True)
    r[0, 0] = 0.0
    r[0, 1] = [0.0, cutoff, 0.0]
    return jnp.asarray(r, dtype=dtype)


def _basis_configs(module):
    from functools import partial

    return [
        dict(max_degree=0, num=3, radial_fn=module.basic_gaussian),
        dict(max_degree=2, num=4, radial_fn=partial(module.reciprocal_bernstein, kind="damped"),
             cutoff_fn=partial(module.smooth_cutoff, cutoff=2.0), return_cutoff=True,
             return_norm=True),
        dict(max_degree=3, num=2, radial_fn=partial(module.sinc, limit=2.0),
             cutoff_fn=partial(module.cosine_cutoff, cutoff=2.0),
             damping_fn=module.smooth_damping, cartesian_order=False, return_norm=True),
    ]


def _basis_all(basis_fn, module, r, which=(0, 1, 2)):
    """Outputs and d/dr of a weighted sum, for the selected configs (one graph)."""
    out = []
    for cfg in [_basis_configs(module)[i] for i in which]:
        w = jnp.asarray(np.random.default_rng(cfg["num"]).normal(size=(cfg["num"],)), r.dtype)

        def loss(r_, cfg=cfg, w=w):
            res = basis_fn(r_, **cfg)
            res = res if isinstance(res, tuple) else (res,)
            return jnp.sum(res[0] * w) + sum(jnp.sum(t) for t in res[1:]), res

        (_, res), grad = jax.value_and_grad(loss, has_aux=True)(r)
        out.append((res, grad))
    return out


def test_basis_matches_e3x(dtype):
    """Values, cutoff/norm outputs and d/dr equal e3x (incl. r = 0 and |r| = cutoff)."""
    r = _vectors(dtype)
    which = (0, 1, 2) if dtype == jnp.float32 else (1, 2)
    ours = _compiled(lambda r_: _basis_all(eqx_mp.nn.basis, F, r_, which), r)
    ref = _compiled(lambda r_: _basis_all(e3x.nn.basis, e3x.nn.functions, r_, which), r)
    # spherical harmonics are evaluated by a different (from scratch) polynomial table here
    tol = dict(rtol=2e-6, atol=2e-6) if dtype == jnp.float32 else dict(rtol=1e-12, atol=1e-12)
    gtol = dict(rtol=1e-5, atol=2e-5) if dtype == jnp.float32 else dict(rtol=1e-10, atol=1e-11)
    cfgs = [_basis_configs(F)[i] for i in which]
    for cfg, (outs, grad), (outs_ref, grad_ref) in zip(cfgs, ours, ref):
        L, K = cfg["max_degree"], cfg["num"]
        assert outs[0].shape == (2, 4, 1, (L + 1) ** 2, K) and outs[0].dtype == dtype
        assert len(outs) == len(outs_ref)
        for a, b in zip(outs, outs_ref):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, **tol, err_msg=str(cfg))
        assert bool(jnp.all(jnp.isfinite(grad))), cfg
        np.testing.assert_allclose(grad, grad_ref, **gtol, err_msg=str(cfg))


def test_basis_is_equivariant():
    """basis(r @ R) == rotate(basis(r), wigner_d(R)) with eqx_mp's own so3."""
    r = _vectors(jnp.float32)
    rot = jnp.asarray(random_rotation(3), jnp.float32)
    d = eqx_mp.so3.wigner_d(rot, 3)
    cfg = dict(_basis_configs(F)[2], cartesian_order=True)

    def both(r_):
        return eqx_mp.nn.basis(r_ @ rot, **cfg)[0], eqx_mp.nn.rotate(eqx_mp.nn.basis(r_, **cfg)[0], d)

    b_rot, rot_b = _compiled(both, r)
    np.testing.assert_allclose(b_rot, rot_b, atol=2e-5)


def test_exponential_basis_matches_e3x():
    """Same parameter value as e3x's ExponentialBasis, same output, same d/dgamma."""
    r = _vectors(jnp.float32)
    kwargs = dict(max_degree=2, num=4, cutoff_fn=F.smooth_cutoff, return_cutoff=True)
    ref_mod = e3x.nn.ExponentialBasis(initial_gamma=1.7)
    variables = ref_mod.init(jax.random.key(0), r, radial_fn=e3x.nn.exponential_chebyshev, **kwargs)
    ours_mod = eqx_mp.nn.ExponentialBasis(initial_gamma=1.7)
    np.testing.assert_allclose(ours_mod.gamma, variables["params"]["gamma"], rtol=1e-6)
    assert ours_mod.gamma.shape == () and ours_mod.gamma.dtype == jnp.float32

    def ours_loss(m):
        out, cut = m(r, radial_fn=F.exponential_chebyshev, **kwargs)
        return jnp.sum(out**2) + jnp.sum(cut)

    def ref_loss(v):
        out, cut = ref_mod.apply(v, r, radial_fn=e3x.nn.exponential_chebyshev, **kwargs)
        return jnp.sum(out**2) + jnp.sum(cut)

    val, grads = _compiled(jax.value_and_grad(ours_loss), ours_mod)
    val_ref, grads_ref = _compiled(jax.value_and_grad(ref_loss), variables)
    np.testing.assert_allclose(val, val_ref, rtol=1e-5)
    np.testing.assert_allclose(grads.gamma, grads_ref["params"]["gamma"], rtol=1e-4)
    with pytest.raises(ValueError, match="initial_gamma must be positive"):
        eqx_mp.nn.ExponentialBasis(initial_gamma=0.0)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        # (with pytest's --jaxtyping-packages import hook, jaxtyping's own TypeCheckError about
        # parameter 'r' comes first; both are TypeErrors)
        (dict(r=jnp.ones((4, 2))), TypeError, r"r must have shape \(\.\.\., 3\)|parameter 'r'"),
        (dict(r=jnp.ones((4, 3), jnp.int32)), TypeError, "floating-point dtype|parameter 'r'"),
        (dict(return_cutoff=True), ValueError, "no cutoff_fn was specified"),
        (dict(max_degree=-1), ValueError, "degree must be positive or zero, received -1"),
        (dict(num=0), ValueError, "num must be greater or equal to 1, received 0"),
        (dict(radial_fn=lambda x, n: x), eqx_mp.ShapeError, r"radial_fn returned shape \(4,\)"),
        (dict(cutoff_fn=lambda x: x[..., None]), eqx_mp.ShapeError, "cutoff_fn returned shape"),
        (dict(angular_fn=lambda r, max_degree, cartesian_order: r), eqx_mp.ShapeError,
         r"angular_fn returned shape \(4, 3\), expected \(4, 4\)"),
    ],
)
def test_basis_errors(kwargs, exc, match):
    args = dict(r=jnp.ones((4, 3)), max_degree=1, num=2, radial_fn=F.basic_gaussian)
    args.update(kwargs)
    r = args.pop("r")
    with pytest.raises(exc, match=match):
        eqx_mp.nn.basis(r, **args)
