"""eqx_mp.so3 against e3x (the oracle) and against the maths (equivariance, orthogonality).

Float64 work runs inside ``jax.enable_x64(True)`` blocks only, so nothing leaks into other test
modules (xdist workers run several modules in one process).

Compile time dominates on small machines, so all e3x values come from one jitted function and
all of ours from one jitted function per dtype (cached per process); the tests then compare
arrays. e3x is called at the highest degree (6) only; lower degrees are compared with its leading
``(L+1)**2`` block, which is how e3x lays out its outputs (degree by degree). Float32 results
are compared with e3x's float64 values (stricter than comparing two float32 results).
"""

from __future__ import annotations

import functools
import math

import e3x
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import jaxtyping_hook_installed
from jaxtyping import TypeCheckError

from eqx_mp import ShapeError, so3

# The e3x reference and our jitted evaluations are cached per process: with
# ``pytest -n 2 --dist loadgroup`` this module runs on one worker instead of paying twice.
pytestmark = pytest.mark.xdist_group("so3")

MAX_L = 6
NORMS = ("racah", "4pi", "orthonormal", "schmidt")
ORDERS = (True, False)
DTYPES = ("float64", "float32")
# A flat batch of 14 items is also evaluated with the batch shapes (), (7,) and (2, 3).
SPLITS = ((slice(0, 1), ()), (slice(1, 8), (7,)), (slice(8, 14), (2, 3)))
# random_rotation calls compared with e3x: (perturbation, num).
RANDOM_CALLS = ((1.0, 200), (0.25, 200), (0.0, 1))


def K(*parts) -> str:
    """Flat string keys for the output dictionaries (pytrees need sortable keys)."""
    return "/".join(str(p) for p in parts)


def _num(l: int) -> int:
    return (l + 1) ** 2


def _degrees(max_degree: int) -> np.ndarray:
    return np.repeat(np.arange(max_degree + 1), 2 * np.arange(max_degree + 1) + 1)


def _close(actual, expected, tol: float, what: str) -> float:
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:.3g}"
    return err


def _f32_tol(expected) -> float:
    """1e-6, scaled by the largest magnitude (the '4pi' normalization reaches sqrt(13))."""
    return 1e-6 * max(1.0, float(np.max(np.abs(expected), initial=0.0)))


def _assert_proper(rot, tol, what):
    rot = np.asarray(rot, np.float64)
    eye = np.broadcast_to(np.eye(3), rot.shape)
    _close(np.swapaxes(rot, -1, -2) @ rot, eye, tol, f"{what}: orthogonal")
    _close(np.linalg.det(rot), np.ones(rot.shape[:-2]), tol, f"{what}: det 1")


# ------------------------------------------------------------------------------------------------
# Inputs.
# ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _inputs() -> dict:
    rng = np.random.default_rng(1234)
    points = rng.normal(size=(14, 3)) * rng.uniform(0.2, 3.0, size=(14, 1))
    points[3] = [0.0, 0.0, 0.0]  # zero vector: left unnormalized, as in e3x
    points[4] = [0.0, 0.0, -2.0]  # on the z axis
    points[9] = [1.5, 0.0, 0.0]
    # 14 matrices: rotations, improper rotations and two general (non-orthogonal) matrices.
    q, rr = np.linalg.qr(rng.normal(size=(14, 3, 3)))
    rots = q * np.sign(np.diagonal(rr, axis1=-2, axis2=-1))[:, None, :]  # Haar-random O(3)
    rots *= np.sign(np.linalg.det(rots))[:, None, None]  # -> SO(3)
    mats = rots.copy()
    mats[2] = -rots[2]  # inversion
    mats[5] = rots[5] @ np.diag([1.0, -1.0, 1.0])  # mirror
    mats[11] = -rots[11]
    mats[6] = rng.normal(size=(3, 3))
    mats[12] = rng.normal(size=(3, 3))
    u, v = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    v[1] = 2.5 * u[1]  # parallel
    v[2] = -u[2] + 0.3 * rng.normal(size=3)  # obtuse (> 140 degrees)
    # Gauss-Legendre x uniform grid, exact for polynomials of degree 2 * MAX_L on the sphere.
    t, wt = np.polynomial.legendre.leggauss(MAX_L + 1)
    phi = 2 * np.pi * np.arange(2 * MAX_L + 1) / (2 * MAX_L + 1)
    st = np.sqrt(1 - t * t)
    grid = np.stack(
        [st[:, None] * np.cos(phi), st[:, None] * np.sin(phi), np.repeat(t[:, None], phi.size, 1)],
        axis=-1,
    ).reshape(-1, 3)
    weights = np.repeat(wt[:, None] * 2 * np.pi / phi.size, phi.size, 1).reshape(-1)
    return dict(
        points=points,
        mats=mats,
        axis=rng.normal(size=(2, 3, 3)),
        angle=rng.uniform(-7, 7, size=(2, 3)),
        a=rng.uniform(-4, 4, size=(5,)),
        b=rng.uniform(-4, 4, size=(5,)),
        c=rng.uniform(-4, 4, size=(5,)),
        u=u,
        v=v,
        # Gimbal lock: rot[0, 2] = -1 and +1 exactly.
        gimbal=np.array([[[0.0, 0.6, -1.0], [0.8, 0.0, 0.0], [0.6, -0.8, 0.0]],
                         [[0.0, 0.6, 1.0], [0.8, 0.0, 0.0], [-0.6, 0.8, 0.0]]]),
        # Exactly antiparallel targets (v = -u / 2), the last along (1, 1, 1).
        anti=np.concatenate([u, np.ones((1, 3))]),
        grid=grid,
        weights=weights,
        mixed=np.array([[0.0, 0.0, 0.0], [1e-30, 0.0, 0.0], [0.3, -0.2, 0.9]]),
    )


_GENERAL = (6, 12)  # indices of the non-orthogonal matrices


def _rotation_outputs(lib, x: dict, full: bool = True) -> dict:
    """The same calls on ``e3x.so3`` or ``eqx_mp.so3`` (same names and arguments)."""
    out = {
        "rotation": lib.rotation(x["axis"], x["angle"]),
        "rotation_pi": lib.rotation(x["axis"][0, 0], jnp.pi),
        "rotation_euler": lib.rotation_euler(x["a"], x["b"], x["c"]),
    }
    if lib is so3:  # ours also gets the exactly antiparallel pairs (e3x fails there)
        al = lib.alignment_rotation(
            jnp.concatenate([x["u"], x["anti"]]), jnp.concatenate([x["v"], -0.5 * x["anti"]])
        )
        out["alignment"], out["anti"] = al[: len(x["u"])], al[len(x["u"]) :]
    else:
        out["alignment"] = lib.alignment_rotation(x["u"], x["v"])
    angles = lib.euler_angles_from_rotation(jnp.concatenate([out["rotation_euler"], x["gimbal"]]))
    for name, angle in zip("abc", angles):
        out[K("euler", name)] = angle
    for p, num in RANDOM_CALLS if full else ():  # float32 draws other random bits than float64
        out[K("random", p, num)] = lib.random_rotation(jax.random.PRNGKey(42), p, num)
    return out


# ------------------------------------------------------------------------------------------------
# e3x values (float64) and ours (per dtype), each from one jitted function, cached.
# ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _e3x() -> dict:
    @jax.jit
    def run(x):
        out = {}
        for co in ORDERS:
            for norm in NORMS:
                out[K("sh", co, norm)] = e3x.so3.spherical_harmonics(
                    x["points"], MAX_L, cartesian_order=co, normalization=norm
                )
            out[K("solid", co)] = e3x.so3.solid_harmonics(x["points"], MAX_L, cartesian_order=co)
            out[K("wigner_d", co)] = e3x.so3.wigner_d(x["mats"], MAX_L, cartesian_order=co)
        out.update(_rotation_outputs(e3x.so3, x))
        return out

    with jax.enable_x64(True):
        x = {k: jnp.asarray(v) for k, v in _inputs().items()}
        return jax.tree_util.tree_map(np.asarray, run(x))


def _extra_matrices(m):
    """-I, M0 @ M1, I and -M2 (M2 is an inversion, so -M2 is a rotation)."""
    eye = jnp.eye(3, dtype=m.dtype)
    return jnp.stack([-eye, m[0] @ m[1], eye, -m[2]])


# (degree, cartesian_order) pairs evaluated in float64: every degree in Cartesian order, both
# orders at the top degree and degrees 0 and 3. All normalizations at the top degree (whose
# output holds every degree's normalization constant), Racah below it.
_VARIANTS = [(l, True) for l in range(MAX_L + 1)] + [(0, False), (3, False), (MAX_L, False)]


@functools.lru_cache(maxsize=None)
def _ours(dtype: str) -> dict:
    """Everything of ours the tests look at, from one jitted function per dtype.

    float64 covers every degree 0..6 (see ``_VARIANTS``); float32 (whose code path is the same)
    the top degree, whose leading blocks are the lower degrees.
    """
    full = dtype == "float64"

    @jax.jit
    def run(x):
        out = {}
        r, m = x["points"], x["mats"]
        for l, co in _VARIANTS if full else [(MAX_L, co) for co in ORDERS]:
            for norm in NORMS if l == MAX_L else ("racah",):
                out[K("sh", l, co, norm)] = so3.spherical_harmonics(
                    r, l, cartesian_order=co, normalization=norm
                )
            out[K("solid", l, co)] = so3.solid_harmonics(r, l, cartesian_order=co)
            out[K("wigner_d", l, co)] = so3.wigner_d(m, l, cartesian_order=co)
        # Equivariance: Y(r @ M) for all matrices M (17 x 14 points) and D of the extra ones.
        extra = _extra_matrices(m)
        all_m = jnp.concatenate([m, extra])
        for co in ORDERS if full else (True,):
            out[K("sh_rot", co)] = so3.spherical_harmonics(
                r[None] @ all_m, MAX_L, cartesian_order=co
            )
            out[K("d_extra", co)] = so3.wigner_d(extra, MAX_L, cartesian_order=co)
        out.update(_rotation_outputs(so3, x, full))
        if not full:
            return out
        for i, (part, shape) in enumerate(SPLITS):  # batch shapes (), (7,), (2, 3)
            out[K("sh_batch", i)] = so3.spherical_harmonics(
                r[part].reshape(*shape, 3), MAX_L, normalization="4pi"
            )
            out[K("wigner_d_batch", i)] = so3.wigner_d(m[part].reshape(*shape, 3, 3), MAX_L)
        out["sh_grid"] = so3.spherical_harmonics(x["grid"], MAX_L)
        # Value and Jacobian at r = 0 for every normalization; gradients on a mixed batch.
        out["jac0"] = jax.jacfwd(
            lambda v: jnp.stack(
                [so3.spherical_harmonics(v, 2, normalization=norm) for norm in NORMS]
            )
        )(jnp.zeros(3, r.dtype))
        out["grad_mixed"] = jax.grad(
            lambda v: jnp.sum(so3.spherical_harmonics(v, MAX_L) ** 2)
            + jnp.sum(so3.solid_harmonics(v, MAX_L) ** 2)
        )(x["mixed"])
        # Rotation properties.
        rot = out["rotation_euler"]
        out["euler_round_trip"] = so3.rotation_euler(*so3.euler_angles_from_rotation(rot))
        out["quarter_turn"] = so3.rotation(jnp.asarray([0.0, 0.0, 2.0], r.dtype), 0.5 * jnp.pi)
        return out

    with jax.enable_x64(full):
        x = {k: jnp.asarray(v, dtype=dtype) for k, v in _inputs().items()}
        return jax.tree_util.tree_map(np.asarray, run(x))


# ------------------------------------------------------------------------------------------------
# Spherical and solid harmonics.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_spherical_harmonics_match_e3x(dtype):
    ref, ours = _e3x(), _ours(dtype)
    for l, co in _VARIANTS if dtype == "float64" else [(MAX_L, co) for co in ORDERS]:
        for norm in NORMS if l == MAX_L else ("racah",):
            expected = ref[K("sh", co, norm)][:, : _num(l)]
            tol = 1e-12 if dtype == "float64" else _f32_tol(expected)
            got = ours[K("sh", l, co, norm)]
            assert got.dtype == np.dtype(dtype)
            _close(got, expected, tol, f"Y L={l} cartesian={co} {norm} {dtype}")
        expected = ref[K("solid", co)][:, : _num(l)]
        scale = max(1.0, float(np.max(np.abs(expected))))  # |r|**l up to ~3**6
        tol = (1e-12 if dtype == "float64" else 1e-6) * scale
        _close(ours[K("solid", l, co)], expected, tol, f"solid L={l} cartesian={co} {dtype}")


def test_batch_shapes():
    """Batch shapes (), (7,), (2, 3) against e3x's values for the flat batch."""
    ref, ours = _e3x(), _ours("float64")
    for i, (part, shape) in enumerate(SPLITS):
        expected = ref[K("sh", True, "4pi")][part].reshape(*shape, _num(MAX_L))
        _close(ours[K("sh_batch", i)], expected, 1e-12, f"Y batch {shape}")
        expected = ref[K("wigner_d", True)][part]
        scale = np.maximum(np.max(np.abs(expected), axis=(-1, -2), keepdims=True), 1)
        got = ours[K("wigner_d_batch", i)]
        assert got.shape == (*shape, _num(MAX_L), _num(MAX_L))
        _close(got.reshape(expected.shape) / scale, expected / scale, 1e-12, f"D batch {shape}")


def test_spherical_harmonics_closed_form_degrees_0_and_1():
    """Independent of both implementations: Y_0 = N_0, Y_1 = N_1 * r / |r|."""
    ours = _ours("float64")
    r = np.delete(_inputs()["points"], 3, axis=0)  # without the zero vector
    u = r / np.linalg.norm(r, axis=-1, keepdims=True)
    for norm, n0, n1 in (("racah", 1, 1), ("4pi", 1, math.sqrt(3)),
                         ("orthonormal", math.sqrt(1 / (4 * math.pi)), math.sqrt(3 / (4 * math.pi)))):
        y = np.delete(ours[K("sh", MAX_L, True, norm)][:, :4], 3, axis=0)
        y_std = np.delete(ours[K("sh", MAX_L, False, norm)][:, :4], 3, axis=0)
        _close(y[:, 0], np.full(len(r), n0), 1e-15, f"Y00 {norm}")
        _close(y[:, 1:], n1 * u, 1e-15, f"Y1 cartesian = (x, y, z) {norm}")
        _close(y_std[:, 1:], n1 * u[:, [1, 2, 0]], 1e-15, f"Y1 standard = (y, z, x) {norm}")


def test_spherical_harmonics_orthogonality():
    """Exact quadrature: Racah normalization gives Gram matrix diag(4 pi / (2l + 1))."""
    y, w = _ours("float64")["sh_grid"], _inputs()["weights"]
    gram = (y * w[:, None]).T @ y
    _close(gram, np.diag(4 * np.pi / (2 * _degrees(MAX_L) + 1)), 1e-12, "Racah Gram matrix")


def test_spherical_harmonics_zero_vector_value_and_gradient():
    ours = _ours("float64")
    # Value at r = 0 (e3x agrees: the zero vector is points[3] in the e3x comparison).
    _close(ours[K("sh", MAX_L, True, "4pi")][3], np.eye(_num(MAX_L))[0], 0.0, "Y(0)")
    # At r = 0 the input is left unnormalized (as in e3x), so the Jacobian is the linear part:
    # N_1 * identity in the degree-1 block (Cartesian order), zero elsewhere.
    for k, n1 in enumerate((1.0, math.sqrt(3), math.sqrt(3 / (4 * math.pi)), 1.0)):  # NORMS
        expected = np.zeros((9, 3))
        expected[1:4] = n1 * np.eye(3)
        _close(ours["jac0"][k], expected, 1e-15, f"dY/dr at 0 {NORMS[k]}")
    # Reverse mode on a batch with a zero and a tiny (1e-30) vector: finite everywhere.
    assert np.all(np.isfinite(ours["grad_mixed"]))


def test_spherical_harmonics_accepts_numpy():
    r = _inputs()["points"][:4].astype(np.float32)
    y = so3.spherical_harmonics(r, 1)
    assert y.shape == (4, 4) and y.dtype == jnp.float32
    _close(y, _ours("float32")[K("sh", MAX_L, True, "racah")][:4, :4], 1e-6, "numpy input")


# ------------------------------------------------------------------------------------------------
# Wigner-D matrices and equivariance.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_wigner_d_matches_e3x(dtype):
    ref, ours = _e3x(), _ours(dtype)
    proper_or_improper = [i for i in range(14) if i not in _GENERAL]
    for l, co in _VARIANTS if dtype == "float64" else [(MAX_L, co) for co in ORDERS]:
        n = _num(l)
        expected = ref[K("wigner_d", co)][:, :n, :n]
        got = ours[K("wigner_d", l, co)]
        assert got.dtype == np.dtype(dtype)
        if dtype == "float64":
            # Also for general matrices (entries are degree-l polynomials: relative check).
            scale = np.maximum(np.max(np.abs(expected), axis=(-1, -2), keepdims=True), 1)
            _close(got / scale, expected / scale, 1e-12, f"D L={l} cartesian={co}")
        else:
            idx = proper_or_improper
            _close(got[idx], expected[idx], 1e-6, f"D L={l} cartesian={co} float32")


@pytest.mark.parametrize("dtype", DTYPES)
def test_equivariance_rotations_and_reflections(dtype):
    """Y(r @ M) == Y(r) @ D(M) for rotations, inversions and a mirror; Y(-r) = (-1)^l Y(r);
    D(-R) = (-1)^l D(R); D is an orthogonal representation: D(I) = I, D(M0 M1) = D(M0) D(M1)."""
    ours = _ours(dtype)
    sign = (-1.0) ** _degrees(MAX_L)
    eye = np.eye(_num(MAX_L))
    tol = 1e-12 if dtype == "float64" else 5e-6
    for co in ORDERS if dtype == "float64" else (True,):
        d = ours[K("wigner_d", MAX_L, co)]
        y = ours[K("sh", MAX_L, co, "racah")]
        sh_rot = ours[K("sh_rot", co)]
        minus_eye, d01, d_eye, d_rot2 = ours[K("d_extra", co)]
        for k in range(14):
            if k in _GENERAL:
                continue
            _close(sh_rot[k], y @ d[k], tol, f"Y(r M) = Y(r) D(M), M={k} cartesian={co}")
            _close(d[k] @ d[k].T, eye, tol, f"D D^T = I, M={k}")
        _close(sh_rot[14], y * sign, tol, "Y(-r) = (-1)^l Y(r)")
        _close(minus_eye, np.diag(sign), tol, "D(-I) = diag((-1)^l)")
        _close(d_eye, eye, tol, "D(I) = I")
        _close(d01, d[0] @ d[1], tol, "D(M0 M1) = D(M0) D(M1)")
        _close(d[2], d_rot2 * sign[:, None], tol, "D(-R) = (-1)^l D(R)")


# ------------------------------------------------------------------------------------------------
# Rotation matrices.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_rotations_match_e3x(dtype):
    ref, ours = _e3x(), _ours(dtype)
    tol = 1e-12 if dtype == "float64" else 2e-6
    for name in ("rotation", "rotation_pi", "rotation_euler", "alignment"):
        assert ours[name].dtype == np.dtype(dtype), name
        _close(ours[name], ref[name], tol, f"{name} {dtype}")
    for name in "abc":  # includes both gimbal locks
        _close(ours[K("euler", name)], ref[K("euler", name)], 10 * tol, f"euler angle {name}")
    for p, num in RANDOM_CALLS if dtype == "float64" else ():
        got = ours[K("random", p, num)]
        assert got.shape == ((3, 3) if num == 1 else (num, 3, 3))
        _close(got, ref[K("random", p, num)], tol, f"random_rotation p={p} num={num}")


def test_rotation_properties():
    x, ours = _inputs(), _ours("float64")
    _close(ours["euler_round_trip"], ours["rotation_euler"], 1e-12, "euler round trip")
    _close(ours["quarter_turn"], [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], 1e-15,
           "counterclockwise quarter turn about z: x -> y")
    un = x["u"] / np.linalg.norm(x["u"], axis=-1, keepdims=True)
    vn = x["v"] / np.linalg.norm(x["v"], axis=-1, keepdims=True)
    _close(np.einsum("ni,nij->nj", un, ours["alignment"]), vn, 1e-12, "u @ rot = v")
    _assert_proper(ours["alignment"], 1e-12, "alignment_rotation")
    # Exactly antiparallel: e3x's formula divides by a rounding-level 1 + u.v there (and its
    # half-turn axis vanishes for u along (1, 1, 1)); ours stays a proper rotation u -> -u.
    an = x["anti"] / np.linalg.norm(x["anti"], axis=-1, keepdims=True)
    _assert_proper(ours["anti"], 1e-12, "antiparallel alignment")
    _close(np.einsum("ni,nij->nj", an, ours["anti"]), -an, 1e-12, "u @ rot = -u")
    for p, num in RANDOM_CALLS:  # perturbation p bounds the rotation angle by p * pi
        rot = ours[K("random", p, num)].reshape(-1, 3, 3)
        _assert_proper(rot, 1e-12, f"random_rotation p={p}")
        cos = np.clip((np.trace(rot, axis1=-2, axis2=-1) - 1) / 2, -1, 1)
        assert np.max(np.arccos(cos)) <= p * np.pi + 1e-6
        if p == 1.0:  # Haar measure: E[trace] = 0, so E[cos(angle)] = -1/2 (std. error ~0.035)
            assert abs(np.mean(cos) + 0.5) < 0.12
        if p == 0.0:
            _close(rot, np.broadcast_to(np.eye(3), rot.shape), 1e-15, "identity")


# ------------------------------------------------------------------------------------------------
# Clebsch-Gordan coefficients.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cartesian_order", ORDERS)
def test_clebsch_gordan_match_e3x(cartesian_order):
    co = cartesian_order
    # (e3x's Cartesian permutations are slow eager ops, so unequal degrees in standard order only.)
    with jax.enable_x64(True):
        for degrees in ((3, 3, 3),) if co else ((3, 3, 3), (3, 1, 2)):  # all triples <= 3
            _close(so3.clebsch_gordan(*degrees, cartesian_order=co),
                   e3x.so3.clebsch_gordan(*degrees, cartesian_order=co), 1e-12, f"CG {degrees}")
        for degrees in ((1, 2, 3), (3, 3, 2)) if co else ((1, 2, 3), (3, 3, 2), (2, 1, 3)):
            _close(so3.clebsch_gordan_for_degrees(*degrees, cartesian_order=co),
                   e3x.so3.clebsch_gordan_for_degrees(*degrees, cartesian_order=co), 1e-12,
                   f"CG block {degrees}")
        ref = np.asarray(e3x.so3.clebsch_gordan(3, 3, 3, cartesian_order=co))
    cg32 = so3.clebsch_gordan(3, 3, 3, cartesian_order=co)  # float32: the table rounded once
    assert cg32.dtype == jnp.float32
    _close(cg32, ref, 1e-7, "CG float32")


@pytest.mark.parametrize("cartesian_order", ORDERS)
def test_clebsch_gordan_orthogonality_and_equivariance(cartesian_order):
    co = cartesian_order
    with jax.enable_x64(True):
        cg = np.asarray(so3.clebsch_gordan(3, 3, 6, cartesian_order=co))
    for l1 in range(4):
        for l2 in range(4):
            # For fixed (l1, l2) the coefficients for l3 = |l1-l2|..l1+l2 form an orthogonal
            # (2l1+1)(2l2+1) x (2l1+1)(2l2+1) matrix.
            blk = cg[l1 * l1 : _num(l1), l2 * l2 : _num(l2), (l1 - l2) ** 2 : _num(l1 + l2)]
            q = blk.reshape((2 * l1 + 1) * (2 * l2 + 1), -1)
            n = q.shape[0]
            assert q.shape == (n, n)
            _close(q.T @ q, np.eye(n), 1e-13, f"CG orthogonality ({l1},{l2})")
            _close(q @ q.T, np.eye(n), 1e-13, f"CG completeness ({l1},{l2})")
    # Coupling commutes with rotations: (x1 D1) (x) (x2 D2) . C == (x1 (x) x2 . C) D3.
    d6 = _ours("float64")[K("wigner_d", 6, co)][0]  # mats[0] is a rotation
    d3 = d6[:16, :16]
    lhs = np.einsum("ia,jb,abc->ijc", d3, d3, cg)
    rhs = np.einsum("ijk,kc->ijc", cg, d6)
    _close(lhs, rhs, 1e-12, "CG equivariance")


# ------------------------------------------------------------------------------------------------
# Documented errors (one test each).
# ------------------------------------------------------------------------------------------------

_R = jnp.zeros((2, 3))
# Under ``pytest --jaxtyping-packages=eqx_mp,...`` every function in eqx_mp is wrapped by
# jaxtyping's import hook, which checks the public annotations (shapes, dtypes, int, Literal)
# before our explicit checks run: then the error is jaxtyping's, naming the parameter.
_HOOKED = jaxtyping_hook_installed()


def _raises(exc, ours: str, param: str):
    """Our error and message, or (under the import hook) jaxtyping's naming the parameter."""
    if _HOOKED:
        return pytest.raises(TypeCheckError, match=f"parameter '{param}'")
    return pytest.raises(exc, match=ours)


def test_error_r_last_axis_not_3():
    with _raises(ShapeError, r"r must have shape \(\.\.\., 3\), received shape \(5, 4\) \(r: axis -1 has size 4", "r"):
        so3.spherical_harmonics(jnp.zeros((5, 4)), 2)
    with _raises(ValueError, "axis -1 has size 2, expected 3", "r"):  # ShapeError is a ValueError
        so3.solid_harmonics(jnp.zeros((2,)), 2)


def test_error_r_not_float():
    with _raises(ShapeError, "r must have a floating-point dtype, got int32", "r"):
        so3.spherical_harmonics(jnp.zeros((2, 3), dtype=jnp.int32), 2)
    with _raises(ShapeError, "r must be a JAX or NumPy float array", "r"):
        so3.spherical_harmonics([[1.0, 0.0, 0.0]], 2)


def test_error_negative_degree():
    with pytest.raises(ValueError, match=r"degree must be positive or zero, received -1 \(argument max_degree\)"):
        so3.spherical_harmonics(_R, -1)
    with pytest.raises(ValueError, match=r"degree must be positive or zero, received -2 \(argument max_degree\)"):
        so3.wigner_d(jnp.eye(3), -2)
    with pytest.raises(ValueError, match=r"degree must be positive or zero, received -1 \(argument max_degree2\)"):
        so3.clebsch_gordan(1, -1, 1)


def test_error_degree_not_int():
    with _raises(TypeError, "max_degree must be an int, got float", "max_degree"):
        so3.spherical_harmonics(_R, 2.0)


def test_error_invalid_normalization():
    with _raises(ValueError, r"normalization must be in .*received 'unit'", "normalization"):
        so3.spherical_harmonics(_R, 2, normalization="unit")


def test_error_rotation_matrix_shape():
    with _raises(ShapeError, r"rotation matrices must have shape \(\.\.\., 3, 3\), received shape \(4, 3\) \(rot: axis -2 has size 4", "rot"):
        so3.wigner_d(jnp.zeros((4, 3)), 2)
    with _raises(ShapeError, r"rotation matrices must have shape \(\.\.\., 3, 3\).*at least 2", "rot"):
        so3.euler_angles_from_rotation(jnp.zeros((3,)))


def test_error_vector_arguments():
    with _raises(ShapeError, "axis must have shape", "axis"):
        so3.rotation(jnp.zeros((2,)), 0.5)
    with _raises(ShapeError, r"angle must have a real \(integer or floating-point\) dtype, got complex64", "angle"):
        so3.rotation(jnp.ones(3), jnp.zeros((), jnp.complex64))
    with _raises(ShapeError, r"b must have a real \(integer or floating-point\) dtype", "b"):
        so3.rotation_euler(0.1, jnp.zeros(2, jnp.complex64), 0.3)
    with _raises(ShapeError, "v must have shape", "v"):
        so3.alignment_rotation(jnp.ones(3), jnp.ones(4))


def test_error_random_rotation_arguments():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="perturbation must be between 0.0 and 1.0, received 1.5"):
        so3.random_rotation(key, perturbation=1.5)
    with pytest.raises(ValueError, match="num must be a positive int, received 0"):
        so3.random_rotation(key, num=0)


def test_random_rotation_traced_perturbation_under_jit():
    """As in e3x's repository head: ``jax.jit(random_rotation)(key, jnp.array(p))`` works, gives
    e3x 1.0.2's matrices for the same concrete p, and is differentiable in p."""
    key = jax.random.PRNGKey(3)
    for p in (0.0, 0.3, 1.0):
        rot = jax.jit(so3.random_rotation)(key, jnp.array(p))
        np.testing.assert_allclose(rot, e3x.so3.random_rotation(key, p), atol=1e-6)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-6)
    rots = jax.jit(so3.random_rotation, static_argnums=2)(key, jnp.array(0.5), 4)
    assert rots.shape == (4, 3, 3)
    # Traced values cannot be checked: they are clamped to [0, 1] (documented).
    np.testing.assert_allclose(jax.jit(so3.random_rotation)(key, jnp.array(1.7)),
                               so3.random_rotation(key, 1.0), atol=1e-6)
    np.testing.assert_allclose(jax.jit(so3.random_rotation)(key, jnp.array(-1.0)), np.eye(3), atol=1e-6)
    # d/dp by autodiff equals a central difference.
    f = lambda p: jnp.sum(so3.random_rotation(key, p) * jnp.arange(9.0).reshape(3, 3))  # noqa: E731
    eps = 1e-3
    np.testing.assert_allclose(jax.grad(f)(0.4), (f(0.4 + eps) - f(0.4 - eps)) / (2 * eps), rtol=1e-2)
    # Concrete arrays are still checked.
    with pytest.raises(ValueError, match="perturbation must be between 0.0 and 1.0, received 1.5"):
        so3.random_rotation(key, jnp.array(1.5))


@pytest.mark.parametrize("max_degree", [3, 6])  # direct sums (<= 4) and the table's matmul
def test_spherical_harmonics_derivatives_match_e3x(max_degree):
    """First and second derivatives in r, float64, at random points (both evaluation paths)."""
    r = np.random.default_rng(7).normal(size=(5, 3)) * np.array([[1.0], [0.1], [3.0], [1.0], [1.0]])
    with jax.enable_x64(True):
        x = jnp.asarray(r, jnp.float64)

        def derivatives(fn):
            one = lambda v: fn(v, max_degree)  # noqa: E731
            return jax.vmap(jax.jacfwd(one))(x), jax.vmap(jax.hessian(one))(x)

        ours = derivatives(so3.spherical_harmonics)
        theirs = derivatives(e3x.so3.spherical_harmonics)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-11)
