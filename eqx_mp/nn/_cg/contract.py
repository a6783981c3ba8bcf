"""The CG contractions of one block of pairs, on slot-major arrays ``(slots, B, F)``.

``S = sum_t k[p_t] c_t u[a_t] v[b_t] o[o_t]`` per pair and feature (see :mod:`.paths`). Its four
partial derivatives are the only contractions the engine ever runs:

* :func:`contract` with ``table`` gives ``dS/do``, with ``table.grad_u`` ``dS/du`` and with
  ``table.grad_v`` ``dS/dv`` (the factor order follows the table);
* :func:`path_products` gives ``dS/dk`` per pair (summed over pairs by the caller).

Each is a ``fori_loop`` over chunks of at most ``MAX_CHUNK`` terms that share one output slot (or
path); inside, the terms are unrolled into one fused elementwise pass over ``B x F`` that
accumulates into its slot. Each irrep component of a block is one contiguous vector, and compile
time is bounded by the chunk length, not by the number of terms (which grows like ``L**4``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .paths import Table, chunks


def _at(a: jax.Array, i: jax.Array) -> jax.Array:
    """``a[i]`` along axis 0 for a traced index known to be in range."""
    return jax.lax.dynamic_index_in_dim(a, i, keepdims=False, allow_negative_indices=False)


def contract(table: Table, u: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
    """``out[o] = sum_t k[p_t] c_t u[a_t] v[b_t]``.

    Arguments:
        table: Term table (``nu``, ``nv`` slots in, ``no`` out).
        u: ``(nu, B, F)``.
        v: ``(nv, B, F)``.
        k: ``(npath, F)``.

    Returns:
        ``(no, B, F)``.
    """
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


def path_products(table: Table, u: jax.Array, v: jax.Array, o: jax.Array) -> jax.Array:
    """``dS/dk`` per pair: ``out[p] = sum_{t in p} c_t u[a_t] v[b_t] o[o_t]``.

    Arguments:
        table: Term table.
        u: ``(nu, B, F)``.
        v: ``(nv, B, F)``.
        o: ``(no, B, F)``.

    Returns:
        ``(npath, B, F)``; the caller sums over the pairs (once, at the end: a reduction over a
        non-minor axis per block is slow on CPU).
    """
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


def _stack(arrays: list[jax.Array]) -> tuple[jax.Array, list[int]]:
    """Distinct arrays (by identity) stacked along the slot axis, and each array's offset."""
    distinct: dict[int, tuple[int, jax.Array]] = {}
    size = 0
    for a in arrays:
        if id(a) not in distinct:
            distinct[id(a)] = (size, a)
            size += a.shape[0]
    stacked = [a for _, a in distinct.values()]
    stack = jnp.concatenate(stacked, axis=0) if len(stacked) > 1 else stacked[0]
    return stack, [distinct[id(a)][0] for a in arrays]


@functools.lru_cache(maxsize=None)
def _side_by_side(tables: tuple[Table, ...], offsets: tuple[tuple[int, ...], ...], slots: int,
                  by_path: bool) -> Table:
    """One table whose terms are ``tables``' terms with factor, output and path indices offset."""
    terms, out, paths = [], 0, 0
    for t, off in zip(tables, offsets):
        for a, b, o, p, c in t.terms:
            if by_path:
                terms.append((a + off[0], b + off[1], o + off[2], p + paths, c))
            else:
                terms.append((a + off[0], b + off[1], o + out, p + paths, c))
        out += t.no
        paths += t.npath
    return Table(slots, slots, slots if by_path else out, paths, tuple(terms))


def contract_many(tables: tuple[Table, ...], operands: list[tuple[jax.Array, jax.Array, jax.Array]]
                  ) -> list[jax.Array]:
    """Several :func:`contract` calls ``(table, u, v, k)`` as one chunk loop.

    The distinct factors are stacked along the slot axis and the tables placed side by side
    (indices offset), so the block runs one loop, whatever the number of contractions.

    Returns:
        One ``(no, B, F)`` result per table.
    """
    if len(tables) == 1:
        (u, v, k), = operands
        return [contract(tables[0], u, v, k)]
    stack, offs = _stack([x for u, v, _ in operands for x in (u, v)])
    offsets = tuple((offs[2 * i], offs[2 * i + 1], 0) for i in range(len(tables)))
    combined = _side_by_side(tables, offsets, stack.shape[0], False)
    out = contract(combined, stack, stack, jnp.concatenate([k for _, _, k in operands], axis=0))
    starts = np.cumsum([0] + [t.no for t in tables])
    return [out[starts[i]:starts[i + 1]] for i in range(len(tables))]


def path_products_many(table: Table, operands: list[tuple[jax.Array, jax.Array, jax.Array]]
                       ) -> list[jax.Array]:
    """Several :func:`path_products` calls ``(u, v, o)`` of one table as one chunk loop.

    Returns:
        One ``(npath, B, F)`` result per operand triple.
    """
    if len(operands) == 1:
        return [path_products(table, *operands[0])]
    stack, offs = _stack([x for triple in operands for x in triple])
    offsets = tuple(tuple(offs[3 * i: 3 * i + 3]) for i in range(len(operands)))
    combined = _side_by_side((table,) * len(operands), offsets, stack.shape[0], True)
    out = path_products(combined, stack, stack, stack)
    return [out[i * table.npath:(i + 1) * table.npath] for i in range(len(operands))]
