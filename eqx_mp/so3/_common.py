"""Index helpers shared by the so3 tables (pure numpy, cached)."""

from __future__ import annotations

import functools

import numpy as np


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

