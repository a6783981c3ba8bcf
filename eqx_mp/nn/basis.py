"""Radial-angular basis functions for message passing (e3x's ``basis`` and ``ExponentialBasis``).

``basis(r, ...)`` maps displacement vectors ``r`` of shape ``(*batch, 3)`` to features of shape
``(*batch, 1, (max_degree+1)**2, num)``: the product of ``num`` radial functions of ``|r|`` and the
spherical harmonics of ``r/|r|`` (optionally times a cutoff, with the non-scalar part damped).
Norms are computed safely, so gradients are finite at ``r = 0`` (e.g. padded pairs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Optional, Union

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import ShapeError, check_degree, check_num, check_trailing, typecheck
from ..config import Config
from ..ops.safe import norm as safe_norm
from ..so3 import spherical_harmonics

__all__ = ["basis", "ExponentialBasis"]

#: e3x's default angular function: Racah-normalised spherical harmonics of unit vectors.
_default_angular_fn = functools.partial(
    spherical_harmonics, r_is_normalized=True, normalization="racah"
)

BasisOut = Float[Array, "*batch 1 ({max_degree}+1)**2 {num}"]


def _basis_precheck(
    r: Any, *, max_degree: Any, num: Any, radial_fn: Any, cutoff_fn: Any, return_cutoff: bool,
    **_: Any,
) -> None:
    # e3x's order: the shape of r, then return_cutoff without cutoff_fn (e3x checks nothing
    # else up front), then eqx_mp's own checks, so a call that e3x refuses is refused here with
    # e3x's error even when it has other problems (e.g. num=0 and return_cutoff=True).
    check_trailing(r, "r", (3,), "(..., 3)")
    if return_cutoff and cutoff_fn is None:
        raise ValueError("return_cutoff is True, but no cutoff_fn was specified")
    check_degree(max_degree, "max_degree")
    check_num(num)
    if not callable(radial_fn):
        raise TypeError(f"radial_fn must be callable, got {type(radial_fn).__name__}")


@typecheck(precheck=_basis_precheck)
def basis(
    r: Union[Float[Array, "*batch 3"], Float[np.ndarray, "*batch 3"]],
    *,
    max_degree: int,
    num: int,
    radial_fn: Callable[..., Any],
    angular_fn: Callable[..., Any] = _default_angular_fn,
    cutoff_fn: Optional[Callable[..., Any]] = None,
    return_cutoff: bool = False,
    return_norm: bool = False,
    damping_fn: Optional[Callable[..., Any]] = None,
    cartesian_order: bool = Config.cartesian_order,
    radial_kwargs: Optional[dict] = None,
    angular_kwargs: Optional[dict] = None,
) -> Union[
    BasisOut,
    tuple[BasisOut, Float[Array, "*batch"]],
    tuple[BasisOut, Float[Array, "*batch"], Float[Array, "*batch"]],
]:
    r"""Radial-angular basis functions of displacement vectors (e3x's ``basis``).

    .. math::
        B_{\ell m k}(\vec r) = Y_\ell^m(\hat r)\, g_k(\lVert\vec r\rVert)\, c(\lVert\vec r\rVert)
        \,[d(\lVert\vec r\rVert) \text{ if } \ell > 0]

    with radial functions :math:`g_k` (``radial_fn``), optional cutoff :math:`c` and optional
    damping :math:`d` of the non-scalar part. The norm is computed safely: at ``r = 0`` the
    value is finite and so is every gradient (``Y`` of the zero vector is used, which is
    :math:`1` for :math:`\ell = 0` and :math:`0` otherwise).

    Arguments:
        r: Displacement vectors, shape ``(*batch, 3)``, floating point.
        max_degree: Maximum degree :math:`L \ge 0` of the spherical harmonics.
        num: Number of radial functions :math:`K \ge 1`.
        radial_fn: ``radial_fn(norm, num, **radial_kwargs) -> (*batch, num)``, e.g.
            ``functools.partial(eqx_mp.nn.reciprocal_bernstein, kind='damped')``.
        angular_fn: ``angular_fn(r=unit_vectors, max_degree=L, cartesian_order=...,
            **angular_kwargs) -> (*batch, (L+1)**2)``; default: Racah-normalised
            :func:`eqx_mp.so3.spherical_harmonics` of the unit vectors (as in e3x).
        cutoff_fn: Optional ``cutoff_fn(norm) -> (*batch,)`` multiplied into every function.
        return_cutoff: Also return the cutoff values (requires ``cutoff_fn``).
        return_norm: Also return the norms ``|r|``.
        damping_fn: Optional ``damping_fn(norm) -> (*batch,)`` multiplied into all ``l > 0``
            functions (e.g. :func:`eqx_mp.nn.smooth_damping`).
        cartesian_order: Order of the spherical harmonics (e3x's default ``True``).
        radial_kwargs: Extra keyword arguments for ``radial_fn`` (an eqx_mp addition;
            ``functools.partial`` works as in e3x).
        angular_kwargs: Extra keyword arguments for ``angular_fn`` (an eqx_mp addition).

    Returns:
        ``out`` of shape ``(*batch, 1, (max_degree+1)**2, num)``; or ``(out, cutoff)``,
        ``(out, norm)`` or ``(out, cutoff, norm)`` (each of shape ``*batch``) when
        ``return_cutoff`` / ``return_norm`` are set.

    Raises:
        ShapeError: If ``r`` is not a float array of shape ``(..., 3)``, or ``radial_fn``,
            ``cutoff_fn`` or ``angular_fn`` return the wrong shape.
        ValueError: If ``return_cutoff`` is set without ``cutoff_fn``, ``max_degree < 0`` or
            ``num < 1``.
    """
    u, norm = _unit_vectors_and_norms(jnp.asarray(r))
    rbf, cut = _radial(norm, num, radial_fn, radial_kwargs, cutoff_fn)
    ylm = _angular(u, norm, max_degree, angular_fn, cartesian_order, angular_kwargs)
    out = jnp.expand_dims(ylm, axis=-1) * jnp.expand_dims(rbf, axis=-2)
    if damping_fn is not None:
        damping_values = jnp.expand_dims(damping_fn(norm), axis=(-2, -1))
        out = out.at[..., 1:, :].multiply(damping_values)
    out = jnp.expand_dims(out, axis=-3)
    if return_cutoff and return_norm:  # (return_cutoff without cutoff_fn raised up front)
        return out, cut, norm
    if return_cutoff:
        return out, cut
    return (out, norm) if return_norm else out


def _angular(u: Array, norm: Array, max_degree: int, angular_fn: Callable[..., Any],
             cartesian_order: bool, angular_kwargs: Optional[dict]) -> Array:
    """``angular_fn`` of the unit vectors, its shape checked: ``(*batch, (max_degree+1)**2)``."""
    ylm = angular_fn(
        r=u, max_degree=max_degree, cartesian_order=cartesian_order, **(angular_kwargs or {})
    )
    expected = (*norm.shape, (max_degree + 1) ** 2)
    if tuple(ylm.shape) != expected:
        raise ShapeError(
            f"angular_fn returned shape {tuple(ylm.shape)}, expected {expected} "
            f"(batch shape of r, then (max_degree+1)**2 for max_degree={max_degree})"
        )
    return ylm


def _unit_vectors_and_norms(r: Array) -> tuple[Array, Array]:
    """``r / |r|`` (0 for ``r = 0``) and ``|r|``, with finite derivatives everywhere."""
    # Unit vectors from the per-vector rescaled b = r / a (a = largest |component|, held constant:
    # b / |b| = r / |r| for any a > 0, so the derivative is exact). |b| is in [1, sqrt(3)], so the
    # derivative never forms 1/|r|**2, which overflows float32 for |r| ~ 1e-20.
    a = jax.lax.stop_gradient(jnp.max(jnp.abs(r), axis=-1, keepdims=True))
    a = jnp.where(a > 0, a, 1)
    b = r / a
    nb = safe_norm(b, axis=-1, keepdims=True)
    return b / jnp.where(nb > 0, nb, 1), (a * nb).squeeze(-1)


def _radial(
    norm: Array, num: int, radial_fn: Callable[..., Any], radial_kwargs: Optional[dict],
    cutoff_fn: Optional[Callable[..., Any]],
) -> tuple[Array, Array]:
    """The radial functions (times the cutoff) ``(*batch, num)`` and the cutoff ``*batch``."""
    batch = norm.shape
    rbf = radial_fn(norm, num, **(radial_kwargs or {}))
    if tuple(rbf.shape) != (*batch, num):
        raise ShapeError(
            f"radial_fn returned shape {tuple(rbf.shape)}, expected {(*batch, num)} "
            f"(the shape of |r| with num={num} appended)"
        )
    if cutoff_fn is None:
        return rbf, jnp.ones_like(norm)
    cut = cutoff_fn(norm)
    if tuple(cut.shape) != batch:
        raise ShapeError(
            f"cutoff_fn returned shape {tuple(cut.shape)}, expected {batch} (the shape of |r|)"
        )
    return rbf * jnp.expand_dims(cut, axis=-1), cut


def _inverse_softplus(x: Array) -> Array:
    return x + jnp.log(-jnp.expm1(-x))


class ExponentialBasis(eqx.Module):
    """:func:`basis` with a learnable decay constant ``gamma`` for exponential radial functions.

    ``radial_fn`` (e.g. :func:`eqx_mp.nn.exponential_bernstein`) is called with
    ``gamma=softplus(self.gamma)``, so the effective ``gamma`` stays positive during training.
    Same parameter as e3x's ``ExponentialBasis`` (``gamma``, stored before the softplus).

    Arguments:
        initial_gamma: Initial (positive) value of the effective ``gamma``.
        param_dtype: dtype of the parameter (default ``float32``, as in e3x).
        key: Unused (no randomness); accepted, keyword-only, for a uniform constructor.

    Attributes:
        gamma: 0-d parameter, ``inverse_softplus(initial_gamma)``.
    """

    gamma: Float[Array, ""]

    def __init__(
        self,
        initial_gamma: float = 1.0,
        param_dtype: Any = jnp.float32,
        *,
        key: Optional[Array] = None,
    ):
        if not float(initial_gamma) > 0.0:
            raise ValueError(f"initial_gamma must be positive, got {initial_gamma}")
        self.gamma = _inverse_softplus(jnp.asarray(initial_gamma, dtype=param_dtype))

    def __check_init__(self) -> None:
        if jnp.ndim(self.gamma) != 0:
            raise ShapeError(f"ExponentialBasis.gamma must be 0-d, got shape {jnp.shape(self.gamma)}")

    def __call__(
        self,
        r: Union[Float[Array, "*batch 3"], Float[np.ndarray, "*batch 3"]],
        *,
        max_degree: int,
        num: int,
        radial_fn: Callable[..., Any],
        **kwargs: Any,
    ) -> Union[
        BasisOut,
        tuple[BasisOut, Float[Array, "*batch"]],
        tuple[BasisOut, Float[Array, "*batch"], Float[Array, "*batch"]],
    ]:
        """Evaluate :func:`basis` with ``radial_fn(..., gamma=softplus(self.gamma))``.

        Arguments:
            r: Displacement vectors, shape ``(*batch, 3)``.
            max_degree: Maximum degree of the spherical harmonics.
            num: Number of radial functions.
            radial_fn: A radial function taking a ``gamma`` keyword argument.
            **kwargs: Any other keyword argument of :func:`basis`.

        Returns:
            As :func:`basis`: ``(*batch, 1, (max_degree+1)**2, num)`` (plus cutoff/norm if asked).
        """
        if not callable(radial_fn):
            raise TypeError(f"radial_fn must be callable, got {type(radial_fn).__name__}")
        gamma = jax.nn.softplus(self.gamma)
        return basis(
            r,
            max_degree=max_degree,
            num=num,
            radial_fn=functools.partial(radial_fn, gamma=gamma),
            **kwargs,
        )
