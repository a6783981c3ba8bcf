"""Oracle and equivariance tests of eqx_mp.nn.features against e3x.nn.features."""

from __future__ import annotations

import e3x
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_rotation

import eqx_mp
from eqx_mp.nn import features as Fe


def _x(dtype, parity, max_degree, seed, batch=(2,), features=3):
    rng = np.random.default_rng(seed)
    return jnp.asarray(
        rng.normal(size=(*batch, parity, (max_degree + 1) ** 2, features)), dtype=dtype
    )


def _all_ops(module, xs, d, combos):
    """Every feature op on every input (values), plus the VJP of add, in one graph."""
    out = {}
    for i, x in enumerate(xs):
        out[f"reflect {i}"] = module.reflect(x)
        L = int(round(x.shape[-2] ** 0.5)) - 1
        out[f"rotate {i}"] = module.rotate(x, d[: (L + 1) ** 2, : (L + 1) ** 2])
        for md, ip in combos:
            out[f"change {i} {md} {ip}"] = module.change_max_degree_or_type(x, md, ip)
    out["add"] = module.add(*xs)
    out["add2"] = module.add(xs[1], xs[0])
    y, vjp = jax.vjp(lambda *a: module.add(*a), *xs)
    out["add_vjp"] = vjp(jnp.ones_like(y))
    return out


def test_feature_ops_match_e3x(dtype):
    """reflect, rotate, change_max_degree_or_type (truncate/pad x add/drop/keep type), add."""
    xs = [_x(dtype, 1, 2, 1), _x(dtype, 2, 1, 2), _x(dtype, 2, 3, 3)]
    combos = ((None, None), (0, True), (1, False), (3, True), (3, None), (None, False))
    if dtype == jnp.float64:  # the ops only move/add numbers: the float32 run covers the logic
        xs, combos = xs[1:], combos[1:4]
    # rotate() is a plain contraction: any matrix serves as the oracle's input
    d = jnp.asarray(np.random.default_rng(8).normal(size=(16, 16)), dtype)
    ours = jax.jit(lambda xs_: _all_ops(Fe, xs_, d, combos))(xs)
    ref = jax.jit(lambda xs_: _all_ops(e3x.nn.features, xs_, d, combos))(xs)
    assert ours.keys() == ref.keys()
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == jnp.float32 else dict(rtol=1e-13, atol=1e-14)
    for key in ours:
        for a, b in zip(jax.tree.leaves(ours[key]), jax.tree.leaves(ref[key])):
            assert a.shape == b.shape and a.dtype == b.dtype == dtype, key
            np.testing.assert_allclose(a, b, **tol, err_msg=str(key))
    assert ours["add"].shape == (2, 2, 16, 3)
    # degree 0 / P = 1 edge case of change_max_degree_or_type
    x0 = _x(dtype, 1, 0, 0)
    for md, ip in ((2, True), (0, False)):
        np.testing.assert_array_equal(Fe.change_max_degree_or_type(x0, md, ip),
                                      e3x.nn.change_max_degree_or_type(x0, md, ip))


def test_batched_matrices_rotate_matches_e3x():
    x = _x(jnp.float32, 2, 2, 4, batch=(3,))
    d = jnp.asarray(np.random.default_rng(9).normal(size=(3, 9, 9)), jnp.float32)
    np.testing.assert_allclose(Fe.rotate(x, d), e3x.nn.rotate(x, d), rtol=1e-6, atol=1e-6)


def test_degree_masks_match_e3x():
    for ours, ref in ((Fe.even_degree_mask(4), e3x.nn.even_degree_mask(4)),
                      (Fe.odd_degree_mask(4), e3x.nn.odd_degree_mask(4))):
        assert ours.dtype == jnp.bool_ and ours.shape == (25, 1)
        np.testing.assert_array_equal(ours, ref)
    for L in range(4):  # the masks of lower degrees are prefixes
        np.testing.assert_array_equal(Fe.even_degree_mask(L), e3x.nn.even_degree_mask(4)[: (L + 1) ** 2])
        np.testing.assert_array_equal(Fe.odd_degree_mask(L), ~Fe.even_degree_mask(L))


def test_add_and_reflect_are_equivariant():
    """add(a @ Da, b @ Db) == add(a, b) @ D (different degrees and types), with eqx_mp.so3."""
    d = eqx_mp.so3.wigner_d(jnp.asarray(random_rotation(2), jnp.float32), 3)
    a, b, c = _x(jnp.float32, 1, 1, 5), _x(jnp.float32, 2, 3, 6), _x(jnp.float32, 1, 2, 7)
    blk = lambda L: d[: (L + 1) ** 2, : (L + 1) ** 2]
    lhs = Fe.add(Fe.rotate(a, blk(1)), Fe.rotate(b, blk(3)), Fe.rotate(c, blk(2)))
    rhs = Fe.rotate(Fe.add(a, b, c), d)
    np.testing.assert_allclose(lhs, rhs, atol=1e-5)
    # a reflection (inversion -I) acts on irreps as reflect(): D(-I) = diag((-1)^l) for P = 1
    d_inv = eqx_mp.so3.wigner_d(-jnp.eye(3), 2)
    np.testing.assert_allclose(Fe.reflect(c), Fe.rotate(c, d_inv), atol=1e-6)
    # and commutes with add
    np.testing.assert_allclose(Fe.add(Fe.reflect(a), Fe.reflect(b)), Fe.reflect(Fe.add(a, b)),
                               atol=1e-6)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: Fe.add(jnp.ones((2, 1, 4, 3)), jnp.ones((2, 1, 4, 5))), eqx_mp.ShapeError,
         "same number of features.*position 1, expected 3"),
        (lambda: Fe.add(jnp.ones((2, 1, 4, 3)), jnp.ones((3, 1, 4, 3))), eqx_mp.ShapeError,
         r"leading dimensions \(3,\) at position 1, expected \(2,\)"),
        (lambda: Fe.add(jnp.ones((1, 4, 3)), jnp.ones((1, 4, 3), jnp.float16)), eqx_mp.ShapeError,
         "same dtype"),
        (lambda: Fe.add(jnp.ones((1, 4, 3)), jnp.ones((1, 5, 3))), eqx_mp.ShapeError,
         r"inputs\[1\]: axis -2 must have size \(L\+1\)\*\*2"),
        (lambda: Fe.add(jnp.ones((4, 3))), eqx_mp.ShapeError, "at least three-dimensional"),
        (lambda: Fe.add(), ValueError, "at least one input"),
        (lambda: Fe.reflect(jnp.ones((3, 4, 3))), eqx_mp.ShapeError, r"axis -3 \(parity\)"),
        (lambda: Fe.change_max_degree_or_type(jnp.ones((1, 4, 3)), -1), ValueError,
         "max_degree must be >= 0"),
        (lambda: Fe.rotate(jnp.ones((1, 4, 3)), jnp.eye(9)), eqx_mp.ShapeError,
         r"expected shape \(\.\.\., 4, 4\).*received shape \(9, 9\)"),
        (lambda: Fe.rotate(jnp.ones((2, 1, 4, 3)), jnp.ones((3, 4, 4))), eqx_mp.ShapeError,
         r"x and wigner_d_matrix have incompatible shapes \(2, 1, 4, 3\) and \(3, 4, 4\)"),
        (lambda: Fe.even_degree_mask(-1), ValueError, "max_degree must be >= 0"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
