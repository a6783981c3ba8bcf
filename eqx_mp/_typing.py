"""Shape strings, the one runtime type-checking decorator, and explicit layout checks.

Every public function and module call in eqx_mp is wrapped by :func:`typecheck`, which is
``jaxtyping.jaxtyped(typechecker=beartype)``. Shape strings use the module's own static
fields, e.g. ``Float[Array, "... N {self.in_parity} ({self.in_max_degree}+1)**2 F"]``.

jaxtyping's own error shows the whole shape but not *which* axis is wrong, so public entry
points first run the small explicit checks below (:func:`check_irreps` and friends). They raise
:class:`ShapeError` with the argument name, the axis, and the expected vs actual size. All checks
run at trace time and therefore cost nothing under ``jit``. Set ``JAXTYPING_DISABLE=1`` to turn
off the jaxtyping/beartype layer; the explicit checks stay on (they are what keeps bad input
from failing deep inside XLA).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, Union

import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jaxtyping import Array, Bool, Float, Integer, TypeCheckError, jaxtyped

__all__ = [
    "Array",
    "AnyArray",
    "Bool",
    "Float",
    "Integer",
    "ShapeError",
    "typecheck",
    "check_irreps",
    "check_degree",
    "check_parity",
    "check_index_array",
    "num_irreps",
    "degree_from_size",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Array type accepted at public call boundaries: a JAX array or a NumPy array (NumPy inputs are
#: converted by the first ``jnp`` operation, as in e3x). Use as ``Float[AnyArray, "..."]``.
AnyArray = Union[Array, np.ndarray]


class ShapeError(TypeCheckError, ValueError):
    """A wrong shape, dtype or layout at a public call.

    Subclasses jaxtyping's ``TypeCheckError`` (itself a ``TypeError``) *and* ``ValueError`` so
    that code catching any of the three sees it.
    """


def typecheck(fn: _F | None = None, *, precheck: Callable[..., None] | None = None) -> Any:
    """Runtime-check ``fn``'s jaxtyping annotations with beartype (the one place we do so).

    Use as ``@typecheck`` or ``@typecheck(precheck=f)``. ``precheck`` is called with the same
    arguments *before* the jaxtyping/beartype check; it runs the explicit checks that name the
    offending axis (jaxtyping's own message shows only the whole shape). The precheck runs even
    when ``JAXTYPING_DISABLE=1``: it is what keeps bad input from failing deep inside XLA.
    """
    if fn is None:
        return functools.partial(typecheck, precheck=precheck)
    checked = jaxtyped(typechecker=beartype)(fn)
    if precheck is None:
        return checked

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        precheck(*args, **kwargs)
        return checked(*args, **kwargs)

    return wrapper


def num_irreps(max_degree: int) -> int:
    """``(max_degree + 1) ** 2``: the size of the degree axis for degrees ``0..max_degree``."""
    return (max_degree + 1) ** 2


def degree_from_size(size: int, name: str = "array", axis: int = -2) -> int:
    """Inverse of :func:`num_irreps`; raises :class:`ShapeError` if ``size`` is not a square."""
    root = int(round(np.sqrt(size)))
    if size < 1 or root * root != size:
        raise ShapeError(
            f"{name}: axis {axis} must have size (L+1)**2 for some max degree L >= 0, "
            f"got size {size}"
        )
    return root - 1


def check_degree(value: int, name: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """Check that a degree argument is an ``int`` in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_parity(value: int, name: str) -> int:
    """Check that a parity-axis size is 1 (no pseudotensors) or 2 (both parities)."""
    if isinstance(value, bool) or value not in (1, 2):
        raise ValueError(
            f"{name} must be 1 (no pseudotensors) or 2 (tensors and pseudotensors), got {value!r}"
        )
    return int(value)


def _check_float(x: Any, name: str) -> None:
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ShapeError(f"{name} must be a JAX/NumPy array, got {type(x).__name__}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ShapeError(f"{name} must have a floating-point dtype, got {x.dtype}")


def check_irreps(
    x: Any,
    name: str,
    *,
    parity: int | Sequence[int] | None = None,
    max_degree: int | None = None,
    features: int | None = None,
    min_ndim: int = 3,
    what: str = "",
) -> None:
    """Check that ``x`` has the e3x feature layout ``... P (L+1)**2 F``.

    Arguments:
        x: The array to check.
        name: Argument name used in the message.
        parity: Expected size(s) of axis -3 (1 or 2), or ``None`` to accept 1 and 2.
        max_degree: Expected max degree ``L`` (axis -2 must be ``(L+1)**2``), or ``None``.
        features: Expected size of axis -1, or ``None``.
        min_ndim: Minimum number of dimensions (e.g. 4 for ``... N P (L+1)**2 F``).
        what: Extra context appended to the message (e.g. ``"(in_parity=2)"``).

    Raises:
        ShapeError: naming the argument, the axis, the expected and the actual size.
    """
    _check_float(x, name)
    shape = tuple(x.shape)
    if len(shape) < min_ndim:
        raise ShapeError(
            f"{name} must have at least {min_ndim} dimensions (layout '... P (L+1)**2 F'), "
            f"got shape {shape}"
        )
    p = shape[-3]
    allowed = (1, 2) if parity is None else ((parity,) if isinstance(parity, int) else parity)
    if p not in allowed:
        exp = " or ".join(str(a) for a in allowed)
        raise ShapeError(
            f"{name}: axis -3 (parity) has size {p}, expected {exp} {what}; shape {shape}".replace(
                "  ", " "
            )
        )
    if max_degree is not None:
        if shape[-2] != num_irreps(max_degree):
            raise ShapeError(
                f"{name}: axis -2 ((max_degree+1)**2) has size {shape[-2]}, expected "
                f"{num_irreps(max_degree)} for max_degree={max_degree} {what}; shape {shape}"
            )
    else:
        degree_from_size(shape[-2], name)
    if features is not None and shape[-1] != features:
        raise ShapeError(
            f"{name}: axis -1 (features) has size {shape[-1]}, expected {features} {what}; "
            f"shape {shape}"
        )


def check_index_array(idx: Any, name: str, *, min_ndim: int = 1) -> None:
    """Check that ``idx`` is an integer array with at least ``min_ndim`` dimensions."""
    if not hasattr(idx, "shape") or not hasattr(idx, "dtype"):
        raise ShapeError(f"{name} must be an integer array, got {type(idx).__name__}")
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise ShapeError(f"{name} must have an integer dtype, got {idx.dtype}")
    if idx.ndim < min_ndim:
        raise ShapeError(f"{name} must have at least {min_ndim} dimensions, got shape {idx.shape}")


def check_same(a: tuple, b: tuple, what: str) -> None:
    """Raise :class:`ShapeError` if two shape tuples differ (``what`` describes them)."""
    if tuple(a) != tuple(b):
        raise ShapeError(f"{what}: {tuple(a)} != {tuple(b)}")


@functools.lru_cache(maxsize=None)
def _irrep_degrees(max_degree: int) -> np.ndarray:
    """``[0, 1, 1, 1, 2, ...]``: the degree of each entry along a ``(L+1)**2`` axis."""
    return np.repeat(np.arange(max_degree + 1), 2 * np.arange(max_degree + 1) + 1)
