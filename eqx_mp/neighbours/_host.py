"""Host-side (numpy) neighbour lists with periodic boundary conditions, built by vesin."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._cell import check_structure

__all__ = ["Neighbours", "neighbour_list"]


class Neighbours(NamedTuple):
    """Directed pairs ``(dst, src)`` and their cell shifts: ``r = x[src] - x[dst] + shifts @ cell``.

    Attributes:
        dst: ``(E,)`` int32 destination (receiving) atom of each pair, sorted.
        src: ``(E,)`` int32 source (sending) atom.
        shifts: ``(E, 3)`` int32 multiples of the lattice vectors (zeros without a cell).
    """

    dst: np.ndarray
    src: np.ndarray
    shifts: np.ndarray


def _vesin() -> Any:
    try:
        import vesin
    except ImportError as err:
        raise ImportError(
            "neighbour lists with a cutoff need vesin: install the train extra "
            "(pip install 'eqx_mp[train]') or pip install vesin"
        ) from err
    return vesin


def neighbour_list(
    positions: Any, cutoff: float | None, cell: Any = None, pbc: Any = None
) -> Neighbours:
    """All directed pairs of atoms closer than ``cutoff``, periodic images included.

    An atom may see several images of one neighbour, or images of itself, when the cell is
    thinner than twice the cutoff. Positions need not be wrapped into the cell: the shifts refer
    to the positions as given. Built by `vesin <https://github.com/Luthaf/vesin>`_ (cell lists,
    O(n)); ``cutoff=None`` (isolated structures only) returns all ``n (n - 1)`` pairs without it.

    Arguments:
        positions: ``(n, 3)`` positions in Å.
        cutoff: Pair distance limit in Å (strictly less than), or ``None`` for all pairs.
        cell: ``(3, 3)`` lattice vectors as rows in Å, or ``None`` for an isolated structure.
        pbc: One bool or ``(3,)`` bools; default: periodic along all axes if ``cell`` is given.

    Returns:
        :class:`Neighbours` ``(dst, src, shifts)`` sorted by ``dst`` (then ``src``), with
        ``r_ij = positions[src] - positions[dst] + shifts @ cell``.

    Raises:
        ValueError: For a non-positive cutoff, NaN positions, a zero-volume periodic cell or
            ``cutoff=None`` with periodic boundaries.
        ImportError: If a cutoff is given and vesin is not installed.

    Example::

        >>> import ase.build
        >>> atoms = ase.build.bulk("Cu", "fcc", a=3.61)      # 1 atom, 12 neighbours < 3 Å
        >>> nl = neighbour_list(atoms.positions, 3.0, atoms.cell.array, atoms.pbc)
        >>> len(nl.dst)
        12
    """
    pos, c, p = check_structure(positions, cell, pbc, what="neighbour_list")
    n = pos.shape[0]
    if cutoff is None:
        if p.any():
            raise ValueError("neighbour_list: cutoff=None (all pairs) needs pbc=False everywhere")
        dst, src = np.nonzero(~np.eye(n, dtype=bool))
        return Neighbours(dst.astype(np.int32), src.astype(np.int32), np.zeros((len(dst), 3), np.int32))
    if not cutoff > 0:
        raise ValueError(f"neighbour_list: cutoff must be > 0 (Å), got {cutoff}")
    if n == 0:
        empty = np.zeros((0,), np.int32)
        return Neighbours(empty, empty, np.zeros((0, 3), np.int32))
    vesin = _vesin()
    box = np.zeros((3, 3)) if c is None else c
    nl = vesin.NeighborList(cutoff=float(cutoff), full_list=True, sorted=True)
    i, j, s = nl.compute(pos, box, p.tolist(), quantities="ijS")
    # vesin sorts by (i, j); order the images of one pair too, so the output is deterministic.
    s = np.asarray(s, np.int64).reshape(-1, 3)
    order = np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i))
    return Neighbours(
        np.asarray(i, np.int32)[order], np.asarray(j, np.int32)[order], s[order].astype(np.int32)
    )
