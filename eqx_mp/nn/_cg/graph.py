"""A neighbour list as the engine sees it: batch axes folded into one graph, the pair axis padded.

:func:`flat_graph` folds a dense (``adj_idx``, ``where``) or sparse (``dst_idx``, ``src_idx``) list
with leading batch axes into one graph (per-graph index offsets; out-of-range indices mark invalid
pairs); :func:`padded` pads its pair axis once (to :func:`~.engine.padded_size`) so that every
program derived from one call (derivatives, transposes) runs on the same arrays.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .engine import padded_size
from .program import Graph

__all__ = ["FlatGraph", "flat_graph", "pad", "padded"]


def pad(a: jax.Array, n: int, axis: int, value=0) -> jax.Array:
    """Pad ``axis`` of ``a`` to ``n`` entries with ``value`` (padded pairs are invalid or zero)."""
    if a.shape[axis] == n:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, n - a.shape[axis])
    return jnp.pad(a, widths, constant_values=value)


@dataclasses.dataclass(frozen=True)
class FlatGraph:
    """A (batched) neighbour list folded into one graph for the engine.

    Attributes:
        graph: The engine's static :class:`~eqx_mp.nn._cg.program.Graph` of the unpadded pairs
            (what :func:`~eqx_mp.nn._cg.message_pass` takes; :func:`padded` gives the padded one
            the programs here run on).
        index: ``(src, valid)`` (dense) or ``(src, dst, valid)`` (sparse) flat index arrays.
        pair_shape: Shape of the caller's pair axes (``adj_idx.shape`` or ``dst_idx.shape``).
        batch: Leading batch shape.
    """

    graph: Graph
    index: tuple
    pair_shape: tuple
    batch: tuple

    @property
    def valid(self) -> jax.Array:
        """``(E,)`` bool: which pairs take part."""
        return self.index[-1]


def flat_graph(
    num_nodes: int,
    num_segments: int,
    batch: tuple,
    *,
    adj_idx=None,
    where=None,
    dst_idx=None,
    src_idx=None,
    indices_are_sorted: bool = False,
) -> FlatGraph:
    """Fold a dense (``adj_idx``, ``where``) or sparse (``dst_idx``, ``src_idx``) list with batch
    axes ``batch`` into one graph: sources index ``num_nodes`` nodes, destinations
    ``num_segments`` segments per batch entry. Out-of-range indices mark invalid pairs."""
    nb = int(np.prod(batch, dtype=np.int64))
    offsets = jnp.arange(nb, dtype=jnp.int32).reshape(batch + (1,)) if batch else 0
    n = num_nodes
    if adj_idx is not None:
        m = adj_idx.shape[-1]
        valid = (adj_idx >= 0) & (adj_idx < n)
        if where is not None:
            valid = valid & where
        src = jnp.clip(adj_idx, 0, max(n - 1, 0)).astype(jnp.int32).reshape(batch + (-1,))
        src = (src + offsets * n).reshape(-1)
        graph = Graph("dense", int(src.shape[0]), nb * n, nb * num_segments, m)
        return FlatGraph(graph, (src, valid.reshape(-1)), tuple(adj_idx.shape), batch)
    if src_idx is None or dst_idx is None:
        raise ValueError("flat_graph needs adj_idx, or both dst_idx and src_idx")
    valid = (src_idx >= 0) & (src_idx < n) & (dst_idx >= 0) & (dst_idx < num_segments)
    src = jnp.clip(src_idx, 0, max(n - 1, 0)).astype(jnp.int32)
    src = (src + offsets * n).reshape(-1)
    dst = jnp.where(valid, dst_idx + offsets * num_segments, nb * num_segments).astype(jnp.int32)
    graph = Graph(
        "sparse",
        int(src.shape[0]),
        nb * n,
        nb * num_segments,
        0,
        bool(indices_are_sorted) and not batch,
    )
    return FlatGraph(graph, (src, dst.reshape(-1), valid.reshape(-1)), tuple(src_idx.shape), batch)


def padded(fg: FlatGraph) -> tuple[Graph, tuple, int]:
    """The engine graph with the pair axis padded once (as ``_cg.message_pass`` does: padding
    pairs invalid; dense lists padded by whole rows), its index arrays and the number of output
    rows (dense: padded rows; sparse: ``num_segments``)."""
    g = fg.graph
    if g.mode == "dense":
        rows = padded_size(g.num_pairs // g.neighbours)
        e_pad = rows * g.neighbours
        src, valid = fg.index
        graph = Graph("dense", e_pad, g.num_nodes, rows, g.neighbours)
        return graph, (pad(src, e_pad, 0), pad(valid, e_pad, 0, False)), rows
    e_pad = padded_size(g.num_pairs)
    src, dst, valid = fg.index
    graph = Graph("sparse", e_pad, g.num_nodes, g.num_segments, 0, g.dst_sorted)
    index = (pad(src, e_pad, 0), pad(dst, e_pad, 0, g.num_segments), pad(valid, e_pad, 0, False))
    return graph, index, g.num_segments
