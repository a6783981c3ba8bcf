"""Input validation for the whole package: :class:`ShapeError`, the one type-checking decorator
:func:`typecheck`, and every check helper, each written once.

:func:`typecheck` checks a function's jaxtyping annotations with beartype (shape strings use the
module's static fields, e.g. ``"... N {self.in_parity} ({self.in_max_degree}+1)**2 F"``). Its
``precheck`` first runs the explicit checks below, which name the argument, the axis and the
expected vs actual size (jaxtyping's message shows only the whole shape; where eqx_mp covers an
e3x function, with e3x's wording), and may convert arguments as e3x's arithmetic does. All of it
runs at trace time (free under ``jit``); ``JAXTYPING_DISABLE=1`` turns off the annotation layer only.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar, Union

import jax
import jax.core  # jax.core.Tracer (pyright sees the submodule only when imported by name)
import jax.numpy as jnp
import numpy as np
from beartype import beartype
from jaxtyping import Array, Float, TypeCheckError, jaxtyped

__all__ = [
    "AnyArray", "FloatIn", "Normalization", "Scalar", "ShapeError", "typecheck", "is_concrete",
    "check_int", "check_degree", "check_num", "check_parity", "check_normalization",
    "check_key", "check_array", "check_trailing", "check_irreps", "infer_max_degree",
    "num_irreps", "degree_from_size", "determine_index_type", "check_neighbour_list",
    "check_index_array",
    "check_index_range", "check_num_segments", "as_inexact", "as_real_float",
]

_F = TypeVar("_F", bound=Callable[..., Any])

#: Array type accepted at public call boundaries: a JAX array or a NumPy array (NumPy inputs are
#: converted by the first ``jnp`` operation, as in e3x). Use as ``Float[AnyArray, "..."]``.
AnyArray = Union[Array, np.ndarray]

#: A floating-point JAX array of any shape (``*batch`` binds its shape): an input after
#: :func:`as_real_float` (callers may pass numbers and integer or boolean arrays).
FloatIn = Float[Array, "*batch"]

#: A scalar hyper-parameter (``limit``, ``cutoff``, ``gamma`` ...): a Python/NumPy number or a 0-d
#: floating-point array (which may be a traced value, e.g. a learnable parameter).
Scalar = Union[float, int, np.floating, np.integer, Float[Array, ""], Float[np.ndarray, ""]]


class ShapeError(TypeCheckError, ValueError):
    """A wrong shape, dtype or layout at a public call: a jaxtyping ``TypeCheckError`` (itself a
    ``TypeError``) *and* a ``ValueError``, so that code catching any of the three sees it."""


# ------------------------------------------------------------------------------- the decorator


def typecheck(fn: _F | None = None, *, precheck: Callable[..., Any] | None = None) -> Any:
    """Runtime-check ``fn``'s jaxtyping annotations with beartype (the one place we do so).

    Use as ``@typecheck`` or ``@typecheck(precheck=f)``. ``precheck`` takes ``fn``'s parameters
    and is called with the call's arguments (defaults filled in) *before* the annotation check,
    even when ``JAXTYPING_DISABLE=1``; it runs the explicit checks that name the offending axis
    and may return ``{parameter name: converted value}`` (e.g. integers promoted to float) to
    replace arguments for the annotation check and the call.
    """
    if fn is None:
        return functools.partial(typecheck, precheck=precheck)
    checked = jaxtyped(typechecker=beartype)(fn)
    if precheck is None:
        return checked
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # a missing or unexpected argument: Python's own message
            return fn(*args, **kwargs)
        bound.apply_defaults()
        replaced = precheck(*bound.args, **bound.kwargs)
        if not replaced:
            return checked(*args, **kwargs)
        bound.arguments.update(replaced)
        return checked(*bound.args, **bound.kwargs)

    return wrapper


def is_concrete(value: Any) -> bool:
    """``True`` if ``value`` is not a JAX tracer (so its value can be read in Python)."""
    return not isinstance(value, jax.core.Tracer)


# ------------------------------------------------------------------------------------ integers


def check_int(
    value: Any, name: str, *, minimum: int = 0, maximum: int | None = None,
    too_small: str | None = None, invalid: str | None = None, integral_float: bool = False,
) -> int:
    """``int(value)`` if ``value`` is a Python/NumPy integer (not ``bool``) in ``[minimum,
    maximum]``; else ``TypeError`` (not an integer) or ``ValueError`` (out of range).

    ``too_small`` replaces the message for ``value < minimum`` (e3x's wording where eqx_mp covers
    e3x) and ``invalid``, if given, is the one ``ValueError`` message for every failure: both are
    ``str.format`` templates with ``name``, ``value``, ``minimum`` and ``maximum``.
    ``integral_float`` also accepts floats with an integral value (``2.0``), as e3x does for
    ``num``.
    """
    if integral_float and isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    fields = dict(name=name, value=value, minimum=minimum, maximum=maximum)
    is_int = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    in_range = is_int and value >= minimum and (maximum is None or value <= maximum)
    if invalid is not None and not in_range:
        raise ValueError(invalid.format(**fields))
    if not is_int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError((too_small or "{name} must be >= {minimum}, got {value}").format(**fields))
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def check_degree(degree: Any, name: str = "degree") -> int:
    """A degree ``>= 0`` with e3x's message (``degree must be positive or zero, received -1``),
    naming the argument when it is not called ``degree``."""
    where = "" if name == "degree" else " (argument {name})"
    return check_int(
        degree, name, too_small="degree must be positive or zero, received {value}" + where
    )


def check_num(num: Any, name: str = "num", minimum: int = 1) -> int:
    """e3x's count argument ``num``: an int (or an integral float, as e3x accepts) ``>= minimum``,
    with e3x's message (``num must be greater or equal to 1, received 0``)."""
    return check_int(
        num, name, minimum=minimum, integral_float=True,
        too_small="{name} must be greater or equal to {minimum}, received {value}",
    )


#: The normalizations of the spherical harmonics (e3x's names).
Normalization = Literal["4pi", "orthonormal", "racah", "schmidt"]


def check_normalization(normalization: object) -> str:
    """Raise ``ValueError`` (e3x's message) unless ``normalization`` is a :data:`Normalization`."""
    valid = Normalization.__args__
    if not isinstance(normalization, str) or normalization not in valid:
        raise ValueError(f"normalization must be in {valid}, received '{normalization}'")
    return normalization


def check_parity(value: Any, name: str) -> int:
    """Check that a parity-axis size is 1 (no pseudotensors) or 2 (both parities)."""
    if isinstance(value, bool) or value not in (1, 2):
        raise ValueError(
            f"{name} must be 1 (no pseudotensors) or 2 (tensors and pseudotensors), got {value!r}"
        )
    return int(value)


def check_key(key: Any, cls: str) -> None:
    """Raise a clear error when the keyword-only PRNG ``key`` of a module is ``None``."""
    if key is None:
        raise TypeError(f"{cls}(...) needs a keyword-only PRNG key: {cls}(..., key=jax.random.key(0))")


# -------------------------------------------------------------------------------------- arrays

#: dtype kinds of :func:`check_array`: (accepted dtypes, what the array must be, the message
#: for a wrong dtype).
_KINDS: dict[str | None, tuple[tuple[Any, ...], str, str]] = {
    "floating": ((jnp.floating,), "a JAX or NumPy float array", "a floating-point dtype, got {}"),
    "real": ((jnp.integer, jnp.floating), "a JAX/NumPy array",
             "a real (integer or floating-point) dtype, got {}"),
    "integer": ((jnp.integer,), "an integer array", "an integer dtype, got dtype {}"),
    None: ((), "a JAX/NumPy array", ""),
}


def check_array(x: Any, name: str, *, dtype: str | None = "floating", layout: str = "") -> None:
    """Raise :class:`ShapeError` naming ``name`` unless ``x`` is a JAX/NumPy array with a
    ``dtype`` of kind ``"floating"``, ``"real"`` (integer or floating point), ``"integer"`` or
    ``None`` (any); ``layout`` (e.g. ``"(..., 3)"``) is the expected shape for the message."""
    kinds, array, wrong_dtype = _KINDS[dtype]
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        shape = f" of shape {layout}" if layout else ""
        raise ShapeError(f"{name} must be {array}{shape}, got {type(x).__name__}")
    if kinds and not any(jnp.issubdtype(x.dtype, k) for k in kinds):
        raise ShapeError(f"{name} must have {wrong_dtype.format(x.dtype)}")


def check_trailing(
    x: Any, name: str, trailing: tuple[int, ...], layout: str, *, label: str | None = None,
    dtype: str = "floating",
) -> None:
    """Raise :class:`ShapeError` unless ``x`` is an array (``dtype`` as in :func:`check_array`)
    whose last axes have the sizes ``trailing`` (e.g. ``(3, 3)``; ``layout`` ``"(..., 3, 3)"``).

    Messages start with e3x's wording (``r must have shape (..., 3), received shape (4, 2)``;
    ``label``, e.g. ``"rotation matrices"``, replaces the name there), then name the axis.
    """
    check_array(x, name, dtype=dtype, layout=layout)
    shape = tuple(x.shape)
    k = len(trailing)
    head = f"{label or name} must have shape {layout}, received shape {shape}"
    if len(shape) < k:
        raise ShapeError(f"{head} ({name}: {len(shape)} dimensions, expected at least {k})")
    for i, expected in enumerate(trailing):
        axis = i - k
        if shape[axis] != expected:
            raise ShapeError(f"{head} ({name}: axis {axis} has size {shape[axis]}, expected {expected})")


# ------------------------------------------------------------------------- irreps feature layout


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


def check_irreps(
    x: Any, name: str, *, parity: int | None = None, max_degree: int | None = None,
    features: int | None = None, min_ndim: int = 3, what: str = "",
) -> None:
    """Check that ``x`` has a module's float feature layout ``... P (L+1)**2 F``.

    Raises :class:`ShapeError` naming the argument ``name``, the axis, the expected and the actual
    size: ``parity`` (1 or 2; ``None`` accepts both), ``max_degree`` (``None``: any square size),
    ``features`` (``None``: any), at least ``min_ndim`` axes (4 for ``... N P (L+1)**2 F``).
    ``what`` (e.g. ``"(in_parity=2)"``) is appended to the message.
    """
    check_array(x, name)
    shape = tuple(x.shape)
    if len(shape) < min_ndim:
        raise ShapeError(
            f"{name} must have at least {min_ndim} dimensions (layout '... P (L+1)**2 F'), "
            f"got shape {shape}"
        )
    p = shape[-3]
    allowed = (1, 2) if parity is None else (parity,)
    if p not in allowed:
        exp = " or ".join(str(a) for a in allowed)
        raise ShapeError(
            f"{name}: axis -3 (parity) has size {p}, expected {exp} {what}; shape {shape}".replace(
                "  ", " "
            )
        )
    if max_degree is None:
        degree_from_size(shape[-2], name)
    elif shape[-2] != num_irreps(max_degree):
        raise ShapeError(
            f"{name}: axis -2 ((max_degree+1)**2) has size {shape[-2]}, expected "
            f"{num_irreps(max_degree)} for max_degree={max_degree} {what}; shape {shape}"
        )
    if features is not None and shape[-1] != features:
        raise ShapeError(
            f"{name}: axis -1 (features) has size {shape[-1]}, expected {features} {what}; "
            f"shape {shape}"
        )


def infer_max_degree(
    x: Any, name: str = "x", *,
    too_few_dims: str = "shape of features must have at least length 3, received shape {shape}",
) -> int:
    """``L`` of features ``x`` (integer or floating point) of layout ``... P (L+1)**2 F``.

    For e3x's feature utilities and activations, which accept any sizes. A wrong layout or dtype
    raises :class:`ShapeError` (a ``ValueError``, e3x's type) with e3x's wording
    (``_extract_max_degree_and_check_shape``; ``too_few_dims``, a template with ``shape``, for
    fewer than 3 axes), then the argument ``name`` and the axis.
    """
    check_array(x, name, dtype=None)
    shape = tuple(x.shape)
    if len(shape) < 3:
        raise ShapeError(
            f"{too_few_dims.format(shape=shape)} ({name}: layout '... P (L+1)**2 F')"
        )
    if shape[-3] not in (1, 2):
        raise ShapeError(
            f"expected 1 or 2 for axis -3 of feature shape, received shape{shape} ({name}: axis "
            f"-3 (parity) has size {shape[-3]}, expected 1 or 2)"
        )
    max_degree = round(math.sqrt(shape[-2]) - 1)
    if shape[-2] != (max_degree + 1) ** 2:
        raise ShapeError(
            f"received invalid size {shape[-2]} for axis -2 of feature shape, closest valid size "
            f"is {(max_degree + 1) ** 2} ({name}: axis -2 must have size (L+1)**2)"
        )
    check_array(x, name, dtype="real")
    return max_degree


# ------------------------------------------------------------------------------------- indices


def determine_index_type(
    *, adj_idx: Any = None, dst_idx: Any = None, src_idx: Any = None
) -> Literal["dense", "sparse"]:
    """``'dense'`` or ``'sparse'``; raises ``RuntimeError`` if neither or both are given."""
    dense = adj_idx is not None
    sparse = src_idx is not None or dst_idx is not None
    if not (dense or sparse):
        raise RuntimeError(
            "either dense indices ('adj_idx') or sparse indices ('dst_idx' and 'src_idx') must be provided"
        )
    if dense and sparse:
        raise RuntimeError(
            "could not determine whether to use dense or sparse indices, because both were provided"
        )
    if dense:
        check_index_array(adj_idx, "adj_idx", min_ndim=0)
        if adj_idx.ndim < 2:  # e3x's wording ("idx must have at least two dimensions").
            raise ShapeError(f"adj_idx must have at least two dimensions, received shape {adj_idx.shape}")
        return "dense"
    for name, idx in (("dst_idx", dst_idx), ("src_idx", src_idx)):
        if idx is not None:
            check_index_array(idx, name, min_ndim=0)
            if idx.ndim < 1:
                raise ShapeError(f"{name} must have at least one dimension, received shape {idx.shape}")
    if dst_idx is not None and src_idx is not None and dst_idx.shape != src_idx.shape:
        raise ShapeError(f"the shapes of dst_idx ({dst_idx.shape}) and src_idx ({src_idx.shape}) do not match")
    return "sparse"


def check_neighbour_list(
    lead: tuple, num_sources: int, *, adj_idx: Any, where: Any, dst_idx: Any, src_idx: Any,
    num_segments: Any, layer: str, inputs: str = "inputs", sources: str = "inputs",
) -> tuple:
    """Check a dense or sparse neighbour list against the destinations' leading axes ``lead =
    batch + (N,)`` and ``num_sources`` sources; returns the pairs' shape. ``layer``, ``inputs``
    and ``sources`` name the caller, its destination argument and its sources in the messages."""
    batch, n = lead[:-1], lead[-1]
    if determine_index_type(adj_idx=adj_idx, dst_idx=dst_idx, src_idx=src_idx) == "dense":
        if tuple(adj_idx.shape[:-1]) != lead:
            raise ShapeError(f"adj_idx has shape {adj_idx.shape}, expected {lead} + (M,) "
                             f"(the batch axes and N of {inputs})")
        if where is not None and (
            tuple(where.shape) != tuple(adj_idx.shape) or where.dtype != jnp.bool_
        ):
            raise ShapeError(f"where must be a boolean array of adj_idx's shape {adj_idx.shape}, "
                             f"got {where.dtype} {where.shape}")
        check_index_range(adj_idx, "adj_idx", num_sources, f"N={num_sources} {sources}")
        return tuple(adj_idx.shape)
    if dst_idx is None or src_idx is None:
        missing = "dst_idx" if dst_idx is None else "src_idx"
        raise ValueError(f"sparse {layer} needs both dst_idx and src_idx; {missing} is None")
    if where is not None:
        raise ValueError("'where' is only used with dense index lists (adj_idx)")
    if tuple(src_idx.shape[:-1]) != batch:
        raise ShapeError(f"src_idx has shape {src_idx.shape}; its batch axes {src_idx.shape[:-1]} "
                         f"must equal those of {inputs} {batch}")
    segments = n if num_segments is None else check_num_segments(num_segments)
    check_index_range(src_idx, "src_idx", num_sources, f"N={num_sources} {sources}")
    check_index_range(dst_idx, "dst_idx", segments, f"num_segments={segments}")
    return tuple(src_idx.shape)


def check_index_array(idx: Any, name: str, *, min_ndim: int = 1) -> None:
    """Check that ``idx`` is an integer array with at least ``min_ndim`` dimensions."""
    check_array(idx, name, dtype="integer")
    if idx.ndim < min_ndim:
        raise ShapeError(f"{name} must have at least {min_ndim} dimensions, got shape {idx.shape}")


def check_index_range(idx: Any, name: str, upper: int, what: str) -> None:
    """When ``idx`` is concrete, require ``0 <= idx <= upper`` (``upper`` is the padding value);
    traced indices (under ``jit``/``vmap``) are not checked: their values are unknown."""
    if idx is None or not is_concrete(idx) or np.size(idx) == 0:
        return
    a = np.asarray(idx)
    lo, hi = int(a.min()), int(a.max())
    if lo < 0:
        raise ValueError(f"{name} contains negative index {lo}; indices must be in [0, {upper}] ({what})")
    if hi > upper:
        raise ValueError(
            f"{name} contains index {hi} > {upper}; valid indices are 0..{upper - 1} and {upper} marks "
            f"padding ({what})"
        )


def check_num_segments(num_segments: Any) -> int:
    """``num_segments`` must be a non-negative Python/NumPy int (it fixes an output shape)."""
    return check_int(
        num_segments, "num_segments", invalid="num_segments must be a non-negative int, got {value!r}"
    )


# --------------------------------------------------------------------------------- conversions


def as_inexact(x: Any, name: str = "x") -> Array:
    """``x`` as a JAX array; Python numbers, booleans and integer arrays become JAX's default float.

    Complex and floating-point arrays keep their dtype (e3x's ``ops`` accept both).

    Raises:
        TypeError: (e3x's type for a non-numeric argument) if ``x`` is a string or ``None``.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a number or a numeric array, received {type(x).__name__}")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return x


def as_real_float(x: Any, name: str = "x") -> Array:
    """``x`` as a floating-point JAX array, promoted as e3x's arithmetic promotes it.

    Python numbers, booleans and integer arrays become JAX's default float (what ``x / 1.0``
    gives in e3x); floating arrays keep their dtype.

    Raises:
        ShapeError: (a ``TypeError`` and ``ValueError``) for complex or non-numeric input.
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

