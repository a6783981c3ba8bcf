"""Pack variable-size graphs into fixed-size padded batches, so ``jit`` compiles once.

A :class:`GraphBatch` holds up to ``max_graphs`` graphs (molecules or periodic cells) with at
most ``max_nodes`` nodes and ``max_edges`` edges in total, concatenated into one disconnected graph (the jraph layout) and
padded to exactly those sizes. Padding follows e3x's conventions for sparse index lists: a
padding edge has ``dst_idx = src_idx = max_nodes`` (= ``num_segments``), so
:func:`eqx_mp.ops.indexed_sum` and :class:`~eqx_mp.nn.MessagePass` drop it; padding nodes
belong to graph ``max_graphs`` (out of range, so per-graph ``segment_sum`` drops them). The
masks say which entries are real. Every batch built with the same limits has the same shapes
and dtypes, so a jitted step is traced and compiled once for the whole data set::

    graphs = eqx_mp.batching.graphs_from_dataset(dataset, cutoff=5.0)
    max_nodes, max_edges = eqx_mp.batching.padding_limits(graphs, max_graphs=8)
    for batch in eqx_mp.batching.batch_graphs(graphs, max_nodes=max_nodes,
                                              max_edges=max_edges, max_graphs=8):
        ...  # batch.positions (max_nodes, 3), batch.dst_idx (max_edges,), ...

Periodic graphs carry their cell and per-edge cell shifts: the displacement of edge ``e`` is
``positions[src] - positions[dst] + shifts[e] @ cells[g]`` with ``g`` the edge's graph (see
:mod:`eqx_mp.neighbours`), and :meth:`eqx_mp.models.Potential.batch_predict` returns energies,
forces and stresses of a batch.

:func:`stack_batches` stacks several batches along a new leading axis, which is the axis
:func:`eqx_mp.parallel.shard_batch` splits across devices for data-parallel training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._checks import check_int
from .neighbours import neighbour_list

__all__ = [
    "Graph",
    "GraphBatch",
    "graphs_from_dataset",
    "grown_capacity",
    "one_graph_batch",
    "padding_limits",
    "pack_graphs",
    "batch_graphs",
    "stack_batches",
]


@dataclasses.dataclass(frozen=True)
class Graph:
    """One structure: ``n`` atoms, reference energy, forces (and stress), and a neighbour list.

    Arguments:
        positions: ``(n, 3)`` float positions (Å).
        numbers: ``(n,)`` integer atomic numbers.
        energy: Total energy (eV).
        forces: ``(n, 3)`` float forces (eV/Å), or ``None`` (padded with zeros).
        dst_idx: ``(e,)`` destination (receiving) atom of each edge, in ``0..n-1``.
        src_idx: ``(e,)`` source (sending) atom of each edge, in ``0..n-1``.
        shifts: ``(e, 3)`` integer cell shifts of the edges (``r = x[src] - x[dst] +
            shifts @ cell``), or ``None`` (no periodic images).
        cell: ``(3, 3)`` lattice vectors as rows (Å), or ``None`` for an isolated structure.
        stress: ``(6,)`` reference stress (eV/Å³, ASE sign and Voigt order), or ``None``.
    """

    positions: np.ndarray
    numbers: np.ndarray
    energy: float
    forces: np.ndarray | None
    dst_idx: np.ndarray
    src_idx: np.ndarray
    shifts: np.ndarray | None = None
    cell: np.ndarray | None = None
    stress: np.ndarray | None = None

    @property
    def num_nodes(self) -> int:
        """``n``, the number of atoms."""
        return int(np.shape(self.positions)[0])

    @property
    def num_edges(self) -> int:
        """``e``, the number of edges."""
        return int(np.shape(self.dst_idx)[0])


class GraphBatch(eqx.Module):
    """Fixed-size padded batch of graphs (arrays; a pytree, so it passes through ``jit``).

    Shapes are for one batch; :func:`stack_batches` adds leading axes ``...``.
    ``N = max_nodes``, ``E = max_edges``, ``G = max_graphs``.

    Attributes:
        positions: ``(..., N, 3)`` positions; zeros for padding nodes.
        numbers: ``(..., N)`` int32 atomic numbers; ``0`` for padding nodes.
        forces: ``(..., N, 3)`` reference forces; zeros for padding nodes.
        energies: ``(..., G)`` reference energies; zeros for padding graphs.
        dst_idx: ``(..., E)`` int32 destination indices into the batch's nodes; ``N`` for padding.
        src_idx: ``(..., E)`` int32 source indices; ``N`` for padding.
        node_graph: ``(..., N)`` int32 graph of each node (``0..G-1``); ``G`` for padding nodes.
        node_mask: ``(..., N)`` bool, ``True`` for real nodes.
        edge_mask: ``(..., E)`` bool, ``True`` for real edges.
        graph_mask: ``(..., G)`` bool, ``True`` for real graphs.
        cells: ``(..., G, 3, 3)`` lattice vectors as rows (Å); zeros for isolated structures
            and padding graphs.
        shifts: ``(..., E, 3)`` cell shifts of the edges (integer values, float dtype); the
            displacement of edge ``e`` is ``positions[src] - positions[dst] + shifts[e] @
            cells[g]`` with ``g`` its graph; zeros for padding edges.
        stresses: ``(..., G, 6)`` reference stresses (eV/Å³); zeros where unknown.
        stress_mask: ``(..., G)`` bool, ``True`` for graphs with a reference stress.
    """

    positions: Any
    numbers: Any
    forces: Any
    energies: Any
    dst_idx: Any
    src_idx: Any
    node_graph: Any
    node_mask: Any
    edge_mask: Any
    graph_mask: Any
    cells: Any
    shifts: Any
    stresses: Any
    stress_mask: Any

    @property
    def max_nodes(self) -> int:
        """``N``: node slots per batch (also the padding index and ``num_segments``)."""
        return int(np.shape(self.node_mask)[-1])

    @property
    def max_edges(self) -> int:
        """``E``: edge slots per batch."""
        return int(np.shape(self.edge_mask)[-1])

    @property
    def max_graphs(self) -> int:
        """``G``: graph slots per batch (also the padding graph index)."""
        return int(np.shape(self.graph_mask)[-1])


def one_graph_batch(
    positions: Any, numbers: Any, dst_idx: Any, src_idx: Any, shifts: Any = None,
    cell: Any = None, node_mask: Any = None,
) -> GraphBatch:
    """One structure as a :class:`GraphBatch` of JAX arrays (jittable; traced positions are fine).

    Reference fields (energies, forces, stresses) are zeros. Padding follows the batch
    conventions: atoms with ``node_mask`` ``False`` belong to graph 1 (dropped), pairs with
    ``dst_idx == N`` are padding.

    Arguments:
        positions: ``(N, 3)`` positions (Å); their dtype is the batch's float dtype.
        numbers: ``(N,)`` atomic numbers.
        dst_idx: ``(E,)`` destination atoms (``N`` for padding pairs).
        src_idx: ``(E,)`` source atoms (``N`` for padding pairs).
        shifts: ``(E, 3)`` cell shifts, or ``None`` (zeros).
        cell: ``(3, 3)`` lattice vectors as rows (Å), or ``None`` (zeros: no cell).
        node_mask: ``(N,)`` bool real atoms (default: all).

    Returns:
        A :class:`GraphBatch` with ``max_graphs = 1``.
    """
    n, dtype = positions.shape[0], positions.dtype
    dst_idx = jnp.asarray(dst_idx, jnp.int32)
    node_mask = jnp.ones((n,), bool) if node_mask is None else jnp.asarray(node_mask, bool)
    return GraphBatch(
        positions=positions, numbers=jnp.asarray(numbers), forces=jnp.zeros_like(positions),
        energies=jnp.zeros((1,), dtype), dst_idx=dst_idx,
        src_idx=jnp.asarray(src_idx, jnp.int32), node_graph=jnp.where(node_mask, 0, 1).astype(jnp.int32),
        node_mask=node_mask, edge_mask=dst_idx < n, graph_mask=jnp.ones((1,), bool),
        cells=jnp.zeros((1, 3, 3), dtype) if cell is None else jnp.asarray(cell, dtype)[None],
        shifts=jnp.zeros((dst_idx.shape[0], 3), dtype) if shifts is None else jnp.asarray(shifts, dtype),
        stresses=jnp.zeros((1, 6), dtype), stress_mask=jnp.zeros((1,), bool),
    )


def grown_capacity(needed: int, current: int = 0, growth: float = 1.5) -> int:
    """A capacity that holds ``needed`` items, grown geometrically so that few sizes occur.

    Arguments:
        needed: Items to hold.
        current: The capacity in use (returned unchanged if it suffices).
        growth: Factor (``> 1``) by which the capacity grows beyond ``needed``.

    Returns:
        ``current`` if ``needed <= current``, else ``max(ceil(growth * needed), ceil(growth *
        current))``; a sequence of growing demands therefore compiles ``O(log)`` shapes.
    """
    if not growth > 1:
        raise ValueError(f"growth must be > 1, got {growth}")
    if needed <= current:
        return int(current)
    return int(max(np.ceil(growth * needed), np.ceil(growth * current), 1))


def graphs_from_dataset(dataset: Any, cutoff: float | None = None) -> list[Graph]:
    """Turn the frames of a :class:`~eqx_mp.data.Dataset` into :class:`Graph` objects.

    Periodic frames get their cell, periodic neighbour list and stress.

    Arguments:
        dataset: A :class:`~eqx_mp.data.Dataset` (frames of any size, periodic or not).
        cutoff: Neighbour cutoff in Å for :func:`eqx_mp.neighbours.neighbour_list`
            (``None``: all pairs, isolated frames only).

    Returns:
        A list of ``F`` graphs.
    """
    out = []
    for f in range(len(dataset)):
        fr = dataset.frame(f)
        nl = neighbour_list(fr.positions, cutoff, fr.cell, fr.pbc if fr.cell is not None else None)
        out.append(Graph(fr.positions, fr.numbers, fr.energy, fr.forces, nl.dst, nl.src,
                         shifts=None if fr.cell is None else nl.shifts, cell=fr.cell,
                         stress=fr.stress))
    return out


def padding_limits(graphs: Sequence[Graph], max_graphs: int) -> tuple[int, int]:
    """Smallest ``(max_nodes, max_edges)`` that hold *any* ``max_graphs`` of these graphs.

    Arguments:
        graphs: The data set.
        max_graphs: Graph slots per batch (``>= 1``).

    Returns:
        ``(max_nodes, max_edges)``: the sums of the ``max_graphs`` largest node and edge counts.
        Smaller limits also work with :func:`batch_graphs` (batches then hold fewer graphs).
    """
    if max_graphs < 1:
        raise ValueError(f"max_graphs must be >= 1, got {max_graphs}")
    if not graphs:
        raise ValueError("graphs is empty")
    nodes = sorted((g.num_nodes for g in graphs), reverse=True)[:max_graphs]
    edges = sorted((g.num_edges for g in graphs), reverse=True)[:max_graphs]
    return int(sum(nodes)), int(sum(edges))


def _check_graph(g: Graph, i: int, max_nodes: int, max_edges: int) -> None:
    n, e = g.num_nodes, g.num_edges
    if np.shape(g.positions) != (n, 3):
        raise ValueError(f"graph {i}: positions must have shape (n, 3), got {np.shape(g.positions)}")
    if np.shape(g.numbers) != (n,):
        raise ValueError(f"graph {i}: numbers must have shape ({n},), got {np.shape(g.numbers)}")
    if g.forces is not None and np.shape(g.forces) != (n, 3):
        raise ValueError(f"graph {i}: forces must have shape ({n}, 3), got {np.shape(g.forces)}")
    if np.shape(g.src_idx) != (e,):
        raise ValueError(
            f"graph {i}: src_idx must have the shape of dst_idx ({e},), got {np.shape(g.src_idx)}"
        )
    if e and (min(np.min(g.dst_idx), np.min(g.src_idx)) < 0
              or max(np.max(g.dst_idx), np.max(g.src_idx)) >= n):
        raise ValueError(f"graph {i}: edge indices must be in 0..{n - 1} (its {n} nodes)")
    for name, value, shape in (("shifts", g.shifts, (e, 3)), ("cell", g.cell, (3, 3)),
                               ("stress", g.stress, (6,))):
        if value is not None and np.shape(value) != shape:
            raise ValueError(f"graph {i}: {name} must have shape {shape}, got {np.shape(value)}")
    if g.shifts is not None and g.cell is None:
        raise ValueError(f"graph {i}: shifts need a cell")
    if n > max_nodes or e > max_edges:
        raise ValueError(
            f"graph {i} has {n} nodes and {e} edges, more than one batch holds "
            f"(max_nodes={max_nodes}, max_edges={max_edges}); raise the limits "
            f"(padding_limits gives sufficient ones)"
        )


def pack_graphs(
    graphs: Sequence[Graph],
    *,
    max_nodes: int,
    max_edges: int,
    max_graphs: int,
    dtype: Any = np.float32,
) -> GraphBatch:
    """Concatenate graphs into one padded :class:`GraphBatch` of fixed size.

    Node indices of graph ``k`` are offset by the number of nodes of graphs ``0..k-1``; each
    graph's edges are sorted by destination (stable), so ``dst_idx`` is sorted.

    Arguments:
        graphs: At most ``max_graphs`` graphs with at most ``max_nodes`` nodes and ``max_edges``
            edges in total.
        max_nodes: ``N``, node slots.
        max_edges: ``E``, edge slots.
        max_graphs: ``G``, graph slots.
        dtype: Float dtype of positions, forces, energies, cells, shifts and stresses.

    Returns:
        A :class:`GraphBatch` of numpy arrays (shapes in its docstring).

    Raises:
        ValueError: If the graphs do not fit or are malformed (the message names the graph).
    """
    for name, v in (("max_nodes", max_nodes), ("max_edges", max_edges), ("max_graphs", max_graphs)):
        check_int(v, name, minimum=1, invalid="{name} must be an int >= 1, got {value!r}")
    for i, g in enumerate(graphs):
        _check_graph(g, i, max_nodes, max_edges)
    n_tot = sum(g.num_nodes for g in graphs)
    e_tot = sum(g.num_edges for g in graphs)
    if len(graphs) > max_graphs or n_tot > max_nodes or e_tot > max_edges:
        raise ValueError(
            f"{len(graphs)} graphs with {n_tot} nodes and {e_tot} edges do not fit in a batch of "
            f"max_graphs={max_graphs}, max_nodes={max_nodes}, max_edges={max_edges}"
        )
    N, E, G = int(max_nodes), int(max_edges), int(max_graphs)
    positions = np.zeros((N, 3), dtype)
    numbers = np.zeros((N,), np.int32)
    forces = np.zeros((N, 3), dtype)
    energies = np.zeros((G,), dtype)
    dst = np.full((E,), N, np.int32)
    src = np.full((E,), N, np.int32)
    node_graph = np.full((N,), G, np.int32)
    cells = np.zeros((G, 3, 3), dtype)
    shifts = np.zeros((E, 3), dtype)
    stresses = np.zeros((G, 6), dtype)
    stress_mask = np.zeros((G,), bool)
    n0 = e0 = 0
    for k, g in enumerate(graphs):
        n, e = g.num_nodes, g.num_edges
        positions[n0:n0 + n] = g.positions
        numbers[n0:n0 + n] = g.numbers
        if g.forces is not None:
            forces[n0:n0 + n] = g.forces
        energies[k] = g.energy
        order = np.argsort(np.asarray(g.dst_idx), kind="stable")
        dst[e0:e0 + e] = np.asarray(g.dst_idx)[order] + n0
        src[e0:e0 + e] = np.asarray(g.src_idx)[order] + n0
        if g.shifts is not None:
            shifts[e0:e0 + e] = np.asarray(g.shifts)[order]
        if g.cell is not None:
            cells[k] = g.cell
        if g.stress is not None:
            stresses[k], stress_mask[k] = g.stress, True
        node_graph[n0:n0 + n] = k
        n0, e0 = n0 + n, e0 + e
    return GraphBatch(
        positions=positions, numbers=numbers, forces=forces, energies=energies,
        dst_idx=dst, src_idx=src, node_graph=node_graph,
        node_mask=np.arange(N) < n0, edge_mask=np.arange(E) < e0,
        graph_mask=np.arange(G) < len(graphs),
        cells=cells, shifts=shifts, stresses=stresses, stress_mask=stress_mask,
    )


def batch_graphs(
    graphs: Sequence[Graph],
    *,
    max_nodes: int,
    max_edges: int,
    max_graphs: int,
    order: Iterable[int] | None = None,
    dtype: Any = np.float32,
) -> Iterator[GraphBatch]:
    """Greedily pack graphs (in ``order``) into padded batches of identical shapes.

    A batch is emitted when the next graph would exceed one of the limits.

    Arguments:
        graphs: The data set.
        max_nodes: ``N``, node slots per batch.
        max_edges: ``E``, edge slots per batch.
        max_graphs: ``G``, graph slots per batch.
        order: Graph indices in the order to pack them (e.g. a random permutation per epoch);
            default ``range(len(graphs))``.
        dtype: Float dtype of positions, forces, energies, cells, shifts and stresses.

    Returns:
        An iterator of :class:`GraphBatch` (see :func:`pack_graphs` for the shapes); every
        graph appears exactly once.

    Raises:
        ValueError: If a single graph exceeds ``max_nodes`` or ``max_edges``.
    """
    idx = range(len(graphs)) if order is None else order
    current: list[Graph] = []
    n = e = 0
    for i in idx:
        g = graphs[int(i)]
        _check_graph(g, int(i), max_nodes, max_edges)
        if current and (len(current) == max_graphs or n + g.num_nodes > max_nodes
                        or e + g.num_edges > max_edges):
            yield pack_graphs(current, max_nodes=max_nodes, max_edges=max_edges,
                              max_graphs=max_graphs, dtype=dtype)
            current, n, e = [], 0, 0
        current.append(g)
        n, e = n + g.num_nodes, e + g.num_edges
    if current:
        yield pack_graphs(current, max_nodes=max_nodes, max_edges=max_edges,
                          max_graphs=max_graphs, dtype=dtype)


def stack_batches(batches: Sequence[GraphBatch]) -> GraphBatch:
    """Stack batches of equal limits along a new leading axis (the data-parallel axis).

    Arguments:
        batches: ``B`` batches built with the same ``max_nodes``, ``max_edges``, ``max_graphs``.

    Returns:
        A :class:`GraphBatch` whose arrays have a leading axis of size ``B``; note that indices
        stay local to each batch (use ``jax.vmap`` over the leading axis).

    Raises:
        ValueError: If ``batches`` is empty or the limits differ.
    """
    if not batches:
        raise ValueError("stack_batches needs at least one batch")
    limits = {(b.max_nodes, b.max_edges, b.max_graphs) for b in batches}
    if len(limits) > 1:
        raise ValueError(f"batches have different (max_nodes, max_edges, max_graphs): {sorted(limits)}")
    fields = [f.name for f in dataclasses.fields(GraphBatch)]
    return GraphBatch(**{f: np.stack([np.asarray(getattr(b, f)) for b in batches]) for f in fields})
