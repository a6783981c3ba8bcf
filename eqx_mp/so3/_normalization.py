"""Normalizations of the spherical harmonics (e3x's names and constants)."""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["Normalization", "valid_normalizations", "check_normalization", "normalization_constant"]

valid_normalizations = ("4pi", "orthonormal", "racah", "schmidt")

Normalization = Literal["4pi", "orthonormal", "racah", "schmidt"]


def check_normalization(normalization: object) -> str:
    """Raise ``ValueError`` unless ``normalization`` is one of :data:`valid_normalizations`."""
    if not isinstance(normalization, str) or normalization not in valid_normalizations:
        raise ValueError(
            f"normalization must be in {valid_normalizations}, received '{normalization}'"
        )
    return normalization


def normalization_constant(normalization: str, degree: int) -> float:
    r"""Factor :math:`\mathcal{N}` applied to Racah-normalized harmonics of ``degree``.

    ``'racah'`` and ``'schmidt'`` (the same thing): 1; ``'4pi'``: :math:`\sqrt{2l+1}`;
    ``'orthonormal'``: :math:`\sqrt{(2l+1)/(4\pi)}`.
    """
    check_normalization(normalization)
    if normalization == "4pi":
        return math.sqrt(2 * degree + 1)
    if normalization == "orthonormal":
        return math.sqrt((2 * degree + 1) / (4 * math.pi))
    return 1.0
