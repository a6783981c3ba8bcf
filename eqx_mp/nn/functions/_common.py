"""Shared annotations and explicit argument checks for the radial and utility functions.

Every public function here is wrapped by :func:`checked`: a small explicit check runs first (it
names the argument and says what was expected vs. what was received, and raises
:class:`~eqx_mp.ShapeError` / ``ValueError``), then the jaxtyping + beartype layer
(:func:`eqx_mp._typing.typecheck`) checks the shape-string annotations. Both run at trace time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, Union

import jax
import jax.numpy as jnp
import numpy as np

from ..._typing import Array, Float, ShapeError, check_degree, typecheck

__all__ = [
    "FloatIn",
    "Scalar",
    "check_float_array",
    "check_num",
    "checked",
    "is_concrete",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: A floating-point input array (JAX or NumPy) of any shape; ``*batch`` binds its shape.
FloatIn = Union[Float[Array, "*batch"], Float[np.ndarray, "*batch"]]

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


def check_num(num: Any, name: str = "num") -> int:
    """Raise ``TypeError``/``ValueError`` unless ``num`` is an int >= 1."""
    return check_degree(num, name, minimum=1)


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


def radial_precheck(x: Any, num: Any = None, *args: Any, **kwargs: Any) -> None:
    """Precheck for ``f(x, num, ...)``: ``x`` a float array and ``num`` an int >= 1."""
    check_float_array(x, "x")
    if num is None:
        num = kwargs.get("num")
    check_num(num)


def scalar_precheck(x: Any, *args: Any, **kwargs: Any) -> None:
    """Precheck for ``f(x, ...)``: ``x`` a float array."""
    check_float_array(x, "x")


def as_float_array(x: Any) -> Array:
    """``x`` as a JAX array (keeps the dtype; NumPy float64 stays float64 only under x64)."""
    return jnp.asarray(x)
