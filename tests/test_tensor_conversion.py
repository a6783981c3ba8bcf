"""so3.tensor_to_irreps / irreps_to_tensor / is_traceless_symmetric: against e3x (values and
gradients, float32/float64, all normalisations and orders, several batch shapes), round trips,
the detraced outer power of a unit vector equals the spherical harmonics, rotation equivariance."""

import functools
import itertools

import e3x
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_mp import so3

NORMS = ["racah", "4pi", "orthonormal", "schmidt"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("degree, batch", [(0, (3,)), (1, ()), (2, (2, 3)), (3, (4,)), (4, (2,))])
def test_matches_e3x_values_and_gradients(degree, batch, dtype):
    tol = 2e-5 if dtype == "float32" else 1e-12
    with jax.enable_x64(dtype == "float64"):
        rng = np.random.default_rng(degree)
        x = jnp.asarray(rng.normal(size=batch + (2 * degree + 1,)), dtype)
        for i, norm in enumerate(NORMS):
            order = bool(i % 2)
            t = so3.irreps_to_tensor(x, degree, order, norm)
            t_ref = e3x.so3.irreps_to_tensor(x, degree, order, norm)
            assert t.shape == t_ref.shape == batch + ((1,) if degree == 0 else (3,) * degree)
            assert t.dtype == t_ref.dtype
            np.testing.assert_allclose(t, t_ref, rtol=tol, atol=tol)
            y = so3.tensor_to_irreps(t_ref, degree, order, norm)
            np.testing.assert_allclose(
                y, e3x.so3.tensor_to_irreps(t_ref, degree, order, norm), rtol=tol, atol=tol
            )
            np.testing.assert_allclose(y, x, rtol=10 * tol, atol=10 * tol)  # round trip
        w = jnp.asarray(rng.normal(size=t.shape), dtype)
        g = jax.grad(lambda v: jnp.sum(w * jnp.sin(so3.irreps_to_tensor(v, degree))))(x)
        g_ref = jax.grad(lambda v: jnp.sum(w * jnp.sin(e3x.so3.irreps_to_tensor(v, degree))))(x)
        np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol)
        t = e3x.so3.irreps_to_tensor(x, degree)
        g = jax.grad(lambda v: jnp.sum(jnp.cos(so3.tensor_to_irreps(v, degree))))(t)
        g_ref = jax.grad(lambda v: jnp.sum(jnp.cos(e3x.so3.tensor_to_irreps(v, degree))))(t)
        np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_detraced_outer_power_gives_spherical_harmonics(degree):
    """For unit ``r``, the traceless part of ``r (x) ... (x) r`` has the irreps Y_l(r). The
    projector onto symmetric traceless tensors is built here by plain linear algebra."""
    with jax.enable_x64(True):
        r = np.random.default_rng(7).normal(size=(3, 3))
        r /= np.linalg.norm(r, axis=-1, keepdims=True)
        if degree == 0:
            t = np.ones((3, 1))
        else:
            t = np.stack([functools.reduce(np.multiply.outer, [v] * degree) for v in r])
            t = (t.reshape(3, -1) @ _traceless_projector(degree)).reshape(t.shape)
        y = so3.tensor_to_irreps(jnp.asarray(t), degree)
        np.testing.assert_allclose(
            y, so3.spherical_harmonics(jnp.asarray(r), degree)[:, degree**2 :], atol=1e-12
        )
        assert so3.is_traceless_symmetric(jnp.asarray(t), degree)


def _traceless_projector(degree):
    """Orthogonal projector (3**l x 3**l) onto symmetric traceless tensors: the nullspace of the
    constraints t[..a_k, a_k+1..] = t[..a_k+1, a_k..] and sum_m t[m, m, ...] = 0."""
    idx = list(itertools.product(range(3), repeat=degree))
    pos = {a: i for i, a in enumerate(idx)}
    rows = []
    for a in idx:
        for k in range(degree - 1):
            b = a[:k] + (a[k + 1], a[k]) + a[k + 2 :]
            if b != a:
                row = np.zeros(len(idx))
                row[pos[a]], row[pos[b]] = 1.0, -1.0
                rows.append(row)
    for rest in itertools.product(range(3), repeat=max(degree - 2, 0)):
        if degree >= 2:
            row = np.zeros(len(idx))
            for m in range(3):
                row[pos[(m, m) + rest]] = 1.0
            rows.append(row)
    if not rows:
        return np.eye(len(idx))
    _, sv, vt = np.linalg.svd(np.asarray(rows))
    null = vt[np.sum(sv > 1e-10) :]
    assert null.shape[0] == 2 * degree + 1
    return null.T @ null


@pytest.mark.parametrize("degree", [1, 2, 3])
def test_rotation_equivariance(degree):
    """Rotating the tensor (every axis by rot) == rotating the irreps by the Wigner-D matrix."""
    with jax.enable_x64(True):
        rot = so3.random_rotation(jax.random.key(degree))
        x = jnp.asarray(np.random.default_rng(degree).normal(size=(2, 2 * degree + 1)))
        t = so3.irreps_to_tensor(x, degree)
        t_rot = t
        for k in range(degree):  # row-vector convention: v -> v @ rot on every axis
            t_rot = jnp.moveaxis(jnp.tensordot(t_rot, rot, axes=([1 + k], [0])), -1, 1 + k)
        d = so3.wigner_d(rot, degree)[degree**2 :, degree**2 :]
        np.testing.assert_allclose(so3.tensor_to_irreps(t_rot, degree), x @ d, atol=1e-12)


def test_is_traceless_symmetric():
    t = so3.irreps_to_tensor(jnp.arange(1.0, 8.0), 3)
    assert so3.is_traceless_symmetric(t, 3) is True
    assert so3.is_traceless_symmetric(jnp.ones(3), 1) is True  # vectors always are
    assert so3.is_traceless_symmetric(t.at[0, 1, 2].add(1.0), 3) is False  # not symmetric
    assert so3.is_traceless_symmetric(jnp.eye(3), 2) is False  # symmetric, trace 3
    assert so3.is_traceless_symmetric(jnp.eye(3) + 1e-7, 2, atol=1e-5) is False
    assert (
        so3.is_traceless_symmetric(jnp.diag(jnp.array([1.0, -1.0, 1e-7])), 2) is True
    )  # within atol
    for x, degree in [(t, 3), (jnp.eye(3), 2), (t.at[0, 1, 2].add(1.0), 3)]:
        assert so3.is_traceless_symmetric(x, degree) == bool(
            e3x.so3.is_traceless_symmetric(x, degree)
        )


def test_integer_tensors_are_promoted():
    t = jnp.array([[1, 0, 0], [0, -1, 0], [0, 0, 0]])
    np.testing.assert_allclose(
        so3.tensor_to_irreps(t, 2), e3x.so3.tensor_to_irreps(t, 2), atol=1e-6
    )
    assert so3.tensor_to_irreps(t, 2).dtype == jnp.float32


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.so3.tensor_to_irreps(jnp.ones((2, 3, 2)), 2),
        lambda m: m.so3.tensor_to_irreps(jnp.ones(()), 1),
        lambda m: m.so3.tensor_to_irreps(jnp.ones((3, 2)), 0),
        lambda m: m.so3.tensor_to_irreps(jnp.ones((3, 3)), -1),
        lambda m: m.so3.tensor_to_irreps(jnp.ones((3, 3)), 2, normalization="unit"),
        lambda m: m.so3.irreps_to_tensor(jnp.ones((2, 4)), 2),
        lambda m: m.so3.irreps_to_tensor(jnp.ones(5), 2, normalization="unit"),
        lambda m: m.so3.is_traceless_symmetric(jnp.ones((3, 3)), -1),
        lambda m: m.so3.is_traceless_symmetric(jnp.ones((3, 2)), 2),
    ],
)
def test_errors_match_e3x(call):
    with pytest.raises(ValueError) as ref:
        call(e3x)
    with pytest.raises(ValueError) as ours:
        call(__import__("eqx_mp"))
    assert str(ref.value) in str(ours.value)
