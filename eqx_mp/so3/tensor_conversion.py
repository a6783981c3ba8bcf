r"""Traceless symmetric Cartesian tensors <-> irreps (e3x's ``tensor_to_irreps``,
``irreps_to_tensor`` and ``is_traceless_symmetric``).

A traceless symmetric tensor of degree :math:`\ell` (shape ``(3,)*l``) has :math:`2\ell+1`
independent components, exactly as many as the irreps of degree :math:`\ell`, and both are linear
images of each other. The tensor of a unit vector :math:`\vec{r}` is the detraced outer power
:math:`\mathcal{T}_\ell\,\vec{r}^{\otimes\ell}` (Applequist 1989, Eq. 5.1, scaled to be a
projection), and its irreps are the spherical harmonics :math:`Y_\ell^m(\vec{r})`, so

``tensor_to_irreps(T(r), l) == spherical_harmonics(r, l)[..., l*l:(l+1)**2]``.

The conversion matrices are derived here: the components of :math:`\mathcal{T}_\ell\,
\vec{r}^{\otimes\ell}` as exact rational polynomials in ``x, y, z``, written in the basis of the
harmonic polynomials :math:`Y_\ell^m` by a float64 least-squares solve (the system is exactly
consistent), cached per degree. Tensors are handled in "compressed" form internally: the
:math:`(\ell+1)(\ell+2)/2` entries with sorted multi-indices.
"""

from __future__ import annotations

import functools
import itertools
import math
from fractions import Fraction
from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import Normalization, as_inexact, check_degree, check_normalization
from ..config import Config
from ._common import cartesian_permutation_for_degree
from ._normalization import normalization_constant
from .harmonics import _racah_polynomial

__all__ = ["tensor_to_irreps", "irreps_to_tensor", "is_traceless_symmetric"]

_Poly = dict  # {(a, b, c): Fraction}: the monomial x**a y**b z**c


@functools.lru_cache(maxsize=None)
def _compressed(degree: int) -> tuple[tuple[int, ...], ...]:
    """Sorted multi-indices ``(i1 <= i2 <= ...)`` of the independent entries (e3x's order)."""
    return tuple(itertools.combinations_with_replacement((0, 1, 2), degree))


@functools.lru_cache(maxsize=None)
def _compression_index(degree: int) -> tuple[np.ndarray, ...]:
    """Index arrays (one per tensor axis) that pick the compressed entries of a full tensor."""
    rows = np.asarray(_compressed(degree), dtype=np.int64).reshape(-1, degree)
    return tuple(rows[:, k] for k in range(degree))


@functools.lru_cache(maxsize=None)
def _expansion_index(degree: int) -> np.ndarray:
    """For each entry of the full tensor (row-major), the position of its compressed entry."""
    position = {idx: i for i, idx in enumerate(_compressed(degree))}
    return np.asarray(
        [position[tuple(sorted(idx))] for idx in itertools.product((0, 1, 2), repeat=degree)],
        dtype=np.int64,
    )


def _double_factorial(n: int) -> int:
    return math.prod(range(n, 0, -2)) if n > 0 else 1


def _pairings(values: tuple[int, ...]) -> int:
    """Sum over perfect matchings of ``values`` of the product of Kronecker deltas."""
    counts = [values.count(v) for v in set(values)]
    if any(c % 2 for c in counts):
        return 0
    return math.prod(_double_factorial(c - 1) for c in counts)


def _traceless_component(alphas: tuple[int, ...]) -> _Poly:
    r"""Component ``alphas`` of :math:`\mathcal{T}_n \vec{r}^{\otimes n}` as a polynomial.

    :math:`\sum_m (-1)^m \frac{(2n-1-2m)!!}{(2n-1)!!} \sum_{|S|=2m} \delta(\alpha_S)\, r^{2m}
    \prod_{i\notin S} r_{\alpha_i}`, the sum over subsets ``S`` of ``2m`` index positions.
    """
    n = len(alphas)
    out: _Poly = {}
    for m in range(n // 2 + 1):
        ratio = Fraction(
            (-1) ** m * _double_factorial(2 * n - 1 - 2 * m), _double_factorial(2 * n - 1)
        )
        for chosen in itertools.combinations(range(n), 2 * m):
            weight = _pairings(tuple(alphas[i] for i in chosen))
            if weight == 0:
                continue
            rest = [0, 0, 0]
            for i in range(n):
                if i not in chosen:
                    rest[alphas[i]] += 1
            # (x^2 + y^2 + z^2)^m expanded by the multinomial theorem.
            for i in range(m + 1):
                for j in range(m + 1 - i):
                    k = m - i - j
                    c = Fraction(
                        math.factorial(m), math.factorial(i) * math.factorial(j) * math.factorial(k)
                    )
                    key = (rest[0] + 2 * i, rest[1] + 2 * j, rest[2] + 2 * k)
                    out[key] = out.get(key, Fraction(0)) + ratio * weight * c
    return {key: v for key, v in out.items() if v != 0}


@functools.lru_cache(maxsize=None)
def _conversion_matrices(degree: int) -> tuple[np.ndarray, np.ndarray]:
    """``(s2t, t2s)``: float64 ``(2l+1, C)`` and ``(C, 2l+1)``, Racah normalisation, standard order
    ``m = -l..l``, ``C = (l+1)(l+2)/2`` compressed tensor entries. ``t2s`` is the pseudo-inverse."""
    monomials = [
        (a, b, degree - a - b) for a in range(degree, -1, -1) for b in range(degree - a, -1, -1)
    ]
    row = {mono: i for i, mono in enumerate(monomials)}
    m2s = np.zeros((len(monomials), 2 * degree + 1))
    for m in range(-degree, degree + 1):
        for mono, value in _racah_polynomial(degree, m):
            m2s[row[mono], m + degree] = value
    m2t = np.zeros((len(monomials), len(_compressed(degree))))
    for i, alphas in enumerate(_compressed(degree)):
        for mono, value in _traceless_component(alphas).items():
            m2t[row[mono], i] = float(value)
    s2t = np.linalg.lstsq(m2s, m2t, rcond=None)[0]
    t2s = s2t.T @ np.linalg.inv(s2t @ s2t.T)
    for a in (s2t, t2s):
        a.setflags(write=False)
    return s2t, t2s


def _tensor_shape_error(x: Any, degree: int) -> None:
    if x.ndim == 0:
        raise ValueError("input must be a multi-dimensional array")
    if degree == 0:
        if x.shape[-1] != 1:
            raise ValueError(
                "input (assumed to be a tensor of degree 0) must have shape (..., 1), received "
                f"shape {x.shape}"
            )
    elif x.shape[-degree:] != (3,) * degree:
        raise ValueError(
            f"input (assumed to be a tensor of degree {degree}) must have shape "
            f"(..., {', '.join(('3',) * degree)}), received shape {x.shape}"
        )


def is_traceless_symmetric(
    x: Float[ArrayLike, "..."], degree: int, rtol: float = 1e-5, atol: float = 1e-5
) -> bool:
    """Whether ``x`` is (within tolerances) a traceless symmetric tensor of ``degree``.

    Checks every transposition of the last ``degree`` axes and one trace (for symmetric
    tensors all traces are equal) with ``jnp.allclose``. Scalars (degree 0) and vectors
    (degree 1) are always traceless symmetric. Needs concrete values (not usable under ``jit``).

    Arguments:
        x: Tensor(s) of shape ``(..., 3, ..., 3)`` (``degree`` axes of size 3), or ``(..., 1)``
            for degree 0.
        degree: Degree (rank) ``l >= 0`` of the tensor.
        rtol: Relative tolerance of ``jnp.allclose``.
        atol: Absolute tolerance of ``jnp.allclose``.

    Returns:
        ``True`` if every tensor in the batch is symmetric and traceless, else ``False``.

    Raises:
        ValueError: If ``degree < 0`` or the shape of ``x`` does not fit ``degree`` (e3x's
            messages).

    Example:
        >>> import jax.numpy as jnp, eqx_mp
        >>> eqx_mp.so3.is_traceless_symmetric(jnp.diag(jnp.array([1.0, -1.0, 0.0])), 2)
        True
    """
    check_degree(degree)
    x = as_inexact(x)
    _tensor_shape_error(x, degree)
    if degree < 2:
        return True
    batch = tuple(range(x.ndim - degree))
    for perm in itertools.permutations(range(x.ndim - degree, x.ndim)):
        if not bool(jnp.allclose(x, jnp.transpose(x, (*batch, *perm)), rtol=rtol, atol=atol)):
            return False
    return bool(jnp.allclose(jnp.trace(x, axis1=-2, axis2=-1), 0, rtol=rtol, atol=atol))


def tensor_to_irreps(
    x: Float[ArrayLike, "..."],
    degree: int,
    cartesian_order: bool = Config.cartesian_order,
    normalization: Normalization = Config.normalization,
) -> Float[Array, "... 2*degree+1"]:
    r"""Irreps (``2l+1`` components) of traceless symmetric tensors of degree ``l``.

    The inverse of :func:`irreps_to_tensor`. Symmetry and tracelessness are not checked (that is
    incompatible with ``jit``); for other tensors the result is meaningless, so check with
    :func:`is_traceless_symmetric` when in doubt. Only the entries with sorted multi-indices
    are read.

    Arguments:
        x: Tensors of shape ``(..., 3, ..., 3)`` (``degree`` trailing axes of size 3), or
            ``(..., 1)`` for degree 0. Integer arrays are promoted to float.
        degree: Degree ``l >= 0``.
        cartesian_order: Order of the returned components (see
            :func:`~eqx_mp.so3.spherical_harmonics`).
        normalization: Normalisation of the irreps (``'racah'``, ``'schmidt'``, ``'4pi'`` or
            ``'orthonormal'``): for the tensor of a unit vector ``r`` the result is
            ``spherical_harmonics(r, l, normalization=...)``'s degree-``l`` block.

    Returns:
        Array of shape ``(..., 2*degree+1)``.

    Raises:
        ValueError: If ``degree < 0``, ``x``'s shape does not fit ``degree``, or
            ``normalization`` is unknown (e3x's messages).

    Example:
        >>> import jax.numpy as jnp, eqx_mp
        >>> r = jnp.array([0.0, 0.0, 1.0])
        >>> t = jnp.outer(r, r) - jnp.eye(3) / 3          # detraced r (x) r
        >>> y = eqx_mp.so3.tensor_to_irreps(t, 2)
        >>> bool(jnp.allclose(y, eqx_mp.so3.spherical_harmonics(r, 2)[4:], atol=1e-6))
        True
    """
    degree = check_degree(degree)
    x = as_inexact(x)
    _tensor_shape_error(x, degree)
    check_normalization(normalization)
    t2s = _conversion_matrices(degree)[1] * normalization_constant(normalization, degree)
    if cartesian_order:
        t2s = t2s[:, cartesian_permutation_for_degree(degree)]
    compressed = x[(..., *_compression_index(degree))] if degree else x
    return jnp.matmul(compressed, jnp.asarray(t2s, dtype=x.dtype))


def irreps_to_tensor(
    x: Float[ArrayLike, "... 2*degree+1"],
    degree: int,
    cartesian_order: bool = Config.cartesian_order,
    normalization: Normalization = Config.normalization,
) -> Float[Array, "..."]:
    r"""Traceless symmetric tensors of degree ``l`` from irreps (``2l+1`` components).

    Arguments:
        x: Irreps of shape ``(..., 2*degree+1)`` (integer arrays are promoted to float).
        degree: Degree ``l >= 0``.
        cartesian_order: Order of the components of ``x`` (see
            :func:`~eqx_mp.so3.spherical_harmonics`).
        normalization: Normalisation of ``x`` (see :func:`tensor_to_irreps`).

    Returns:
        Array of shape ``(..., 3, ..., 3)`` (``degree`` axes of size 3), or ``(..., 1)`` for
        degree 0: symmetric and traceless.

    Raises:
        ValueError: If ``degree < 0``, the last axis of ``x`` is not ``2*degree+1``, or
            ``normalization`` is unknown (e3x's messages).

    Example:
        >>> import jax.numpy as jnp, eqx_mp
        >>> t = eqx_mp.so3.irreps_to_tensor(jnp.array([0.0, 0.0, 0.0, 0.0, 1.0]), 2)
        >>> bool(jnp.allclose(t, jnp.diag(jnp.array([-1.0, -1.0, 2.0])) / 3))
        True
    """
    degree = check_degree(degree)
    x = as_inexact(x)
    if x.ndim == 0 or x.shape[-1] != 2 * degree + 1:
        raise ValueError(
            f"input (assumed to correspond to irreps of degree {degree}) must have shape "
            f"(..., {2 * degree + 1}), received shape {x.shape}"
        )
    check_normalization(normalization)
    s2t = _conversion_matrices(degree)[0] / normalization_constant(normalization, degree)
    if cartesian_order:
        s2t = s2t[cartesian_permutation_for_degree(degree), :]
    y = jnp.matmul(x, jnp.asarray(s2t, dtype=x.dtype))[..., _expansion_index(degree)]
    return y.reshape(*y.shape[:-1], *((1,) if degree == 0 else (3,) * degree))
