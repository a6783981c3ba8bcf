"""The CG contractions of one block of pairs, on slot-major arrays ``(slots, B, F)``.

``S = sum_t k[p_t] c_t u[a_t] v[b_t] o[o_t]`` per pair and feature (see :mod:`.paths`). Its four
partial derivatives are the only contractions the engine ever runs:

* :func:`contract` with ``table`` gives ``dS/do``, with ``table.grad_u`` ``dS/du`` and with
  ``table.grad_v`` ``dS/dv`` (the factor order follows the table);
* :func:`path_products` gives ``dS/dk`` per pair (summed over pairs by the caller).

Two forms of each, one per schedule (see :mod:`.schedule`):

* looped (``wide=False``, the CPU schedule): a ``fori_loop`` over chunks of at most
  ``MAX_CHUNK`` terms that share one output slot (or path); inside, the terms are unrolled into
  one fused elementwise pass over ``B x F`` that accumulates into its slot in place. Each irrep
  component of a block is one contiguous vector, and compile time is bounded by the chunk
  length, not by the number of terms (which grows like ``L**4``).
* wide (``wide=True``, the GPU schedule): no loop. The terms of every output
  slot are padded to the longest group ``G`` (:func:`~.paths.chunks_full`, 1.2-1.3x the terms
  at degrees 1-4), and ``out = sum_j coef[:, j] u[a[:, j]] v[b[:, j]]`` is ``G`` gathers and
  multiply-adds over all slots at once: one fused kernel of ``no x B x F`` threads. Path
  products use rows of :data:`WIDE_PATH_CHUNK` terms of one path, summed per path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .paths import Table, chunks, chunks_full

#: Terms per row of the wide path products: paths have 1 to ~100 terms, so one padded row per
#: path would hold 2.3-3.1x the terms at degrees 2-4; rows of 8 hold 1.1-1.4x.
WIDE_PATH_CHUNK = 8


def _at(a: jax.Array, i: jax.Array) -> jax.Array:
    """``a[i]`` along axis 0 for a traced index known to be in range."""
    return jax.lax.dynamic_index_in_dim(a, i, keepdims=False, allow_negative_indices=False)


def _wide_sum(g, factors: list[jax.Array], coef: jax.Array) -> jax.Array:
    """``sum_j coef[:, j] * prod_i factors[i][index_i[:, j]]`` over the padded groups ``g``."""
    index = (g.a, g.b, g.o)[: len(factors)]
    # The factors are views (gathers, filters, masks): materialise them once, or XLA may fuse
    # their computation into every one of the ~G x slots reads below (measured 3-4x slower).
    factors = list(jax.lax.optimization_barrier(tuple(factors)))
    out = None
    for j in range(g.c.shape[1]):
        t = coef[:, j]
        for f, ix in zip(factors, index):
            t = t * jnp.take(f, ix[:, j], axis=0)
        out = t if out is None else out + t
    assert out is not None  # every table has at least one (possibly padding) position
    return out


def contract(table: Table, u: jax.Array, v: jax.Array, k: jax.Array, wide: bool = False) -> jax.Array:
    """``out[o] = sum_t k[p_t] c_t u[a_t] v[b_t]``.

    Arguments:
        table: Term table (``nu``, ``nv`` slots in, ``no`` out).
        u: ``(nu, B, F)``.
        v: ``(nv, B, F)``.
        k: ``(npath, F)``.
        wide: Vectorised over the terms (GPU schedule) instead of a loop over chunks.

    Returns:
        ``(no, B, F)``.
    """
    if wide:
        g = chunks_full(table)
        coef = (k[g.p] * jnp.asarray(g.c, k.dtype)[..., None])[:, :, None, :]  # (no, G, 1, F)
        return _wide_sum(g, [u, v], coef)
    ch = chunks(table)
    coef = k[ch.p] * jnp.asarray(ch.c, k.dtype)[..., None]  # (n, chunk, F)
    ia, ib, target = jnp.asarray(ch.a), jnp.asarray(ch.b), jnp.asarray(ch.target)

    def body(i, out):
        acc = _at(u, ia[i, 0]) * _at(v, ib[i, 0]) * coef[i, 0]
        for t in range(1, ch.c.shape[1]):
            acc = acc + _at(u, ia[i, t]) * _at(v, ib[i, t]) * coef[i, t]
        return out.at[target[i]].add(acc)

    out = jnp.zeros((table.no,) + u.shape[1:], u.dtype)
    return jax.lax.fori_loop(0, ch.target.shape[0], body, out)


def path_products(table: Table, u: jax.Array, v: jax.Array, o: jax.Array, wide: bool = False) -> jax.Array:
    """``dS/dk`` per pair: ``out[p] = sum_{t in p} c_t u[a_t] v[b_t] o[o_t]``.

    Arguments:
        table: Term table.
        u: ``(nu, B, F)``.
        v: ``(nv, B, F)``.
        o: ``(no, B, F)``.
        wide: Vectorised over the terms (GPU schedule) instead of a loop over chunks.

    Returns:
        ``(npath, B, F)``; the caller sums over the pairs (once, at the end: a reduction over a
        non-minor axis per block is slow on CPU).
    """
    if wide:  # rows of WIDE_PATH_CHUNK terms of one path, then the rows summed per path
        g = chunks(table, True, WIDE_PATH_CHUNK)
        rows = _wide_sum(g, [u, v, o], jnp.asarray(g.c, u.dtype)[:, :, None, None])
        return jax.ops.segment_sum(rows, jnp.asarray(g.target), table.npath, indices_are_sorted=True)
    ch = chunks(table, by_path=True)
    ia, ib, io, target = (jnp.asarray(x) for x in (ch.a, ch.b, ch.o, ch.target))
    coef = jnp.asarray(ch.c, u.dtype)

    def body(i, acc):
        s = _at(u, ia[i, 0]) * _at(v, ib[i, 0]) * _at(o, io[i, 0]) * coef[i, 0]
        for t in range(1, ch.c.shape[1]):
            s = s + _at(u, ia[i, t]) * _at(v, ib[i, t]) * _at(o, io[i, t]) * coef[i, t]
        return acc.at[target[i]].add(s)

    out = jnp.zeros((table.npath,) + u.shape[1:], u.dtype)
    return jax.lax.fori_loop(0, ch.target.shape[0], body, out)
