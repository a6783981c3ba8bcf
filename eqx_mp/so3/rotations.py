r"""Rotation matrices and Wigner-D matrices (e3x's names, arguments and conventions).

Convention (as in e3x): vectors are rows and rotate as ``r @ rot``; irreps rotate as
``x @ wigner_d(rot, L)``, so that
``spherical_harmonics(r @ rot, L) == spherical_harmonics(r, L) @ wigner_d(rot, L)``.

Wigner-D matrices are computed by exact quadrature: block ``l`` is
:math:`\frac{2l+1}{4\pi}\int Y_l(\vec{p})^\intercal\, R_l(\vec{p}\,\mathrm{rot})\,d\Omega`
(``R_l`` the solid harmonics), evaluated with a Gauss-Legendre x uniform product grid that
integrates polynomials of degree ``2L`` on the sphere exactly. For any 3x3 matrix this is the
projection of the rotated harmonic polynomials onto the harmonic ones, i.e. the same polynomial
in the entries of ``rot`` as e3x's lookup table, at a fraction of the cost.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Union

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from .._checks import (
    as_inexact, check_array, check_degree, check_int, check_trailing, is_concrete, typecheck,
)
from ..config import Config
from ..ops.safe import normalize
from .harmonics import evaluate_polynomials, harmonics_table, monomial_powers

__all__ = [
    "rotation",
    "rotation_euler",
    "euler_angles_from_rotation",
    "alignment_rotation",
    "random_rotation",
    "wigner_d",
]

_HIGHEST = jax.lax.Precision.HIGHEST


def _transpose(m: Array) -> Array:
    return jnp.swapaxes(m, -1, -2)


# ----------------------------------------------------------------------------------------------
# Rotation matrices.
# ----------------------------------------------------------------------------------------------


def _rotation(axis: Array, angle: Array) -> Array:
    """Rotation matrices (row-vector convention) of broadcast ``(..., 3)`` axes and angles."""
    n = normalize(axis, axis=-1)
    c = jnp.cos(angle)[..., None, None]
    s = jnp.sin(angle)[..., None, None]
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    zero = jnp.zeros_like(x)
    # Cross-product matrix K (K v = n x v) and the column-vector Rodrigues rotation.
    k = jnp.stack(
        (
            jnp.stack((zero, -z, y), axis=-1),
            jnp.stack((z, zero, -x), axis=-1),
            jnp.stack((-y, x, zero), axis=-1),
        ),
        axis=-2,
    )
    nnt = n[..., :, None] * n[..., None, :]
    eye = jnp.eye(3, dtype=n.dtype)
    r_col = c * eye + s * k + (1 - c) * nnt  # Rodrigues (column-vector convention).
    # A zero axis (left unnormalized by normalize) gives the identity.
    nonzero = jnp.sum(n * n, axis=-1)[..., None, None] > 0
    r_col = jnp.where(nonzero, r_col, eye)
    return _transpose(r_col)


def _as_angle(x: object, name: str) -> Array:
    """Numbers and real arrays as a float array (integers promoted to float, as in e3x)."""
    if isinstance(x, (int, float, np.number)):
        x = jnp.asarray(x)
    check_array(x, name, dtype="real")
    return as_inexact(x, name)


def _rotation_precheck(axis: object, angle: object) -> dict:
    check_trailing(axis, "axis", (3,), "(..., 3)")
    angle = _as_angle(angle, "angle")
    axis = jnp.asarray(axis)
    dtype = jnp.result_type(axis.dtype, angle.dtype)
    shape = jnp.broadcast_shapes(axis.shape[:-1], angle.shape)
    return dict(axis=jnp.broadcast_to(axis.astype(dtype), (*shape, 3)),
                angle=jnp.broadcast_to(angle.astype(dtype), shape))


@typecheck(precheck=_rotation_precheck)
def rotation(
    axis: Float[ArrayLike, "*#b 3"], angle: Real[ArrayLike, "*#b"]
) -> Float[Array, "*#b 3 3"]:
    r"""3x3 matrix of the counterclockwise rotation about ``axis`` by ``angle``.

    Row-vector convention (as e3x): ``r @ rotation(axis, angle)`` is ``r`` rotated.

    Arguments:
        axis: Rotation axes, shape ``(..., 3)`` (need not be normalized).
        angle: Angles in radians, shape ``(...)`` broadcastable against ``axis[..., 0]``, or
            a Python number (integers are promoted to float, as in e3x).

    Returns:
        Array of shape ``(..., 3, 3)``. A zero axis gives the identity (e3x returns
        ``cos(angle/2)**2`` times the identity there, which is not a rotation).

    Raises:
        ShapeError: If ``axis`` is not a float array of shape ``(..., 3)`` or ``angle`` is not
            a float.

    Example:
        >>> r = jnp.asarray([1.0, 0.0, 0.0])
        >>> jnp.round(r @ rotation(jnp.asarray([0.0, 1.0, 0.0]), jnp.pi), 3)
        Array([-1.,  0.,  0.], dtype=float32)
    """
    return _rotation(jnp.asarray(axis), jnp.asarray(angle))  # arrays already (precheck)


def _euler_precheck(a: object, b: object, c: object) -> dict:
    a, b, c = (_as_angle(v, n) for v, n in ((a, "a"), (b, "b"), (c, "c")))
    dtype = jnp.result_type(a.dtype, b.dtype, c.dtype)
    shape = jnp.broadcast_shapes(a.shape, b.shape, c.shape)
    a, b, c = (jnp.broadcast_to(v.astype(dtype), shape) for v in (a, b, c))
    return dict(a=a, b=b, c=c)


@typecheck(precheck=_euler_precheck)
def rotation_euler(
    a: Real[ArrayLike, "*#b"], b: Real[ArrayLike, "*#b"], c: Real[ArrayLike, "*#b"]
) -> Float[Array, "*#b 3 3"]:
    r"""3x3 rotation matrix from Euler angles: about ``x`` by ``a``, then ``y`` by ``b``, then
    ``z`` by ``c`` (all counterclockwise; row-vector convention as e3x).

    Arguments:
        a: Angle about the x-axis in radians, shape ``(...)`` or a Python float.
        b: Angle about the y-axis in radians, broadcastable against ``a``.
        c: Angle about the z-axis in radians, broadcastable against ``a``.

    Returns:
        Array of shape ``(..., 3, 3)`` (the broadcast shape of the angles).

    Raises:
        ShapeError: If an angle is not a float or float array.
    """
    sa, ca, sb, cb, sc, cc = jnp.sin(a), jnp.cos(a), jnp.sin(b), jnp.cos(b), jnp.sin(c), jnp.cos(c)
    one, zero = jnp.ones_like(a), jnp.zeros_like(a)

    def mat(rows):
        return jnp.stack([jnp.stack(row, axis=-1) for row in rows], axis=-2)

    rx = mat(((one, zero, zero), (zero, ca, -sa), (zero, sa, ca)))
    ry = mat(((cb, zero, sb), (zero, one, zero), (-sb, zero, cb)))
    rz = mat(((cc, -sc, zero), (sc, cc, zero), (zero, zero, one)))
    # Column convention: first x, then y, then z; transpose for row vectors.
    return _transpose(jnp.matmul(rz, jnp.matmul(ry, rx, precision=_HIGHEST), precision=_HIGHEST))


def _rot_precheck(rot: object) -> dict:
    check_trailing(rot, "rot", (3, 3), "(..., 3, 3)", label="rotation matrices")
    return dict(rot=jnp.asarray(rot))


@typecheck(precheck=_rot_precheck)
def euler_angles_from_rotation(
    rot: Float[ArrayLike, "*b 3 3"],
) -> tuple[Float[Array, "*b"], Float[Array, "*b"], Float[Array, "*b"]]:
    r"""Euler angles ``(a, b, c)`` with ``rotation_euler(a, b, c) == rot`` (e3x's convention).

    ``b`` is in ``[-pi/2, pi/2]``; ``a`` and ``c`` in ``(-pi, pi]``. At gimbal lock
    (``rot[..., 0, 2] == +-1``) ``c`` is set to 0.

    Arguments:
        rot: Rotation matrices, shape ``(..., 3, 3)``.

    Returns:
        Tuple ``(a, b, c)`` of arrays of shape ``(...)``: angles (radians) about x, y and z.

    Raises:
        ShapeError: If ``rot`` is not a float array of shape ``(..., 3, 3)``.
    """
    rot = jnp.asarray(rot)  # an array already (the precheck converts); typed as one here
    s = rot[..., 0, 2]  # -sin(b)
    b = -jnp.arcsin(s)
    cos_b = jnp.cos(b)
    safe = jnp.where(cos_b != 0.0, cos_b, 1.0)
    a = jnp.arctan2(rot[..., 1, 2] / safe, rot[..., 2, 2] / safe)
    c = jnp.arctan2(rot[..., 0, 1] / safe, rot[..., 0, 0] / safe)
    # Gimbal lock (|sin b| = 1): c is arbitrary, set to 0 and fold everything into a.
    almost1 = 1.0 - jnp.finfo(rot.dtype).epsneg
    pos, neg = s > almost1, s < -almost1
    c = jnp.where(pos | neg, 0.0, c).astype(rot.dtype)
    a = jnp.where(pos, jnp.arctan2(-rot[..., 1, 0], -rot[..., 2, 0]), a)
    a = jnp.where(neg, jnp.arctan2(rot[..., 1, 0], rot[..., 2, 0]), a)
    b = jnp.where(pos, -jnp.pi / 2, b).astype(rot.dtype)
    b = jnp.where(neg, jnp.pi / 2, b).astype(rot.dtype)
    return a, b, c


def _alignment_precheck(u: object, v: object) -> dict:
    check_trailing(u, "u", (3,), "(..., 3)")
    check_trailing(v, "v", (3,), "(..., 3)")
    u, v = jnp.asarray(u), jnp.asarray(v)
    dtype = jnp.result_type(u.dtype, v.dtype)
    shape = jnp.broadcast_shapes(u.shape, v.shape)
    return dict(u=jnp.broadcast_to(u.astype(dtype), shape), v=jnp.broadcast_to(v.astype(dtype), shape))


@typecheck(precheck=_alignment_precheck)
def alignment_rotation(
    u: Float[ArrayLike, "*#b 3"], v: Float[ArrayLike, "*#b 3"]
) -> Float[Array, "*#b 3 3"]:
    r"""Rotation matrix along the shortest arc that takes the direction of ``u`` to that of ``v``.

    ``normalize(u) @ alignment_rotation(u, v) == normalize(v)`` (row-vector convention). For
    angles below about 140 degrees this is e3x's formula; for larger angles the axis-angle form
    is used instead, which stays accurate close to antiparallel (e3x's formula divides by
    ``1 + u.v`` and returns a wrong matrix when rounding makes that tiny but positive). For
    exactly antiparallel vectors it is a half turn about an axis perpendicular to ``u`` (the same
    one e3x picks, except where e3x's choice degenerates, for ``u`` along ``(1, 1, 1)``).

    Arguments:
        u: Vectors to rotate, shape ``(..., 3)``.
        v: Target vectors, shape ``(..., 3)`` (broadcastable against ``u``).

    Returns:
        Array of shape ``(..., 3, 3)``.

    Raises:
        ShapeError: If ``u`` or ``v`` is not a float array of shape ``(..., 3)``.
    """
    u = normalize(u, axis=-1)
    v = normalize(v, axis=-1)
    x = jnp.cross(u, v)
    cos = jnp.sum(u * v, axis=-1)
    eye = jnp.eye(3, dtype=u.dtype)
    # (a) Angles below ~140 degrees: e3x's formula, rot = I + K^T + K K / (1 + u.v) in the
    #     row-vector convention (K the cross-product matrix of x = u x v).
    zero = jnp.zeros_like(x[..., 0])
    kt = jnp.stack(
        (
            jnp.stack((zero, x[..., 2], -x[..., 1]), axis=-1),
            jnp.stack((-x[..., 2], zero, x[..., 0]), axis=-1),
            jnp.stack((x[..., 1], -x[..., 0], zero), axis=-1),
        ),
        axis=-2,
    )
    div = 1 + cos
    use_a = div > 0.25  # below this the 1 / (1 + u.v) amplifies rounding errors
    inv = 1 / jnp.where(use_a, div, 1)
    rot_a = eye + kt + jnp.matmul(kt, kt, precision=_HIGHEST) * inv[..., None, None]
    # (b) Up to nearly antiparallel: axis u x v, angle atan2(|u x v|, u.v) (well-conditioned
    #     while |u x v| is well above rounding level).
    s2 = jnp.sum(x * x, axis=-1)
    use_b = s2 > jnp.finfo(u.dtype).eps
    sin = jnp.sqrt(jnp.where(use_b, s2, 1))
    rot_b = _rotation(x, jnp.arctan2(sin, cos))
    # (c) Antiparallel: half turn about an axis perpendicular to u (e3x's choice where defined,
    #     otherwise the cross product with the coordinate axis least aligned with u).
    w = normalize(u + jnp.roll(u, shift=1, axis=-1), axis=-1)
    axis = jnp.cross(u, w)
    e = jax.nn.one_hot(jnp.argmin(jnp.abs(u), axis=-1), 3, dtype=u.dtype)
    good = jnp.sum(axis * axis, axis=-1, keepdims=True) > 1e-6
    axis = jnp.where(good, axis, jnp.cross(u, e))
    rot_c = _rotation(axis, jnp.full(axis.shape[:-1], jnp.pi, dtype=u.dtype))
    rot = jnp.where(use_b[..., None, None], rot_b, rot_c)
    return jnp.where(use_a[..., None, None], rot_a, rot)


def _random_precheck(key: object, perturbation: Any, num: object) -> dict:
    num = check_int(num, "num", minimum=1, invalid="num must be a positive int, received {value!r}")
    if not is_concrete(perturbation):
        perturbation = jnp.clip(perturbation, 0, 1)  # Unknown at trace time: clamp (documented).
    elif not 0.0 <= np.asarray(perturbation) <= 1.0:
        raise ValueError(f"perturbation must be between 0.0 and 1.0, received {perturbation}")
    if not isinstance(perturbation, (float, int)):
        perturbation = as_inexact(perturbation, "perturbation")
    return dict(perturbation=perturbation, num=num)


@typecheck(precheck=_random_precheck)
def random_rotation(
    key: PRNGKeyArray,
    perturbation: Union[float, int, Float[ArrayLike, ""]] = 1.0,
    num: int = 1,
) -> Float[Array, "3 3"] | Float[Array, "{num} 3 3"]:
    r"""Random 3x3 rotation matrices (e3x's algorithm: same key, same matrices).

    A uniformly distributed unit quaternion (Shoemake's method) is interpolated (slerp) from
    the identity: ``perturbation=1`` gives rotations uniformly distributed on SO(3),
    ``perturbation=0`` the identity, and in between a point on the sphere is rotated to a
    uniformly random point within a cap whose angular radius is ``perturbation * pi``.

    ``perturbation`` may be a traced array (``jax.jit(random_rotation)(key, jnp.array(0.5))``,
    as in e3x's repository head) and is differentiable. A concrete value outside ``[0, 1]``
    raises ``ValueError`` (e3x's message); a traced value cannot be checked and is clamped to
    ``[0, 1]``.

    Arguments:
        key: A JAX PRNG key (``jax.random.PRNGKey`` or ``jax.random.key``).
        perturbation: Number or 0-d float array in ``[0, 1]``.
        num: Number of matrices (``>= 1``); for ``num=1`` the leading axis is dropped.

    Returns:
        Array of shape ``(3, 3)`` if ``num == 1``, else ``(num, 3, 3)``, JAX's default float.

    Raises:
        ValueError: If a concrete ``perturbation`` is not in ``[0, 1]``, or ``num < 1``.

    Example:
        >>> import jax, jax.numpy as jnp, eqx_mp
        >>> rot = jax.jit(eqx_mp.so3.random_rotation)(jax.random.key(0), jnp.array(0.5))
        >>> bool(jnp.allclose(rot @ rot.T, jnp.eye(3), atol=1e-6))
        True
    """
    u = jax.random.uniform(key, shape=(num, 3))
    # Shoemake: uniform unit quaternion (r, i, j, k).
    sqrt1, sqrt2 = jnp.sqrt(1 - u[:, 0]), jnp.sqrt(u[:, 0])
    angle1, angle2 = 2 * jnp.pi * u[:, 1], 2 * jnp.pi * u[:, 2]
    q = jnp.stack(
        (sqrt1 * jnp.sin(angle1), sqrt1 * jnp.cos(angle1), sqrt2 * jnp.sin(angle2),
         sqrt2 * jnp.cos(angle2)),
        axis=-1,
    )
    q = jnp.where(q[:, :1] < 0, -q, q)  # Shorter arc from the identity.
    # Slerp from the identity quaternion (1, 0, 0, 0) by the fraction `perturbation`.
    phi = jnp.arccos(q[:, 0])
    sinphi = jnp.sin(phi)
    small = jnp.abs(sinphi) < 1e-9
    safe = jnp.where(small, 1.0, sinphi)
    f1 = jnp.where(small, 1 - perturbation, jnp.sin((1 - perturbation) * phi) / safe)
    f2 = jnp.where(small, perturbation, jnp.sin(perturbation * phi) / safe)
    r = f1 + f2 * q[:, 0]
    i, j, k = f2 * q[:, 1], f2 * q[:, 2], f2 * q[:, 3]
    i2, j2, k2 = i * i, j * j, k * k
    ij, ik, jk, ir, jr, kr = i * j, i * k, j * k, i * r, j * r, k * r
    # Rotation matrix of the quaternion, transposed for row vectors.
    r_col = jnp.stack(
        (
            jnp.stack((1 - 2 * (j2 + k2), 2 * (ij - kr), 2 * (ik + jr)), axis=-1),
            jnp.stack((2 * (ij + kr), 1 - 2 * (i2 + k2), 2 * (jk - ir)), axis=-1),
            jnp.stack((2 * (ik - jr), 2 * (jk + ir), 1 - 2 * (i2 + j2)), axis=-1),
        ),
        axis=-2,
    )
    rot = _transpose(r_col)
    return rot[0] if num == 1 else rot




# ----------------------------------------------------------------------------------------------
# Wigner-D matrices.
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _sphere_quadrature(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(n, 3)`` and weights ``(n,)`` exact for polynomials of ``degree`` on the sphere.

    Gauss-Legendre in ``cos(theta)`` (``ceil((degree+1)/2)`` nodes) times ``degree+1`` equally
    spaced azimuths; the weights sum to ``4 pi``.
    """
    nt = degree // 2 + 1
    nphi = degree + 1
    t, wt = np.polynomial.legendre.leggauss(nt)
    phi = 2 * np.pi * (np.arange(nphi) + 0.5) / nphi
    st = np.sqrt(1 - t * t)
    pts = np.stack(
        (
            st[:, None] * np.cos(phi)[None, :],
            st[:, None] * np.sin(phi)[None, :],
            np.broadcast_to(t[:, None], (nt, nphi)),
        ),
        axis=-1,
    ).reshape(-1, 3)
    w = np.broadcast_to(wt[:, None] * (2 * np.pi / nphi), (nt, nphi)).reshape(-1)
    pts, w = np.ascontiguousarray(pts), np.ascontiguousarray(w)
    pts.setflags(write=False)
    w.setflags(write=False)
    return pts, w


@functools.lru_cache(maxsize=None)
def _wigner_d_tables(max_degree: int, cartesian_order: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(points (n, 3), projector ((L+1)**2, n), block mask ((L+1)**2, (L+1)**2))`` in float64."""
    pts, w = _sphere_quadrature(2 * max_degree)
    table = harmonics_table(max_degree, "racah", cartesian_order)
    # Racah harmonics at the (unit) points; rows p, columns (l, m).
    powers = monomial_powers(max_degree)
    mono = np.prod(pts[:, None, :] ** powers[None, :, :], axis=-1)
    y = mono @ table
    degrees = np.repeat(np.arange(max_degree + 1), 2 * np.arange(max_degree + 1) + 1)
    projector = ((2 * degrees + 1) / (4 * math.pi))[:, None] * (y * w[:, None]).T
    mask = (degrees[:, None] == degrees[None, :]).astype(np.float64)
    for a in (pts, projector, mask):
        a.setflags(write=False)
    return pts, np.ascontiguousarray(projector), mask


def _wigner_d_precheck(rot: object, max_degree: object, cartesian_order: object) -> dict:
    check_trailing(rot, "rot", (3, 3), "(..., 3, 3)", label="rotation matrices", dtype="real")
    return dict(rot=as_inexact(rot, "rot"), max_degree=check_degree(max_degree, "max_degree"),
                cartesian_order=bool(cartesian_order))


@typecheck(precheck=_wigner_d_precheck)
def wigner_d(
    rot: Real[ArrayLike, "*b 3 3"], max_degree: int, cartesian_order: bool = Config.cartesian_order
) -> Float[Array, "*b ({max_degree}+1)**2 ({max_degree}+1)**2"]:
    r"""Wigner-D matrices of 3x3 rotation matrices, for irreps of degrees ``0..max_degree``.

    Block-diagonal, with one ``(2l+1, 2l+1)`` block per degree, such that
    ``spherical_harmonics(r @ rot, L) == spherical_harmonics(r, L) @ wigner_d(rot, L)``
    (row-vector convention, as in e3x). For an improper rotation ``-rot`` block ``l`` picks up
    :math:`(-1)^l`. Entries are polynomials of degree ``l`` in the entries of ``rot`` (the same
    polynomials as e3x's, also for matrices that are not rotations).

    Arguments:
        rot: Rotation matrices, shape ``(..., 3, 3)`` (integer arrays are promoted to JAX's
            default float; e3x keeps their integer dtype and truncates the result).
        max_degree: Maximum degree :math:`L \ge 0`.
        cartesian_order: If ``True`` (default), irreps are in Cartesian order (see
            :func:`~eqx_mp.so3.spherical_harmonics`).

    Returns:
        Array of shape ``(..., (max_degree+1)**2, (max_degree+1)**2)`` with ``rot``'s dtype.

    Raises:
        ShapeError: If ``rot`` is not a float array of shape ``(..., 3, 3)``.
        ValueError: If ``max_degree`` is negative.
    """
    rot = jnp.asarray(rot)  # an array already (the precheck converts); typed as one here
    pts, projector, mask = _wigner_d_tables(max_degree, cartesian_order)
    dtype = rot.dtype
    rotated = jnp.matmul(jnp.asarray(pts, dtype), rot, precision=_HIGHEST)  # (..., n, 3)
    table = harmonics_table(max_degree, "racah", cartesian_order)
    solid = evaluate_polynomials(rotated, max_degree, table)  # (..., n, (L+1)**2)
    d = jnp.matmul(jnp.asarray(projector, dtype), solid, precision=_HIGHEST)
    return d * jnp.asarray(mask, dtype)
