"""Clebsch-Gordan coefficients for real spherical harmonics, in e3x's layout and sign convention.

Computed from scratch: complex (Condon-Shortley) coefficients by Racah's formula in exact rational
arithmetic, changed to the real basis with the same unitary e3x uses, then cached per degree triple
as float64 numpy arrays. Nothing here imports e3x.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import check_degree
from ..config import Config
from ._common import cartesian_permutation, cartesian_permutation_for_degree

__all__ = ["clebsch_gordan", "clebsch_gordan_for_degrees"]


def _complex_cg(j1: int, m1: int, j2: int, m2: int, j: int, m: int) -> float:
    """Condon-Shortley Clebsch-Gordan coefficient <j1 m1 j2 m2 | j m> (Racah's formula)."""
    if m1 + m2 != m or abs(m1) > j1 or abs(m2) > j2 or abs(m) > j:
        return 0.0
    if not abs(j1 - j2) <= j <= j1 + j2:
        return 0.0
    f = math.factorial
    pre = Fraction(
        (2 * j + 1) * f(j + j1 - j2) * f(j - j1 + j2) * f(j1 + j2 - j),
        f(j1 + j2 + j + 1),
    ) * (f(j + m) * f(j - m) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2))
    s = Fraction(0)
    for k in range(0, j1 + j2 - j + 1):
        dens = (j1 + j2 - j - k, j1 - m1 - k, j2 + m2 - k, j - j2 + m1 + k, j - j1 - m2 + k)
        if min(dens) < 0:
            continue
        d = f(k)
        for v in dens:
            d *= f(v)
        s += Fraction((-1) ** k, d)
    if s == 0:
        return 0.0
    # sqrt(pre) * s, evaluated as sign * sqrt(pre * s^2) to keep full float64 accuracy.
    val = pre * s * s
    return math.copysign(math.sqrt(val.numerator) / math.sqrt(val.denominator), s)


def _real_basis_change(l: int) -> np.ndarray:
    """Rows: real orders m=-l..l; columns: complex orders. e3x's (a, b) coefficients."""
    u = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    r = 1 / math.sqrt(2)
    for m in range(-l, l + 1):
        if m < 0:
            a, b = (1j * r, -1j * r) if m % 2 == 0 else (1j * r, 1j * r)
        elif m > 0:
            a, b = (r, r) if m % 2 == 0 else (-r, r)
        else:
            a, b = 0.5, 0.5
        u[m + l, m + l] += a
        u[m + l, -m + l] += b
    return u


@functools.lru_cache(maxsize=None)
def _cg_block_standard(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real CG block ``(2l1+1, 2l2+1, 2l3+1)`` in standard order (m=-l..l), float64."""
    out = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        out.setflags(write=False)
        return out
    c = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = m1 + m2
            if abs(m3) <= l3:
                c[m1 + l1, m2 + l2, m3 + l3] = _complex_cg(l1, m1, l2, m2, l3, m3)
    u1, u2, u3 = _real_basis_change(l1), _real_basis_change(l2), _real_basis_change(l3)
    z = np.einsum("ai,bj,ck,ijk->abc", u1, u2, np.conj(u3), c) * (1j ** (l1 + l2 - l3))
    if np.max(np.abs(z.imag), initial=0.0) > 1e-12:  # pragma: no cover - maths guard
        raise AssertionError(f"real CG block ({l1},{l2},{l3}) has an imaginary part")
    out = np.where(np.abs(z.real) < 1e-15, 0.0, z.real)
    out.setflags(write=False)
    return out


def _permuted(a: np.ndarray, p1: np.ndarray, p2: np.ndarray, p3: np.ndarray) -> np.ndarray:
    """``a`` with its three axes permuted by ``p1``, ``p2``, ``p3`` (into Cartesian order)."""
    return a[p1][:, p2][:, :, p3]


def _read_only(a: np.ndarray) -> np.ndarray:
    """A contiguous, read-only copy (cached tables must not be changed by callers)."""
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@functools.lru_cache(maxsize=None)
def cg_block(l1: int, l2: int, l3: int, cartesian_order: bool) -> np.ndarray:
    """Cached real CG block for one degree triple, float64 numpy, read-only."""
    blk = _cg_block_standard(l1, l2, l3)
    if cartesian_order:
        blk = _permuted(blk, *(cartesian_permutation_for_degree(l) for l in (l1, l2, l3)))
    return _read_only(blk)


@functools.lru_cache(maxsize=None)
def clebsch_gordan_numpy(
    max_degree1: int, max_degree2: int, max_degree3: int, cartesian_order: bool = True
) -> np.ndarray:
    """Float64 numpy version of :func:`clebsch_gordan` (cached, read-only)."""
    n1, n2, n3 = (max_degree1 + 1) ** 2, (max_degree2 + 1) ** 2, (max_degree3 + 1) ** 2
    cg = np.zeros((n1, n2, n3))
    for l1 in range(max_degree1 + 1):
        for l2 in range(max_degree2 + 1):
            for l3 in range(abs(l1 - l2), min(l1 + l2, max_degree3) + 1):
                cg[l1 * l1 : (l1 + 1) ** 2, l2 * l2 : (l2 + 1) ** 2, l3 * l3 : (l3 + 1) ** 2] = (
                    _cg_block_standard(l1, l2, l3)
                )
    if cartesian_order:
        cg = _permuted(cg, *(cartesian_permutation(l) for l in (max_degree1, max_degree2, max_degree3)))
    return _read_only(cg)


def _as_jax(a: np.ndarray) -> Array:
    with jax.ensure_compile_time_eval():
        return jnp.asarray(a, dtype=jnp.result_type(float))


def clebsch_gordan(
    max_degree1: int,
    max_degree2: int,
    max_degree3: int,
    cartesian_order: bool = Config.cartesian_order,
) -> Float[Array, " ({max_degree1}+1)**2 ({max_degree2}+1)**2 ({max_degree3}+1)**2"]:
    r"""Clebsch-Gordan coefficients for coupling all degrees at once (e3x's layout).

    Entry ``[l1*l1 + i1, l2*l2 + i2, l3*l3 + i3]`` couples order ``i1`` of degree ``l1`` and order
    ``i2`` of degree ``l2`` into order ``i3`` of degree ``l3``, for real spherical harmonics.

    Arguments:
        max_degree1: Maximum degree of the first factor (``>= 0``).
        max_degree2: Maximum degree of the second factor (``>= 0``).
        max_degree3: Maximum degree of the tensor product (``>= 0``).
        cartesian_order: If ``True`` (default), orders follow e3x's Cartesian order
            (degree 1 is ``x, y, z``); otherwise the standard ``m = -l..l`` order.

    Returns:
        Array of shape ``((max_degree1+1)**2, (max_degree2+1)**2, (max_degree3+1)**2)`` in JAX's
        default float dtype (float64 when x64 is enabled).

    Raises:
        ValueError: If any degree is negative.

    Example:
        >>> cg = clebsch_gordan(1, 1, 2)
        >>> cg.shape
        (4, 4, 9)
    """
    max_degree1 = check_degree(max_degree1, "max_degree1")
    max_degree2 = check_degree(max_degree2, "max_degree2")
    max_degree3 = check_degree(max_degree3, "max_degree3")
    return _as_jax(clebsch_gordan_numpy(max_degree1, max_degree2, max_degree3, bool(cartesian_order)))


def clebsch_gordan_for_degrees(
    degree1: int, degree2: int, degree3: int, cartesian_order: bool = Config.cartesian_order
) -> Float[Array, "2*{degree1}+1 ..."]:
    """Clebsch-Gordan coefficients for one degree triple only.

    Arguments:
        degree1: Degree of the first factor.
        degree2: Degree of the second factor.
        degree3: Degree of the tensor product.
        cartesian_order: If ``True`` (default), Cartesian order is assumed.

    Returns:
        Array of shape ``(2*degree1+1, 2*degree2+1, 2*degree3+1)``.

    Raises:
        ValueError: If any degree is negative.
    """
    degree1 = check_degree(degree1, "degree1")
    degree2 = check_degree(degree2, "degree2")
    degree3 = check_degree(degree3, "degree3")
    return _as_jax(cg_block(degree1, degree2, degree3, bool(cartesian_order)))
