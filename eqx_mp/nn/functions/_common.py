"""The precheck shared by the functions of this package (e3x's input handling, in e3x's order)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..._checks import as_real_float, check_num

__all__ = ["e3x_inputs"]


def e3x_inputs(
    check: Callable[..., None] | None = None, *, min_num: int | None = None
) -> Callable[..., dict[str, Any]]:
    """A precheck for :func:`eqx_mp._checks.typecheck` doing e3x's input handling.

    In e3x's order: ``num`` (the second argument, if ``min_num`` is given) is checked and
    converted to an int, then ``check(x, *other_arguments)`` checks the hyper-parameters (with
    e3x's exception types and messages), then ``x`` is promoted to float (numbers and integer
    arrays as e3x's arithmetic promotes them). The annotation check then runs on the converted
    arguments.

    Arguments:
        check: Optional check of the hyper-parameters, with the function's parameters.
        min_num: Smallest allowed ``num``, or ``None`` if the function has no ``num``.

    Returns:
        ``precheck(x, *args) -> {"x": ..., "num": ...}``.
    """

    def precheck(x: Any, *args: Any) -> dict[str, Any]:
        out = {}
        if min_num is not None:
            out["num"] = check_num(args[0], minimum=min_num)
            args = (out["num"], *args[1:])
        if check is not None:
            check(x, *args)
        out["x"] = as_real_float(x, "x")
        return out

    return precheck
