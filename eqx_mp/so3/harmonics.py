r"""Real spherical and solid harmonics as homogeneous polynomials in ``x, y, z`` (e3x's layout).

The coefficients of every :math:`Y_\ell^m` in the Cartesian monomials :math:`x^a y^b z^c`
(:math:`a+b+c=\ell`) are derived here in exact rational arithmetic (each coefficient is a rational
number times the square root of a rational number), rounded once to float64 and cached per
``(max_degree, normalization, cartesian_order)``. Evaluation is then: integer powers of the
coordinates, their products for all monomials, and each polynomial's sum of nonzero terms (a
matmul with the coefficient table above degree :data:`SPARSE_MAX_DEGREE`).
Nothing here imports e3x or sympy.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Real

from .._checks import (
    Normalization,
    as_inexact,
    check_degree,
    check_normalization,
    check_trailing,
    typecheck,
)
from ..config import Config
from ..ops.safe import normalize
from ._common import cartesian_permutation
from ._normalization import normalization_constant

__all__ = ["spherical_harmonics", "solid_harmonics"]

_Poly = dict  # {(a, b, c): Fraction} for the monomial x**a y**b z**c


def _poly_mul(p: _Poly, q: _Poly) -> _Poly:
    out: _Poly = {}
    for (a1, b1, c1), u in p.items():
        for (a2, b2, c2), v in q.items():
            key = (a1 + a2, b1 + b2, c1 + c2)
            out[key] = out.get(key, Fraction(0)) + u * v
    return {k: v for k, v in out.items() if v != 0}


def _r2_power(k: int) -> _Poly:
    """``(x**2 + y**2 + z**2)**k`` expanded (multinomial theorem)."""
    f = math.factorial
    out: _Poly = {}
    for i in range(k + 1):
        for j in range(k + 1 - i):
            n = k - i - j
            out[(2 * i, 2 * j, 2 * n)] = Fraction(f(k), f(i) * f(j) * f(n))
    return out


@functools.lru_cache(maxsize=None)
def _racah_polynomial(l: int, m: int) -> tuple[tuple[tuple[int, int, int], float], ...]:
    r"""Float64 coefficients of the Racah-normalized real harmonic :math:`Y_l^m` (m=-l..l).

    :math:`Y_l^m = \sqrt{S}\,\Pi_l^{|m|}(z)\,\{A,B\}_{|m|}(x, y)` with ``S = 2 (l-|m|)!/(l+|m|)!``
    for ``m != 0`` and ``S = 1`` for ``m = 0``; ``B_m`` (cosine, ``m > 0``) and ``A_m`` (sine,
    ``m < 0``) as in e3x's documentation. The rational part is exact; each coefficient
    ``q * sqrt(S)`` is rounded once as ``sign(q) * sqrt(q**2 * S)``.
    """
    f = math.factorial
    am = abs(m)
    # Pi_l^{|m|}(z) without the square root, as a polynomial in x, y, z (r**2 expanded).
    pi: _Poly = {}
    for k in range((l - am) // 2 + 1):
        c = Fraction(
            (-1) ** k * math.comb(l, k) * math.comb(2 * l - 2 * k, l) * f(l - 2 * k),
            f(l - 2 * k - am) * 2**l,
        )
        term = _poly_mul({(0, 0, l - 2 * k - am): c}, _r2_power(k))
        for key, v in term.items():
            pi[key] = pi.get(key, Fraction(0)) + v
    # A (sine, m < 0) or B (cosine, m >= 0) part in x, y.
    ab: _Poly = {}
    for p in range(am + 1):
        q = am - p
        if m >= 0 and q % 2 == 0:
            ab[(p, q, 0)] = Fraction(math.comb(am, p) * (-1) ** (q // 2))
        elif m < 0 and q % 2 == 1:
            ab[(p, q, 0)] = Fraction(math.comb(am, p) * (-1) ** ((q - 1) // 2))
    poly = _poly_mul(pi, ab)
    s = Fraction(1) if m == 0 else Fraction(2 * f(l - am), f(l + am))
    out = []
    for key in sorted(poly):
        q = poly[key]
        out.append((key, math.copysign(math.sqrt(float(q * q * s)), q)))
    return tuple(out)


@functools.lru_cache(maxsize=None)
def monomial_powers(max_degree: int) -> np.ndarray:
    """Powers ``(a, b, c)`` of all monomials ``x**a y**b z**c`` with ``a+b+c <= max_degree``.

    Ordered by total degree, then descending ``a``, then descending ``b``. Shape ``(M, 3)`` with ``M = (L+1)(L+2)(L+3)/6``.
    """
    rows = [
        (a, b, l - a - b)
        for l in range(max_degree + 1)
        for a in range(l, -1, -1)
        for b in range(l - a, -1, -1)
    ]
    out = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=None)
def _racah_table(max_degree: int) -> np.ndarray:
    """``(M, (L+1)**2)`` float64 coefficients (standard order ``m=-l..l``), Racah-normalized."""
    powers = monomial_powers(max_degree)
    index = {tuple(int(v) for v in p): i for i, p in enumerate(powers)}
    table = np.zeros((len(powers), (max_degree + 1) ** 2))
    for l in range(max_degree + 1):
        for m in range(-l, l + 1):
            for key, value in _racah_polynomial(l, m):
                table[index[key], l * l + l + m] = value
    table.setflags(write=False)
    return table


@functools.lru_cache(maxsize=None)
def harmonics_table(max_degree: int, normalization: str, cartesian_order: bool) -> np.ndarray:
    """Cached float64 coefficient table ``(M, (L+1)**2)`` for the requested layout (read-only).

    Row ``i`` belongs to the monomial ``monomial_powers(max_degree)[i]``.
    """
    table = np.array(_racah_table(max_degree))
    for l in range(max_degree + 1):
        table[:, l * l : (l + 1) ** 2] *= normalization_constant(normalization, l)
    if cartesian_order:
        table = table[:, cartesian_permutation(max_degree)]
    table = np.ascontiguousarray(table)
    table.setflags(write=False)
    return table


def monomials(r: Array, max_degree: int) -> Array:
    """All monomials ``x**a y**b z**c`` with ``a+b+c <= max_degree``, in the order of
    :func:`monomial_powers`; shape ``(..., M)``.

    Integer powers by repeated multiplication (no ``**``: NaN-free gradients at 0); each
    monomial a product of static slices, stacked. No gather: the transpose of a gather is a
    scatter, which made the backward pass 2-3x slower on the CPU.
    """
    powers = [_powers(r, max_degree, k) for k in range(3)]
    return jnp.stack([_monomial(powers, p, r) for p in monomial_powers(max_degree)], axis=-1)


def _powers(r: Array, max_degree: int, k: int) -> list[Array]:
    """``[None, r_k, r_k**2, ..., r_k**max_degree]`` of coordinate ``k`` (index = power)."""
    out: list = [None, r[..., k]]
    for _ in range(max_degree - 1):
        out.append(out[-1] * out[1])
    return out[: max_degree + 1]


def _monomial(powers: list[list[Array]], exponents: np.ndarray, r: Array) -> Array:
    """``x**a y**b z**c`` from the coordinates' powers (1 for the constant monomial)."""
    factors = [powers[k][int(e)] for k, e in enumerate(exponents) if e]
    if not factors:
        return jnp.ones(r.shape[:-1], r.dtype)
    out = factors[0]
    for f in factors[1:]:
        out = out * f
    return out


#: Up to this degree, :func:`evaluate_polynomials` sums each polynomial's nonzero terms directly
#: (one fused elementwise pass forward and backward: 4-20x faster than the matmul on the CPU,
#: measured at degrees 1-4); beyond, the number of terms makes compilation slow, and the
#: monomials are multiplied with the coefficient table.
SPARSE_MAX_DEGREE = 4


def evaluate_polynomials(r: Array, max_degree: int, table: np.ndarray) -> Array:
    """``monomials(r) @ table`` (homogeneous polynomials evaluated at ``r`` as given).

    Arguments:
        r: ``(..., 3)`` points.
        max_degree: Highest total degree ``L`` of the monomials.
        table: ``(M, C)`` float64 coefficients, row ``i`` the monomial
            ``monomial_powers(max_degree)[i]``.

    Returns:
        ``(..., C)`` the ``C`` polynomials at ``r``, in ``r``'s dtype.
    """
    mono = monomials(r, max_degree)
    if max_degree > SPARSE_MAX_DEGREE:
        return jnp.matmul(mono, jnp.asarray(table, dtype=r.dtype),
                          precision=jax.lax.Precision.HIGHEST)
    columns = []
    for column in np.asarray(table).T:
        terms = [mono[..., i] if c == 1.0 else float(c) * mono[..., i]
                 for i, c in enumerate(column) if c != 0.0]
        total = terms[0] if terms else jnp.zeros(r.shape[:-1], r.dtype)
        for t in terms[1:]:
            total = total + t
        columns.append(total)
    return jnp.stack(columns, axis=-1)


def _harmonics_precheck(
    r: object, max_degree: object, r_is_normalized: object, cartesian_order: object,
    normalization: object,
) -> dict:
    check_trailing(r, "r", (3,), "(..., 3)")
    max_degree = check_degree(max_degree, "max_degree")
    check_normalization(normalization)
    return dict(max_degree=max_degree, r_is_normalized=bool(r_is_normalized),
                cartesian_order=bool(cartesian_order))


@typecheck(precheck=_harmonics_precheck)
def spherical_harmonics(
    r: Float[ArrayLike, "*batch 3"],
    max_degree: int,
    r_is_normalized: bool = False,
    cartesian_order: bool = Config.cartesian_order,
    normalization: Normalization = Config.normalization,
    # A jaxtyping shape, not a forward reference: "*batch (...)" parses as a call of `batch`.
) -> Float[Array, "*batch ({max_degree}+1)**2"]:  # pyright: ignore[reportUndefinedVariable]
    r"""Real spherical harmonics :math:`Y_\ell^m(\vec{r})` for all degrees ``0..max_degree``.

    Same definition, sign convention and layout as ``e3x.so3.spherical_harmonics``. The values
    are homogeneous polynomials of degree :math:`\ell` in the components of
    :math:`\vec{r}/\lVert\vec{r}\rVert`; with ``normalization``:

    - ``'racah'`` / ``'schmidt'`` (same thing): :math:`\int Y_\ell^m Y_{\ell'}^{m'} d\Omega
      = \frac{4\pi}{2\ell+1}\delta_{\ell\ell'}\delta_{mm'}`, so :math:`Y_0^0 = 1`;
    - ``'4pi'``: the Racah values times :math:`\sqrt{2\ell+1}` (integral :math:`4\pi`);
    - ``'orthonormal'``: the Racah values times :math:`\sqrt{(2\ell+1)/(4\pi)}`.

    Vectors with :math:`\lVert\vec{r}\rVert^2` below the dtype's ``tiny`` are not normalized
    (as in e3x), so ``r = 0`` gives :math:`Y_0^0 = \mathcal{N}_0` and zeros elsewhere, with
    finite gradients.

    Rotations: for a rotation matrix ``rot`` (row-vector convention, as in e3x),
    ``spherical_harmonics(r @ rot, L) == spherical_harmonics(r, L) @ wigner_d(rot, L)``.

    Arguments:
        r: Cartesian vectors, shape ``(..., 3)``, floating dtype.
        max_degree: Maximum degree :math:`L \ge 0`.
        r_is_normalized: If ``True``, ``r`` is used as given (the result is then the solid
            harmonic :math:`\lVert\vec{r}\rVert^\ell Y_\ell^m` times the normalization).
        cartesian_order: If ``True`` (default), each degree is ordered
            ``[Y_l^l, Y_l^{-l}, Y_l^{l-1}, ..., Y_l^0]`` (degree 1 is ``x, y, z``); otherwise
            ``[Y_l^{-l}, ..., Y_l^{l}]``.
        normalization: ``'racah'`` (default), ``'schmidt'``, ``'4pi'`` or ``'orthonormal'``.

    Returns:
        Array of shape ``(..., (max_degree+1)**2)`` with ``r``'s dtype; entry ``l*l + i`` is
        order ``i`` of degree ``l``.

    Raises:
        ShapeError: If ``r`` is not a float array or its last axis is not 3 (``ShapeError`` is a
            ``ValueError``).
        ValueError: If ``max_degree`` is negative or ``normalization`` is unknown.
        TypeError: If ``max_degree`` is not an int.
    """
    r = jnp.asarray(r)
    if not r_is_normalized:
        r = normalize(r, axis=-1)
    table = harmonics_table(max_degree, normalization, cartesian_order)
    return evaluate_polynomials(r, max_degree, table)


def solid_harmonics(
    r: Real[ArrayLike, "*batch 3"],
    max_degree: int,
    cartesian_order: bool = Config.cartesian_order,
    # A jaxtyping shape, not a forward reference: "*batch (...)" parses as a call of `batch`.
) -> Float[Array, "*batch ({max_degree}+1)**2"]:  # pyright: ignore[reportUndefinedVariable]
    r"""Real regular solid harmonics :math:`R_\ell^m(\vec{r}) = \lVert\vec{r}\rVert^\ell
    Y_\ell^m(\vec{r})` with Racah normalization (e3x's ``solid_harmonics``).

    Arguments:
        r: Cartesian vectors, shape ``(..., 3)`` (not normalized); integer arrays are promoted
            to JAX's default float, as in e3x.
        max_degree: Maximum degree :math:`L \ge 0`.
        cartesian_order: If ``True`` (default), Cartesian order (see
            :func:`spherical_harmonics`).

    Returns:
        Array of shape ``(..., (max_degree+1)**2)`` with ``r``'s dtype.

    Raises:
        ShapeError: If ``r`` is not a float array or its last axis is not 3.
        ValueError: If ``max_degree`` is negative.
    """
    check_trailing(r, "r", (3,), "(..., 3)", dtype="real")
    return spherical_harmonics(
        as_inexact(r, "r"),
        max_degree,
        r_is_normalized=True,
        cartesian_order=cartesian_order,
        normalization="racah",
    )
