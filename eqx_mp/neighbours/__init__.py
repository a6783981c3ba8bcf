"""Neighbour lists with periodic boundary conditions: ``r_ij = x[src] - x[dst] + shifts @ cell``.

* :func:`neighbour_list` builds the list on the host (numpy, via vesin): for data sets and the
  ASE calculator.
* :func:`fixed_neighbour_list` builds it inside ``jit`` in arrays of fixed capacity (a
  :class:`FixedListSpec`), reporting overflow instead of dropping pairs: for MD loops.
* :func:`check_structure` validates positions, cell and ``pbc`` (NaN positions, zero-volume
  cells) with messages that name the problem.

Cells follow ASE: lattice vectors are the rows of ``cell`` (Å); shifts are integer multiples of
them. Both lists are sorted by ``dst`` and contain every image of a neighbour (or of the atom
itself) within the cutoff, so cells thinner than twice the cutoff work.
"""

from ._cell import MIN_VOLUME, check_structure, plane_spacings
from ._fixed import FixedListSpec, FixedNeighbours, fixed_neighbour_list
from ._host import Neighbours, neighbour_list

__all__ = [
    "MIN_VOLUME",
    "FixedListSpec",
    "FixedNeighbours",
    "Neighbours",
    "check_structure",
    "fixed_neighbour_list",
    "neighbour_list",
    "plane_spacings",
]
