"""Graph reductions of attention that are not a message pass, as programs of the engine.

* :func:`pair_logits`: per pair ``e = (i <- j)`` and feature ``f``,
  ``s[e, f] = sum_(p, l, m) r[e, (p, l), f] * k[j, (p, l, m), f] * q[i, (p, l, m), f]``
  (e3x's relative-position-weighted dot product of queries and keys, before the per-head sum):
  the pair-weight derivative ``dS/dw`` of the engine's form with a "dot-product" table (one path,
  coefficient 1, the ``(p, l)`` slot of ``r`` shared by all ``m``).
* :func:`weighted_sum`: ``out[i] = sum_(e: dst = i) w[e, f] * v[src[e]]`` (values without a tensor
  product): the form's output with a constant unit first factor.

Both run block by block like ``MessagePass`` (nothing of size ``pairs x (L+1)**2 x F`` is
materialised) and their derivatives of every order are the engine's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .graph import FlatGraph, pad, padded
from .paths import Table
from .primitive import call, call_single
from .program import HOLE, Graph, Program, Term

__all__ = ["dot_table", "pair_logits", "sum_table", "weighted_sum"]


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
        pad(jnp.transpose(r, (1, 0, 2)), graph.num_pairs, 1),
        keys,
        pad(queries, rows, 0),
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
        pad(w[None], graph.num_pairs, 1),
        jnp.ones((1, f), values.dtype),
    ]
    term = Term(0, ("bias", 0), ("gather", 1, 2), ("gather", HOLE), 3)
    out = call_single(
        _base(sum_table(s), graph),
        ("bias", "X", "w", "k"),
        [a.shape for a in ops],
        ops,
        (term,),
        ("G", (rows, s, f)),
        index,
    )
    return out[: fg.graph.num_segments]
