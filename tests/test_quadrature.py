"""so3.lebedev_quadrature / delley_quadrature: e3x's rule selection (same grids), exactness on
spherical-harmonic products (independent of e3x), agreement with SciPy's Lebedev rules, errors."""

import warnings

import e3x
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import lebedev_rule

from eqx_mp import so3

KINDS = ["lebedev", "delley"]
REQUESTS = [
    dict(precision=3),
    dict(precision=8),
    dict(precision=31),
    dict(precision=-4),
    dict(num=6),
    dict(num=100),
    dict(num=1000),
    dict(num=14),
]


def _both(kind, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(so3, f"{kind}_quadrature")(**kw), getattr(e3x.so3, f"{kind}_quadrature")(
            **kw
        )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("request_", REQUESTS, ids=str)
def test_same_rule_as_e3x(kind, request_):
    (r, w), (r_ref, w_ref) = _both(kind, **request_)
    assert (
        r.shape == r_ref.shape and w.shape == w_ref.shape and r.dtype == r_ref.dtype == jnp.float32
    )
    np.testing.assert_array_equal(r, r_ref)
    np.testing.assert_array_equal(w, w_ref)


@pytest.mark.parametrize("kind", KINDS)
def test_same_rule_as_e3x_float64(kind):
    with jax.enable_x64(True):
        (r, w), (r_ref, w_ref) = _both(kind, precision=17)
        assert r.dtype == r_ref.dtype == jnp.float64
        np.testing.assert_array_equal(r, r_ref)
        np.testing.assert_array_equal(w, w_ref)


@pytest.mark.parametrize("kind", KINDS)
def test_out_of_range_requests_warn_and_clamp(kind):
    fn = getattr(so3, f"{kind}_quadrature")
    with pytest.warns(UserWarning, match="not available, returning"):
        r, _ = fn(precision=1000)
    assert r.shape == getattr(e3x.so3, f"{kind}_quadrature")(precision=1000)[0].shape
    with pytest.warns(UserWarning, match="lowest available number of points"):
        r, _ = fn(num=2)
    assert r.shape[0] == (6 if kind == "lebedev" else 14)


@pytest.mark.parametrize(
    "kind, precision", [("lebedev", 7), ("lebedev", 13), ("delley", 11), ("delley", 17)]
)
def test_integrates_harmonic_products_exactly(kind, precision):
    """4 pi sum_i w_i Y_lm(r_i) Y_l'm'(r_i) = 4 pi / (2l+1) delta (Racah) for l + l' <= precision."""
    with jax.enable_x64(True):
        r, w = getattr(so3, f"{kind}_quadrature")(precision=precision)
        lmax = precision // 2
        y = so3.spherical_harmonics(r, lmax, r_is_normalized=True)  # (n, (lmax+1)**2)
        gram = 4 * np.pi * jnp.einsum("i,ia,ib->ab", w, y, y)
        degrees = np.repeat(np.arange(lmax + 1), 2 * np.arange(lmax + 1) + 1)
        np.testing.assert_allclose(gram, np.diag(4 * np.pi / (2 * degrees + 1)), atol=1e-13)
        np.testing.assert_allclose(jnp.sum(w), 1.0, rtol=1e-14)
        np.testing.assert_allclose(jnp.linalg.norm(r, axis=-1), 1.0, rtol=1e-14)
        # Not trivially true: one degree pair above the precision is no longer integrated exactly.
        y2 = so3.spherical_harmonics(r, precision + 1, r_is_normalized=True)
        gram2 = 4 * np.pi * jnp.einsum("i,ia,ib->ab", w, y2, y2)
        degrees2 = np.repeat(np.arange(precision + 2), 2 * np.arange(precision + 2) + 1)
        assert np.max(np.abs(gram2 - np.diag(4 * np.pi / (2 * degrees2 + 1)))) > 1e-6


@pytest.mark.parametrize("precision", [3, 11, 25])
def test_lebedev_points_match_scipy(precision):
    """Independent source: SciPy's Lebedev-Laikov tables (weights there sum to 4 pi)."""
    with jax.enable_x64(True):
        r, w = so3.lebedev_quadrature(precision=precision)
        x, ws = lebedev_rule(precision)
        x = x.T
        assert r.shape == x.shape
        dist = np.linalg.norm(np.asarray(r)[:, None, :] - x[None, :, :], axis=-1)
        match = np.argmin(dist, axis=1)
        assert np.max(dist[np.arange(len(r)), match]) < 1e-13
        assert len(set(match.tolist())) == len(r)
        np.testing.assert_allclose(4 * np.pi * np.asarray(w), ws[match], rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("kw", [dict(), dict(precision=3, num=6)])
def test_exactly_one_of_precision_and_num(kind, kw):
    fn = getattr(so3, f"{kind}_quadrature")
    with pytest.raises(ValueError, match="Exactly one of precision=.* or num=.* must be specified"):
        fn(**kw)
    with pytest.raises(ValueError) as ref:
        getattr(e3x.so3, f"{kind}_quadrature")(**kw)
    with pytest.raises(ValueError) as ours:
        fn(**kw)
    assert str(ref.value) in str(ours.value)
