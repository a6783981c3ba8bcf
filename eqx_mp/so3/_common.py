"""Index helpers shared by the so3 tables (pure numpy, cached)."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from .._typing import ShapeError


def check_degree_nonnegative(degree: int, name: str = "degree") -> int:
    """Raise ``ValueError`` unless ``degree`` is an int >= 0.

    The message starts with e3x's wording (``degree must be positive or zero, received -1``) and
    names the argument when it is not called ``degree``.
    """
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(degree).__name__} {degree!r}")
    if degree < 0:
        where = "" if name == "degree" else f" (argument {name})"
        raise ValueError(f"degree must be positive or zero, received {degree}{where}")
    return int(degree)


@functools.lru_cache(maxsize=None)
def cartesian_permutation_for_degree(l: int) -> np.ndarray:
    """Permutation of the ``2l+1`` orders ``m=-l..l`` into e3x's Cartesian order.

    For ``l=1`` this maps ``(y, z, x)`` (standard ``m=-1,0,1``) to ``(x, y, z)``.
    """
    p = []
    for m in range(l):
        p.append(2 * l + 1 - (m + 1))
        p.append(m)
    p.append((2 * l + 1) // 2)
    out = np.asarray(p, dtype=np.int64)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=None)
def cartesian_permutation(max_degree: int) -> np.ndarray:
    """Cartesian-order permutation for all degrees ``0..max_degree`` (length ``(L+1)**2``)."""
    out = np.concatenate(
        [cartesian_permutation_for_degree(l) + l * l for l in range(max_degree + 1)]
    ).astype(np.int64)
    out.setflags(write=False)
    return out


def check_float_array(
    x: object,
    name: str,
    trailing: tuple[int, ...],
    layout: str,
    label: str | None = None,
    allow_int: bool = False,
) -> None:
    """Raise :class:`~eqx_mp.ShapeError` unless ``x`` is a float array ending in ``trailing``.

    Shape errors start with e3x's wording (``r must have shape (..., 3), received shape (4, 2)``;
    ``label`` replaces the argument name there, e.g. ``"rotation matrices"``) followed by the
    offending axis.

    Arguments:
        x: The value to check (a JAX or NumPy array).
        name: Argument name used in the message.
        trailing: Required sizes of the last ``len(trailing)`` axes, e.g. ``(3,)`` or ``(3, 3)``.
        layout: Human-readable layout for the message, e.g. ``"(..., 3)"``.
        label: What e3x calls the argument in its message (default: ``name``).
        allow_int: Also accept integer dtypes (where e3x accepts them; the caller promotes).
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ShapeError(
            f"{name} must be a JAX or NumPy float array of shape {layout}, "
            f"got {type(x).__name__}"
        )
    if not (jnp.issubdtype(x.dtype, jnp.floating) or allow_int and jnp.issubdtype(x.dtype, jnp.integer)):
        kinds = "an integer or floating-point" if allow_int else "a floating-point"
        raise ShapeError(f"{name} must have {kinds} dtype, got {x.dtype}")
    shape = tuple(x.shape)
    k = len(trailing)
    head = f"{label or name} must have shape {layout}, received shape {shape}"
    if len(shape) < k:
        raise ShapeError(f"{head} ({name}: {len(shape)} dimensions, expected at least {k})")
    for i, expected in enumerate(trailing):
        axis = i - k
        if shape[axis] != expected:
            raise ShapeError(f"{head} ({name}: axis {axis} has size {shape[axis]}, expected {expected})")


def as_float(x: object, name: str) -> object:
    """Return ``x`` as an array; real numbers and integer arrays become JAX's default float.

    Floating arrays keep their dtype. Booleans, complex and non-numeric input raise
    :class:`~eqx_mp.ShapeError`.
    """
    if isinstance(x, bool):
        raise ShapeError(f"{name} must be a real number or float array, got bool")
    if isinstance(x, (int, float, np.integer, np.floating)):
        return jnp.asarray(x, dtype=jnp.result_type(float))
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise ShapeError(f"{name} must be a float or a float array, got {type(x).__name__}")
    if jnp.issubdtype(x.dtype, jnp.integer):
        return jnp.asarray(x, dtype=jnp.result_type(float))
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ShapeError(f"{name} must have a real (integer or floating-point) dtype, got {x.dtype}")
    return x
