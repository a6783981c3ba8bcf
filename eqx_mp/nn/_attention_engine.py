"""The two graph reductions of attention that are not a message pass, as programs of the one
contraction engine (:mod:`eqx_mp.nn._cg`), plus the index folding they share with it.

* :func:`pair_logits`: per pair ``e = (i <- j)`` and feature ``f``,
  ``s[e, f] = sum_(p, l, m) r[e, (p, l), f] * k[j, (p, l, m), f] * q[i, (p, l, m), f]``
  (e3x's relative-position-weighted dot product of queries and keys, before the per-head sum).
  It is the pair-weight derivative ``dS/dw`` of the engine's trilinear form with a "dot-product"
  table (one path, coefficient 1, the ``(p, l)`` slot of ``r`` shared by all ``m``).
* :func:`weighted_sum`: ``out[i] = sum_(e: dst = i) w[e, f] * v[src[e]]`` (values without a
  tensor product): the form's output with a constant unit first factor.

Both run block by block like ``MessagePass``: nothing of size ``pairs x (L+1)**2 x F`` is
materialised, and their JVP/transpose/batching rules are the engine's (derivatives of every order
stay on it).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._cg.paths import Table
from ._cg.engine import padded_size
from ._cg.primitive import _pad, call
from ._cg.program import HOLE, Graph, Program, Term

__all__ = ["FlatGraph", "flat_graph", "pair_logits", "weighted_sum"]


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
        return graph, (_pad(src, e_pad, 0), _pad(valid, e_pad, 0, False)), rows
    e_pad = padded_size(g.num_pairs)
    src, dst, valid = fg.index
    graph = Graph("sparse", e_pad, g.num_nodes, g.num_segments, 0, g.dst_sorted)
    index = (_pad(src, e_pad, 0), _pad(dst, e_pad, 0, g.num_segments), _pad(valid, e_pad, 0, False))
    return graph, index, g.num_segments


@functools.lru_cache(maxsize=None)
def dot_table(parity: int, max_degree: int) -> Table:
    """``out[(p,l,m)] = u[(p,l)] * v[(p,l,m)]``: a per-degree weighted dot product (one path)."""
    d = (max_degree + 1) ** 2
    terms = []
    for p in range(parity):
        for l in range(max_degree + 1):
            for i in range(2 * l + 1):
                slot = p * d + l * l + i
                terms.append((p * (max_degree + 1) + l, slot, slot, 0, 1.0))
    return Table(parity * (max_degree + 1), parity * d, parity * d, 1, tuple(terms))


@functools.lru_cache(maxsize=None)
def sum_table(slots: int) -> Table:
    """``out[s] = u[0] * v[s]``: the unit first factor passes the second through."""
    return Table(1, slots, slots, 1, tuple((0, s, s, 0, 1.0) for s in range(slots)))


def _base(table: Table, graph: Graph) -> Program:
    return Program(table, graph, 0, None, (), (), (), ())


def pair_logits(
    r: jax.Array, keys: jax.Array, queries: jax.Array, fg: FlatGraph, parity: int, max_degree: int
) -> jax.Array:
    """Per-pair, per-feature relative-position-weighted dot products of queries and keys.

    Arguments:
        r: ``(E, parity * (max_degree+1), F)`` per-pair weights of each ``(p, l)`` block.
        keys: ``(N, parity * (max_degree+1)**2, F)`` node keys (gathered at the sources).
        queries: ``(N', parity * (max_degree+1)**2, F)`` node queries (at the destinations).
        fg: The folded graph.
        parity, max_degree: Layout of keys and queries.

    Returns:
        ``(E, F)``; 0 for invalid pairs.
    """
    f = keys.shape[-1]
    e = fg.graph.num_pairs
    graph, index, rows = padded(fg)
    ops = [
        _pad(jnp.transpose(r, (1, 0, 2)), graph.num_pairs, 1),
        keys,
        _pad(queries, rows, 0),
        jnp.ones((1, f), keys.dtype),
    ]
    term = Term(0, ("pair", 0), ("gather", 1, HOLE), ("gather", 2), 3)
    (out,) = call(
        _base(dot_table(parity, max_degree), graph),
        ("u", "X", "G", "k"),
        tuple(a.shape for a in ops),
        ops,
        (term,),
        (("w", (1, graph.num_pairs, f)),),
        index,
    )
    if out is None:  # pragma: no cover - only when no term survives pruning
        return jnp.zeros((e, f), keys.dtype)
    return out[0, :e]


def weighted_sum(w: jax.Array, values: jax.Array, fg: FlatGraph) -> jax.Array:
    """``out[i] = sum_(e: dst(e) = i, valid) w[e] * values[src(e)]`` on the engine.

    Arguments:
        w: ``(E, F)`` pair weights.
        values: ``(N, S, F)`` node values (``S`` slots).
        fg: The folded graph.

    Returns:
        ``(N', S, F)``.
    """
    n, s, f = values.shape
    graph, index, rows = padded(fg)
    ops = [
        jnp.ones((f,), values.dtype),
        values,
        _pad(w[None], graph.num_pairs, 1),
        jnp.ones((1, f), values.dtype),
    ]
    term = Term(0, ("bias", 0), ("gather", 1, 2), ("gather", HOLE), 3)
    (out,) = call(
        _base(sum_table(s), graph),
        ("bias", "X", "w", "k"),
        tuple(a.shape for a in ops),
        ops,
        (term,),
        (("G", (rows, s, f)),),
        index,
    )
    return out[: fg.graph.num_segments]
