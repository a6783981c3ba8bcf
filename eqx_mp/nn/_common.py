"""Small helpers shared by the nn modules: dtype promotion, parameter counting, repr, and
constructor signatures shared between modules."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def promote_dtype(*arrays: Any, dtype: Any = None) -> tuple[Any, ...]:
    """Cast arrays to ``dtype`` or, if ``None``, to their common result type (flax's rule)."""
    present = [a for a in arrays if a is not None]
    target = jnp.result_type(*present) if dtype is None else dtype
    return tuple(None if a is None else jnp.asarray(a, target) for a in arrays)


def count_params(module: eqx.Module) -> int:
    """Number of scalar parameters (inexact array leaves) in a module."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(module, eqx.is_inexact_array))
    return int(sum(np.prod(x.shape) for x in leaves))


def irreps_str(parity: int, max_degree: int) -> str:
    """Human-readable irreps content, e.g. ``'0e+1o+2e'`` (P=1) or ``'0e+0o+1e+1o'`` (P=2)."""
    if parity == 1:
        return "+".join(f"{l}{'eo'[l % 2]}" for l in range(max_degree + 1))
    return "+".join(f"{l}{p}" for l in range(max_degree + 1) for p in "eo")



_F = TypeVar("_F", bound=Callable[..., Any])


def shares_keywords(source: Callable[..., Any], *, drop: Collection[str] = ()) -> Callable[[_F], _F]:
    """Give ``fn(..., **options)`` the keyword-only parameters of ``source`` in its signature.

    For a module whose constructor forwards ``**options`` to another constructor with the same
    keyword options (:class:`~eqx_mp.nn.SelfAttention` and :class:`~eqx_mp.nn.MultiHeadAttention`):
    the options and their defaults are written once, in ``source``, and ``inspect.signature``,
    ``help()`` and IDEs still list every one. ``fn``'s own parameters come first; its
    ``**options`` is replaced by ``source``'s keyword-only parameters, less ``drop`` and those
    ``fn`` declares itself.
    """

    def decorator(fn: _F) -> _F:
        own = [p for p in inspect.signature(fn).parameters.values() if p.kind is not p.VAR_KEYWORD]
        names = {p.name for p in own} | set(drop)
        shared = [p for p in inspect.signature(source).parameters.values()
                  if p.kind is p.KEYWORD_ONLY and p.name not in names]
        allowed = {p.name for p in own + shared}

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for name in kwargs:
                if name not in allowed:
                    raise TypeError(f"{fn.__qualname__}() got an unexpected keyword argument {name!r}")
            return fn(*args, **kwargs)

        # inspect.signature reads __signature__, which functools.wraps' type does not declare.
        signature = inspect.Signature(own + shared)
        wrapper.__signature__ = signature  # pyright: ignore[reportAttributeAccessIssue]
        return wrapper  # type: ignore[return-value]

    return decorator
