"""The ``reciprocal_*`` and ``exponential_*`` variants of the radial basis families, written once.

Each family (Bernstein, Chebyshev, Fourier, Gaussian) is a set of ``num`` functions on
``[0, 1]``; its two variants evaluate the family at a mapping of ``x`` (:mod:`.mappings`), with
e3x's signatures, and optionally weight every function by the mapping value.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..._checks import FloatIn, Scalar, typecheck
from ._common import e3x_inputs
from .mappings import _exponential_mapping, _reciprocal_mapping

#: ``family(mapping, num) -> (*batch, num)``: a family evaluated at a mapping value in ``[0, 1]``.
Family = Callable[[Array, int], Array]

_DOC = r"""{summary}

    With ``use_{kind}_weighting=True`` each function is multiplied by the mapping value.

    Arguments:
        x: Input of any shape ``*batch`` (a number or real array; integers are promoted to float).
        num: Number of basis functions (``>= 1``).{arguments}
        use_{kind}_weighting: Weight the functions by the {kind} mapping.

    Returns:
        Array of shape ``(*batch, num)``.

    Raises:
        ValueError: If ``num < 1``{kind_error}.
    """

_RECIPROCAL_ARGS = """
        kind: Reciprocal mapping kind: ``'shifted'``, ``'damped'`` or ``'cuspless'``."""
_EXPONENTIAL_ARGS = """
        gamma: Decay constant of the exponential mapping (number or 0-d array, may be traced).
        cuspless: Use the cuspless exponential mapping."""


def _named(fn: Callable, name: str, module: str, doc: str) -> Callable:
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = module
    fn.__doc__ = doc
    return typecheck(fn, precheck=e3x_inputs(min_num=1))


def mapped_variants(family: Family, name: str, module: str, summary: str) -> tuple[Callable, Callable]:
    """``reciprocal_{name}`` and ``exponential_{name}``: ``family`` of the mapped ``x``.

    Arguments:
        family: The family as a function of the mapping value (e.g. ``g(1 - m, num)``).
        name: The family's name in the functions' names (``"gaussian"``).
        module: The module the functions belong to (``__name__`` of the caller).
        summary: First docstring line, with ``{mapping}`` for the mapping's name.

    Returns:
        ``(reciprocal_<name>, exponential_<name>)``.
    """

    def reciprocal(
        x: FloatIn, num: int, kind: str = "shifted", use_reciprocal_weighting: bool = False
    ) -> Float[Array, "*batch {num}"]:
        mapping = _reciprocal_mapping(x, kind)
        out = family(mapping, num)
        return out * jnp.expand_dims(mapping, axis=-1) if use_reciprocal_weighting else out

    def exponential(
        x: FloatIn,
        num: int,
        gamma: Scalar = 1.0,
        cuspless: bool = False,
        use_exponential_weighting: bool = False,
    ) -> Float[Array, "*batch {num}"]:
        mapping = _exponential_mapping(x, gamma, cuspless)
        out = family(mapping, num)
        return out * jnp.expand_dims(mapping, axis=-1) if use_exponential_weighting else out

    docs = {
        kind: _DOC.format(summary=summary.format(mapping=kind + r"\_mapping"), kind=kind,
                          arguments=args, kind_error=error)
        for kind, args, error in (("reciprocal", _RECIPROCAL_ARGS, " or ``kind`` is invalid"),
                                  ("exponential", _EXPONENTIAL_ARGS, ""))
    }
    return (_named(reciprocal, f"reciprocal_{name}", module, docs["reciprocal"]),
            _named(exponential, f"exponential_{name}", module, docs["exponential"]))
