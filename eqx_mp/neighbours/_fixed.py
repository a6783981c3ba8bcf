"""A jittable neighbour list of fixed capacity (cell lists), for molecular-dynamics loops.

Shapes under ``jit`` must not depend on the data, so the list has ``max_pairs`` slots and a bin
grid fixed by a :class:`FixedListSpec` chosen on the host. Inside ``jit`` the list reports the
exact number of pairs it found and an ``overflow`` flag (too many pairs, a bin over its
capacity, or a cell deformed so that the bins no longer cover the cutoff); outside ``jit`` the
caller then grows the spec with :meth:`FixedListSpec.grow` and recomputes. Pairs are never
dropped silently::

    spec = FixedListSpec.allocate(positions, cutoff, cell, pbc)
    nl = fixed_neighbour_list(positions, cell, spec=spec)      # jittable, spec is static
    if nl.overflow:                                            # outside jit
        spec = spec.grow(int(nl.num_pairs), positions, cell)
        nl = fixed_neighbour_list(positions, cell, spec=spec)
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from ._cell import check_structure, plane_spacings

__all__ = ["FixedListSpec", "FixedNeighbours", "fixed_neighbour_list"]


class FixedNeighbours(NamedTuple):
    """A padded neighbour list: ``r = x[src] - x[dst] + shifts @ cell`` for the real pairs.

    Attributes:
        dst: ``(P,)`` int32 destination atoms, sorted; ``N`` (the number of atoms) in padding
            slots (e3x's padding convention).
        src: ``(P,)`` int32 source atoms; ``N`` in padding slots.
        shifts: ``(P, 3)`` int32 cell shifts; zeros in padding slots.
        num_pairs: ``()`` int32, the number of pairs found (may exceed ``P`` on overflow).
        overflow: ``()`` bool, ``True`` if the list is incomplete and must be recomputed with
            a grown spec.
    """

    dst: Any
    src: Any
    shifts: Any
    num_pairs: Any
    overflow: Any


#: Relative margin by which the searched bins exceed the cutoff (so float32 rounding inside
#: ``jit`` never reports a spurious overflow for the cell the spec was made for).
_MARGIN = 1e-4


def _binning(cell: np.ndarray | None, pbc: np.ndarray, cutoff: float
             ) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Bins per axis and how many bins each side are searched (both 1 / 0 if not periodic)."""
    bins, reach = [1, 1, 1], [0, 0, 0]
    if cell is not None and pbc.any():
        d = plane_spacings(cell)
        padded = cutoff * (1 + _MARGIN)
        for k in range(3):
            if pbc[k]:
                bins[k] = max(1, int(d[k] // padded))
                reach[k] = math.ceil(padded * bins[k] / d[k])
    return (bins[0], bins[1], bins[2]), (reach[0], reach[1], reach[2])


def _bin_counts(pos: np.ndarray, cell: np.ndarray | None, pbc: np.ndarray, bins) -> np.ndarray:
    nb = np.asarray(bins)
    if cell is None:
        return np.array([len(pos)])
    frac = pos @ np.linalg.inv(cell)
    frac = np.where(pbc, frac - np.floor(frac), 0.0)
    b = np.clip(np.floor(frac * nb).astype(np.int64), 0, nb - 1)
    return np.bincount((b[:, 0] * nb[1] + b[:, 1]) * nb[2] + b[:, 2], minlength=int(nb.prod()))


@dataclasses.dataclass(frozen=True)
class FixedListSpec:
    """Static capacities of :func:`fixed_neighbour_list` (hashable: a static argument of ``jit``).

    Arguments:
        cutoff: Cutoff radius in Å.
        pbc: Periodic boundary conditions, ``(3,)`` bools.
        max_pairs: ``P``, pair slots.
        bins: Bins per axis (1 along non-periodic axes).
        reach: Bins searched on each side along each axis (0 along non-periodic axes; more than
            1 when the cell is thinner than the cutoff).
        bin_capacity: Atoms one bin can hold.
    """

    cutoff: float
    pbc: tuple[bool, bool, bool]
    max_pairs: int
    bins: tuple[int, int, int]
    reach: tuple[int, int, int]
    bin_capacity: int

    @classmethod
    def allocate(
        cls, positions: Any, cutoff: float, cell: Any = None, pbc: Any = None, *,
        growth: float = 1.5, num_pairs: int | None = None,
    ) -> "FixedListSpec":
        """Capacities for a structure, with room to grow (host side, concrete arrays).

        Arguments:
            positions: ``(n, 3)`` positions in Å.
            cutoff: Cutoff radius in Å (``> 0``).
            cell: ``(3, 3)`` lattice vectors as rows (Å) or ``None``.
            pbc: One bool or ``(3,)`` bools (default: periodic if a cell is given).
            growth: Factor (``>= 1``) applied to the needed pair and bin capacities.
            num_pairs: The number of pairs if known (e.g. from ``FixedNeighbours.num_pairs``);
                default: every candidate pair of the bin grid (an upper bound).

        Returns:
            A :class:`FixedListSpec`.

        Raises:
            ValueError: For invalid positions/cell (see :func:`check_structure`), a
                non-positive cutoff or ``growth < 1``.
        """
        pos, c, p = check_structure(positions, cell, pbc, what="FixedListSpec.allocate")
        if not cutoff > 0:
            raise ValueError(f"cutoff must be > 0 (Å), got {cutoff}")
        if not growth >= 1:
            raise ValueError(f"growth must be >= 1, got {growth}")
        bins, reach = _binning(c, p, float(cutoff))
        capacity = max(1, math.ceil(growth * int(_bin_counts(pos, c, p, bins).max(initial=0))))
        capacity = min(capacity, max(1, len(pos)))
        candidates = len(pos) * capacity * math.prod(2 * r + 1 for r in reach)
        pairs = candidates if num_pairs is None else math.ceil(growth * int(num_pairs))
        periodic = (bool(p[0]), bool(p[1]), bool(p[2]))
        return cls(float(cutoff), periodic, max(1, pairs), bins, reach, capacity)

    def grow(
        self, num_pairs: int, positions: Any, cell: Any = None, *, growth: float = 1.5
    ) -> "FixedListSpec":
        """A spec that holds ``num_pairs`` pairs with room to spare (after an overflow).

        Arguments:
            num_pairs: The exact pair count of the overflowing list (``int(nl.num_pairs)``).
            positions: The positions it was computed for (Å).
            cell: The cell it was computed for, or ``None``.
            growth: Factor (``>= 1``) applied to the needed capacities.

        Returns:
            A new :class:`FixedListSpec` (never smaller than this one).
        """
        new = FixedListSpec.allocate(positions, self.cutoff, cell, self.pbc, growth=growth,
                                     num_pairs=int(num_pairs))
        return dataclasses.replace(
            new, max_pairs=max(new.max_pairs, self.max_pairs),
            bin_capacity=max(new.bin_capacity, self.bin_capacity)
            if new.bins == self.bins else new.bin_capacity,
        )


def fixed_neighbour_list(
    positions: Any, cell: Any = None, *, spec: FixedListSpec, mask: Any = None
) -> FixedNeighbours:
    """Pairs closer than ``spec.cutoff`` in fixed-size arrays (jittable; ``spec`` is static).

    Atoms are wrapped into the cell along periodic axes and sorted into bins at least one
    cutoff wide; each atom's neighbours are searched in the ``prod(2 * reach + 1)`` surrounding
    bins (each bin with its periodic image), so an atom sees all images of a neighbour, and of
    itself, within the cutoff, also in cells thinner than twice the cutoff. Along non-periodic
    axes all atoms are candidates. The returned shifts refer to the positions as given.

    Arguments:
        positions: ``(N, 3)`` positions in Å.
        cell: ``(3, 3)`` lattice vectors as rows (Å); may be ``None`` only without periodic axes.
        spec: Capacities (:meth:`FixedListSpec.allocate`).
        mask: Optional ``(N,)`` bool, ``False`` for padding atoms (never in a pair).

    Returns:
        :class:`FixedNeighbours` with ``spec.max_pairs`` slots.
    """
    n = positions.shape[0]
    dtype = positions.dtype
    periodic = np.asarray(spec.pbc)
    if cell is None:
        if periodic.any():
            raise ValueError(f"fixed_neighbour_list: pbc={periodic.tolist()} needs a cell")
        cell = jnp.eye(3, dtype=dtype)
    cell = jnp.asarray(cell, dtype)
    inv = jnp.linalg.inv(cell)
    frac = positions @ inv
    wrap = jnp.where(periodic, jnp.floor(frac), 0.0)
    xw = positions - wrap @ cell
    nb = np.asarray(spec.bins)
    nbins = int(nb.prod())
    b = jnp.clip(jnp.floor((frac - wrap) * nb).astype(jnp.int32), 0, nb - 1)
    bin_id = (b[:, 0] * nb[1] + b[:, 1]) * nb[2] + b[:, 2]
    if mask is not None:
        bin_id = jnp.where(mask, bin_id, nbins)
    # Bin table (nbins + 1, C): atom ids sorted by bin, ``n`` in empty slots and the extra row.
    counts = jnp.zeros(nbins + 1, jnp.int32).at[bin_id].add(1)
    order = jnp.argsort(bin_id, stable=True)
    starts = jnp.cumsum(counts) - counts
    rank = jnp.arange(n) - starts[bin_id[order]]
    cap = spec.bin_capacity
    table = jnp.full((nbins + 1, cap), n, jnp.int32).at[bin_id[order], rank].set(
        order.astype(jnp.int32), mode="drop")
    table = table.at[nbins].set(n)
    # Candidates (n, M, C): atoms of the surrounding bins and the image each bin lies in.
    offsets = np.array(list(itertools.product(*(range(-r, r + 1) for r in spec.reach))), np.int32)
    t = b[:, None, :] + offsets[None]
    image = jnp.floor_divide(t, nb)
    tb = t - image * nb
    target = (tb[..., 0] * nb[1] + tb[..., 1]) * nb[2] + tb[..., 2]
    if mask is not None:
        target = jnp.where(mask[:, None], target, nbins)
    cand = table[target]
    r = (xw[jnp.minimum(cand, n - 1)] + (image.astype(dtype) @ cell)[:, :, None, :]
         - xw[:, None, None, :])
    i = jnp.arange(n)[:, None, None]
    self_pair = (cand == i) & jnp.all(image == 0, axis=-1)[:, :, None]
    valid = (cand < n) & (jnp.sum(r * r, axis=-1) < spec.cutoff**2) & ~self_pair
    num_pairs = jnp.sum(valid, dtype=jnp.int32)
    (flat,) = jnp.nonzero(valid.ravel(), size=spec.max_pairs, fill_value=valid.size)
    real = flat < valid.size
    flat = jnp.minimum(flat, valid.size - 1)
    m_c = offsets.shape[0] * cap
    dst = flat // m_c
    src = cand.ravel()[flat]
    wrap_i = wrap.astype(jnp.int32)
    shifts = image.reshape(-1, 3)[flat // cap] - wrap_i[src] + wrap_i[dst]
    spacing = 1.0 / jnp.linalg.norm(inv, axis=0)
    reach_ok = jnp.where(periodic, spacing * np.asarray(spec.reach) / nb >= spec.cutoff, True)
    overflow = (num_pairs > spec.max_pairs) | (jnp.max(counts[:nbins]) > cap) | ~jnp.all(reach_ok)
    return FixedNeighbours(
        dst=jnp.where(real, dst, n).astype(jnp.int32),
        src=jnp.where(real, src, n).astype(jnp.int32),
        shifts=jnp.where(real[:, None], shifts, 0).astype(jnp.int32),
        num_pairs=num_pairs,
        overflow=overflow,
    )
