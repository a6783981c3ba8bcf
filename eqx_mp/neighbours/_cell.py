"""Validation of one structure's positions, cell and periodic boundary conditions (host side)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MIN_VOLUME", "check_structure", "plane_spacings"]

#: Smallest ``|det(cell)|`` (Å³) accepted for a cell with a periodic direction.
MIN_VOLUME = 1e-6


def check_structure(
    positions: Any, cell: Any = None, pbc: Any = None, *, what: str = "structure"
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Check positions, cell and ``pbc`` of one structure and return them as numpy arrays.

    Arguments:
        positions: ``(n, 3)`` Cartesian positions in Å.
        cell: ``(3, 3)`` lattice vectors as rows in Å (ASE convention), or ``None`` for an
            isolated structure.
        pbc: Periodic boundary conditions, one bool or ``(3,)`` bools; ``None`` means periodic
            in every direction when a cell is given and in none otherwise.
        what: Name of the structure in error messages.

    Returns:
        ``(positions, cell, pbc)``: float64 ``(n, 3)``, float64 ``(3, 3)`` or ``None``, bool
        ``(3,)``.

    Raises:
        ValueError: If a shape is wrong, a value is NaN/inf (naming the first atom), a direction
            is periodic without a cell, or the cell of a periodic structure has (nearly) zero
            volume (the message gives the volume).
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[-1] != 3:
        raise ValueError(f"{what}: positions must have shape (n, 3), got {pos.shape}")
    bad = ~np.isfinite(pos).all(axis=1)
    if bad.any():
        atoms = np.nonzero(bad)[0]
        raise ValueError(
            f"{what}: positions of {len(atoms)} atom(s) are NaN or inf (first: atom {atoms[0]}, "
            f"{pos[atoms[0]].tolist()}); expected finite positions in Å"
        )
    if cell is None:
        if pbc is not None and np.any(pbc):
            raise ValueError(f"{what}: pbc={np.asarray(pbc).tolist()} needs a cell, got cell=None")
        return pos, None, np.zeros(3, bool)
    c = np.asarray(cell, dtype=np.float64)
    if c.shape != (3, 3):
        raise ValueError(f"{what}: cell must have shape (3, 3) (lattice vectors as rows), got {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError(f"{what}: cell contains NaN or inf: {c.tolist()}")
    p = np.broadcast_to(np.asarray(True if pbc is None else pbc, dtype=bool), (3,)).copy()
    if p.any():
        volume = abs(float(np.linalg.det(c)))
        if volume < MIN_VOLUME:
            raise ValueError(
                f"{what}: the cell has volume {volume:.3g} Å³ (lattice vectors {c.tolist()}); a "
                f"periodic structure (pbc={p.tolist()}) needs three independent lattice vectors "
                f"(volume > {MIN_VOLUME:g} Å³)"
            )
    return pos, c, p


def plane_spacings(cell: np.ndarray) -> np.ndarray:
    """Distances between neighbouring lattice planes of a cell.

    Arguments:
        cell: ``(3, 3)`` lattice vectors as rows (Å), non-singular.

    Returns:
        ``(3,)`` spacings in Å: ``d_k = 1 / |column k of inv(cell)|``, the thickness of the cell
        along the direction normal to the other two lattice vectors.
    """
    return 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)
