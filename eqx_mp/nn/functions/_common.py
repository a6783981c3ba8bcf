"""Shared annotations and explicit argument checks for the radial and utility functions.

Every public function of this package is wrapped by :func:`checked_function`: e3x's input
handling first (``num`` and the hyper-parameters checked with e3x's exception types and messages,
``x`` promoted to float as e3x's arithmetic promotes it), then the jaxtyping + beartype layer
(:func:`eqx_mp._typing.typecheck`) checks the shape-string annotations. Both run at trace time.
:func:`checked` (an explicit precheck, then the type check) is shared with other modules.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, Union

import jax
import jax.numpy as jnp
import numpy as np

from ..._typing import Array, Float, ShapeError, typecheck

__all__ = [
    "FloatIn",
    "Scalar",
    "check_float_array",
    "check_num",
    "checked",
    "checked_function",
    "promote_input",
    "is_concrete",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: The input ``x`` after promotion (:func:`promote_input`): a floating-point JAX array of any shape;
#: ``*batch`` binds its shape. Callers may pass numbers and integer or boolean arrays.
FloatIn = Float[Array, "*batch"]

#: A scalar hyper-parameter (``limit``, ``cutoff``, ``gamma`` ...): a Python/NumPy number or a 0-d
#: floating-point array (which may be a traced value, e.g. a learnable parameter).
Scalar = Union[float, int, np.floating, np.integer, Float[Array, ""], Float[np.ndarray, ""]]


def check_float_array(x: Any, name: str) -> None:
    """Raise :class:`ShapeError` unless ``x`` is a JAX/NumPy array with a floating dtype."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ShapeError(
            f"{name} must be a floating-point JAX or NumPy array, got {type(x).__name__} {x!r}"
        )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ShapeError(
            f"{name} must have a floating-point dtype (e.g. float32), got dtype {x.dtype}"
        )


def check_num(num: Any, name: str = "num", minimum: int = 1) -> int:
    """Return ``num`` as an int ``>= minimum`` (e3x's message for too small values).

    Python/NumPy integers and integral floats (``2.0``) are accepted; anything else raises
    ``TypeError``.
    """
    if isinstance(num, (float, np.floating)) and float(num).is_integer():
        num = int(num)
    if isinstance(num, bool) or not isinstance(num, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(num).__name__} {num!r}")
    if num < minimum:
        raise ValueError(f"{name} must be greater or equal to {minimum}, received {num}")
    return int(num)


def promote_input(x: Any, name: str = "x") -> Array:
    """``x`` as a floating-point JAX array, promoted as e3x's arithmetic promotes it.

    Python numbers, booleans and integer arrays become JAX's default float (what ``x / 1.0``
    gives in e3x); floating arrays keep their dtype. Raises :class:`ShapeError` (a ``TypeError``
    and ``ValueError``) for complex or non-numeric input.
    """
    if isinstance(x, (bool, int, float, np.number)):
        x = jnp.asarray(x)
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ShapeError(
            f"{name} must be a number or a real JAX/NumPy array, got {type(x).__name__} {x!r}"
        )
    if jnp.issubdtype(x.dtype, jnp.complexfloating) or not (
        jnp.issubdtype(x.dtype, jnp.number) or x.dtype == jnp.bool_
    ):
        raise ShapeError(
            f"{name} must be real (bool, integer or floating point), got dtype {x.dtype}")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def is_concrete(value: Any) -> bool:
    """``True`` if ``value`` is not a JAX tracer (so it can be compared in Python)."""
    return not isinstance(value, jax.core.Tracer)


def checked(precheck: Callable[..., None]) -> Callable[[_F], _F]:
    """Decorator: run ``precheck(*args, **kwargs)`` first, then the typechecked function."""

    def decorator(fn: _F) -> _F:
        typechecked = typecheck(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            precheck(*args, **kwargs)
            return typechecked(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def checked_function(
    precheck: Callable[..., None] | None = None, *, min_num: int | None = None
) -> Callable[[_F], _F]:
    """Decorator for the functions of this package: e3x's input handling, then the type check.

    In e3x's order: ``num`` (if ``min_num`` is given) is checked and converted to an int, then
    ``precheck(**arguments)`` checks the hyper-parameters (with e3x's exception types and
    messages), then ``x`` is promoted by :func:`promote_input`; finally the jaxtyping + beartype
    check of the annotations runs on the converted arguments.
    """

    def decorator(fn: _F) -> _F:
        signature = inspect.signature(fn)
        typechecked = typecheck(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            if min_num is not None:
                bound.arguments["num"] = check_num(bound.arguments["num"], minimum=min_num)
            if precheck is not None:
                full = signature.bind(*bound.args, **bound.kwargs)
                full.apply_defaults()
                precheck(**full.arguments)
            bound.arguments["x"] = promote_input(bound.arguments["x"], "x")
            return typechecked(*bound.args, **bound.kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def as_float_array(x: Any) -> Array:
    """``x`` as a JAX array (already promoted by :func:`checked_function`)."""
    return jnp.asarray(x)
