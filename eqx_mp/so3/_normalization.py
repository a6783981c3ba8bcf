"""Normalizations of the spherical harmonics (e3x's names and constants)."""

from __future__ import annotations

import math

from .._checks import check_normalization

__all__ = ["normalization_constant"]


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
