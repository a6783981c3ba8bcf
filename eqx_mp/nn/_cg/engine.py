"""The block loop that evaluates a :class:`~.program.Program` (the primitive's implementation).

Pairs are cut into blocks sized by the :class:`~.schedule.Schedule`: a few hundred pairs on the
CPU schedule (a cache's worth), the whole pair axis on the GPU schedule (blocks only beyond its
memory budget). A ``fori_loop`` over the blocks (none when there is one) runs, for one block: the
views its terms need (filters ``basis @ W``, gathered and weighted inputs, gathered output
cotangents, per-pair slices), one CG contraction per :class:`~.program.Group` (looped or wide,
see :mod:`.contract`), and the adjoint of each hole view (a scatter to nodes, a per-pair write,
or a sum over pairs into parameter gradients). Nothing of size ``pairs x slots x F`` is
materialised outside a block.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from .contract import contract, path_products
from .paths import chunks, partial_tables
from .program import HOLE, Program, plan
from .schedule import CPU_BLOCK_BYTES, Schedule

#: Per hole slot: the table attribute (``None`` = the table itself) and the factor order.
_FACTORS = {"O": (None, ("U", "V")), "U": ("grad_u", ("O", "V")), "V": ("grad_v", ("U", "O"))}
_HI = jax.lax.Precision.HIGHEST


def _features(program: Program) -> int:
    return program.shapes[program.terms[0].K][-1]


def _slots_per_pair(program: Program) -> int:
    """Working set per pair and feature, in slots: every view a block computes plus two
    contraction results (the one being computed and the contributions being accumulated)."""
    t = program.table
    views: dict[str, set] = {s: set() for s in "UVO"}
    result = 1
    for grp in plan(program.terms):
        slots = [s for s in ("U", "V", "O", "K") if s != grp.hole]
        for s, fac in zip(slots, grp.factors):
            if s != "K":
                views[s].update(fac)
        result = max(result, {"U": t.nu, "V": t.nv, "O": t.no, "K": t.npath}[grp.hole])
        if grp.k_factor is not None:
            result = max(result, t.npath, partial_tables(t, grp.hole)[0].no
                         if _fuse_path_gradient(t, grp.hole) else 0)
    size = {"U": t.nu, "V": t.nv, "O": t.no}
    return sum(len(views[s]) * size[s] for s in "UVO") + 2 * result


def blocking(program: Program, schedule: Schedule, itemsize: int = 4) -> tuple[int, int]:
    """``(pairs per block, number of blocks)`` of a program under a schedule.

    CPU: about ``schedule.block_bytes`` of working set (at least 32 pairs, one dense row), a
    power of two that divides the (padded) pairs. GPU: all pairs in one block while their
    working set fits ``schedule.block_bytes``; beyond, as few equal blocks as fit (whole dense
    rows), the pair axis padded up to their total by :func:`run`.
    """
    g = program.graph
    if not schedule.wide:
        block = block_size(program, schedule.block_bytes)
        return block, g.num_pairs // block
    per_pair = itemsize * _features(program) * _slots_per_pair(program)
    unit = g.neighbours if g.mode == "dense" else 8
    units = -(-g.num_pairs // unit)
    fit = max(schedule.block_bytes // (per_pair * unit), 1)
    nblocks = -(-units // fit)
    return -(-units // nblocks) * unit, nblocks


def block_size(program: Program, block_bytes: int = CPU_BLOCK_BYTES) -> int:
    """Pairs per block of the CPU schedule: about ``block_bytes`` of working set, at least one
    dense row, a power of two (of rows) that divides the pairs (see :func:`padded_size`)."""
    g = program.graph
    ideal = max(block_bytes // (4 * _features(program) * _slots_per_pair(program)), 32)
    if g.mode == "dense":  # whole rows of M pairs; a power of two of rows that divides the rows
        rows = g.num_pairs // g.neighbours
        return min(_pow2_floor(max(ideal // g.neighbours, 1)), _lowbit(rows)) * g.neighbours
    return min(_pow2_floor(ideal), _lowbit(g.num_pairs))


def _pow2_floor(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


def _lowbit(n: int) -> int:
    """Largest power of two that divides ``n`` (``n > 0``)."""
    return n & -n


def padded_size(n: int) -> int:
    """``n`` pairs (or dense rows) rounded up to a multiple of a power of two ``g`` (``8 <= g <=
    512``, at most 1/8 of ``n``), so that blocks of up to ``g`` divide it: the callers pad once,
    and every program derived from a call (derivatives, transposes) runs on the same padded
    arrays."""
    g = min(max(_pow2_floor(max(n // 8, 1)), 8), 512)
    return -(-n // g) * g


def _slice(a: jax.Array, start: jax.Array, size: int, axis: int) -> jax.Array:
    return jax.lax.dynamic_slice_in_dim(a, start, size, axis)


@functools.lru_cache(maxsize=None)
def _slot_degrees(max_degree: int) -> np.ndarray:
    """Degree ``l`` of each slot ``l**2 .. (l+1)**2 - 1``."""
    return np.repeat(np.arange(max_degree + 1), 2 * np.arange(max_degree + 1) + 1).astype(np.int32)


def _per_pair(kind: str, shape: tuple) -> bool:
    """Whether an operand/output of this kind and shape has one entry per pair."""
    return kind in ("basis", "u", "v", "g") or (kind == "w" and shape[1] != 1)


class _Block:
    """Views of one block of pairs, computed on first use and cached for the block's terms."""

    def __init__(self, program: Program, ops: list, index: dict, i: jax.Array, block: int):
        self.p, self.ops, self.block, self.i = program, ops, block, i
        self.start = i * block
        g = program.graph
        self.valid = None if g.mode == "pairs" else _slice(index["valid"], self.start, block, 0)
        self.src = None if g.mode == "pairs" else _slice(index["src"], self.start, block, 0)
        self.dst = _slice(index["dst"], self.start, block, 0) if g.mode == "sparse" else None
        self.cache: dict = {}

    def _cached(self, key, fn):
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    def mask(self, a: jax.Array, axis: int = 1) -> jax.Array:
        if self.valid is None:
            return a
        shape = [1] * a.ndim
        shape[axis] = self.block
        return jnp.where(self.valid.reshape(shape), a, 0)

    def operand(self, i: int) -> jax.Array:
        """Operand ``i``; per-pair operands sliced to the block (masked basis)."""
        kind, shape = self.p.kinds[i], self.p.shapes[i]
        if not _per_pair(kind, shape):
            return self.ops[i]

        def get():
            a = _slice(self.ops[i], self.start, self.block, 1)
            return self.mask(a) if kind == "basis" else a

        return self._cached(("operand", i), get)

    def gathered(self, i: int) -> jax.Array:
        """Node operand ``X`` gathered at the block's sources, slot-major ``(nv, B, F)``."""
        return self._cached(("gathered", i), lambda: jnp.transpose(self.ops[i][self.src], (1, 0, 2)))

    def view(self, slot: str, view: tuple) -> jax.Array:
        return self._cached(("view", slot, view), lambda: self._view(slot, view))

    def _view(self, slot: str, view: tuple) -> jax.Array:
        kind = view[0]
        if kind == "pair":
            return self.operand(view[1])
        if kind == "k":
            return self.ops[view[1]]
        if slot == "U":  # filter: one matrix product per slot, batched over the slots
            return jnp.einsum("mbk,mkf->mbf", self.operand(view[1]), self.slot_weights(view[2]),
                              precision=self.p.precision)
        if slot == "V":  # gather (and weigh) the inputs at the sources
            v = self.gathered(view[1])
            if view[2] is not None:
                v = v * self.operand(view[2])
            return self.mask(v)
        g = self.p.graph  # slot O: gather the outputs' cotangents at the destinations
        arr = self.ops[view[1]]
        if g.mode == "dense":
            rows = self.block // g.neighbours
            r = jnp.transpose(_slice(arr, self.i * rows, rows, 0), (1, 0, 2))
            r = jnp.broadcast_to(r[:, :, None], (r.shape[0], rows, g.neighbours, r.shape[-1]))
            return self.mask(r.reshape(r.shape[0], self.block, r.shape[-1]))
        o = arr.at[self.dst].get(mode="fill", fill_value=0, indices_are_sorted=g.dst_sorted)
        return self.mask(jnp.transpose(o, (1, 0, 2)))

    def slot_weights(self, i: int) -> jax.Array:
        """Filter weights ``(Lb+1, K, F)`` repeated per slot: ``((Lb+1)**2, K, F)``."""
        return self._cached(("slot_weights", i),
                            lambda: self.ops[i][_slot_degrees(self.p.basis_max_degree)])

    def factor(self, slot: str, views: tuple) -> jax.Array:
        """A sum of views of one slot (bias views add to the scalar slot of ``U``)."""
        if slot == "K":
            k = self.ops[views[0][1]]
            for v in views[1:]:
                k = k + self.ops[v[1]]
            return k
        total: jax.Array | None = None
        biases: list[jax.Array] = []
        for v in views:
            if v[0] == "bias":
                biases.append(self.ops[v[1]])
                continue
            a = self.view(slot, v)
            total = a if total is None else total + a
        if biases:
            b = biases[0]
            for extra in biases[1:]:
                b = b + extra
            if total is None:
                f = b.shape[-1]
                total = jnp.zeros((self.p.table.nu, self.block, f), b.dtype).at[0].set(
                    jnp.broadcast_to(b, (self.block, f)))
            else:
                total = total.at[0].add(b)
        assert total is not None, views  # a factor has at least one view
        return total

    def adjoint(self, slot: str, view: tuple, r: jax.Array) -> jax.Array:
        """Contribution of the contraction result ``r`` (``dS/d slot``) to the hole operand."""
        kind = view[0]
        if kind in ("pair", "k") or (slot == "O"):
            return r
        if kind == "bias":
            return r[0]
        if slot == "U":  # filter: basis or W
            prec = self.p.precision
            if view[1] == HOLE:
                return jnp.einsum("mbf,mkf->mbk", r, self.slot_weights(view[2]), precision=prec)
            per_slot = jnp.einsum("mbk,mbf->mkf", self.operand(view[1]), r, precision=prec)
            return jax.ops.segment_sum(per_slot, _slot_degrees(self.p.basis_max_degree),
                                       num_segments=self.p.basis_max_degree + 1, indices_are_sorted=True)
        if view[1] == HOLE:  # V: the inputs X (scattered by the caller)
            return r if view[2] is None else r * self.operand(view[2])
        return r * self.gathered(view[1])  # V: the weights w (reduced by the caller)


@functools.lru_cache(maxsize=None)
def _fuse_path_gradient(table, hole: str) -> bool:
    """Whether the per-path partial sums are cheaper than a separate path-gradient contraction.

    Cost = chunk iterations, a path-gradient chunk (four loads per term) counting 4/3. The partial
    sums win from degree 3 on (e.g. 1.4x fewer loads at degree 4) and lose at low degrees.
    """
    t = {"U": "grad_u", "V": "grad_v", "O": None}[hole]
    plain = chunks(getattr(table, t) if t else table).target.size + 4 / 3 * chunks(table, True).target.size
    return sum(chunks(x).target.size for x in partial_tables(table, hole)) < plain


def _contractions(blk: _Block, table, grp, wide: bool) -> list[tuple[str, tuple, jax.Array]]:
    """Run one group's contraction on a block: ``[(hole slot, adjoints, dS/d hole), ...]``."""
    slots = [s for s in ("U", "V", "O", "K") if s != grp.hole]
    f = {s: blk.factor(s, v) for s, v in zip(slots, grp.factors)}
    if grp.hole == "K":
        return [("K", grp.adjoints, path_products(table, f["U"], f["V"], f["O"], wide))]
    t, (f1, f2) = _FACTORS[grp.hole]
    hole_table = getattr(table, t) if t else table
    if grp.k_factor is None:
        return [(grp.hole, grp.adjoints, contract(hole_table, f[f1], f[f2], f["K"], wide))]
    if wide or not _fuse_path_gradient(table, grp.hole):
        f_k = dict(f, **{grp.hole: blk.factor(grp.hole, grp.k_factor)})
        return [(grp.hole, grp.adjoints, contract(hole_table, f[f1], f[f2], f["K"], wide)),
                ("K", grp.k_adjoints, path_products(table, f_k["U"], f_k["V"], f_k["O"], wide))]
    # the hole's contraction and the path gradient from one set of per-path partial sums
    tq, tr, tk = partial_tables(table, grp.hole)
    ones = jnp.ones((1,) + f[f1].shape[1:], f[f1].dtype)
    q = contract(tq, f[f1], f[f2], jnp.ones_like(f["K"]))
    r = contract(tr, q, ones, f["K"])
    rk = contract(tk, blk.factor(grp.hole, grp.k_factor), q, ones[0, :1])
    return [(grp.hole, grp.adjoints, r), ("K", grp.k_adjoints, rk)]


def _initial(program: Program, j: int, block: int, dtype) -> jax.Array:
    kind, shape = program.outputs[j]
    if kind == "bias":
        return jnp.zeros((block,) + tuple(shape), dtype)
    if kind == "k":
        return jnp.zeros((shape[0], block, shape[1]), dtype)
    if kind == "w" and not _per_pair(kind, shape):  # broadcast over pairs: summed at the end
        return jnp.zeros((shape[0], block, shape[2]), dtype)
    return jnp.zeros(shape, dtype)


def _pad_pairs(program: Program, ops: list, index: dict, pairs: int) -> tuple[Program, list, dict]:
    """The program and its operands with the pair axis padded to ``pairs`` (invalid pairs; dense
    lists by whole rows): per-pair operands get zeros, ``valid`` False, ``dst`` the dropped row."""
    g = program.graph

    def resize(kind: str, shape: tuple) -> tuple:
        if _per_pair(kind, shape):
            return (shape[0], pairs) + tuple(shape[2:])
        if kind == "G" and g.mode == "dense":
            return (pairs // g.neighbours,) + tuple(shape[1:])
        return tuple(shape)

    def grow(a: jax.Array, shape: tuple, value=0) -> jax.Array:
        widths = [(0, n - m) for n, m in zip(shape, a.shape)]
        return a if all(w == (0, 0) for w in widths) else jnp.pad(a, widths, constant_values=value)

    shapes = tuple(resize(k, s) for k, s in zip(program.kinds, program.shapes))
    ops = [grow(a, s) for a, s in zip(ops, shapes)]
    fill = {"src": 0, "dst": g.num_segments, "valid": False}
    index = {k: grow(a, (pairs,), fill[k]) for k, a in index.items()}
    graph = dataclasses.replace(g, num_pairs=pairs)
    outputs = tuple((k, resize(k, s)) for k, s in program.outputs)
    return dataclasses.replace(program, graph=graph, shapes=shapes, outputs=outputs), ops, index


def run(program: Program, *args: jax.Array, schedule: Schedule) -> list[jax.Array]:
    """Evaluate ``program`` on its float operands followed by its index operands.

    Arguments:
        program: What to compute.
        *args: The float operands (``program.kinds``), then the index operands
            (``program.graph.index_names``).
        schedule: How (block sizes, looped or wide contractions; see :mod:`.schedule`).

    Returns:
        One array per output, of the shapes in ``program.outputs``.
    """
    g = program.graph
    n = len(program.kinds)
    ops = list(args[:n])
    index = dict(zip(g.index_names, args[n:]))
    dtype = ops[0].dtype
    if g.num_pairs == 0:
        return [jnp.zeros(shape, dtype) for _, shape in program.outputs]
    block, nblocks = blocking(program, schedule, jnp.dtype(dtype).itemsize)
    original = program
    if nblocks * block != g.num_pairs:
        if not schedule.wide:  # pragma: no cover - guarded by padded_size
            raise ValueError(f"{g.num_pairs} pairs are not a multiple of the block ({block})")
        program, ops, index = _pad_pairs(program, ops, index, nblocks * block)
    results = _run_blocks(program, ops, index, block, nblocks, schedule.wide)
    return [r if r.shape == tuple(s) else r[tuple(slice(0, m) for m in s)]
            for r, (_, s) in zip(results, original.outputs)]


def _run_blocks(program: Program, ops: list, index: dict, block: int, nblocks: int,
                wide: bool) -> list[jax.Array]:
    """The loop over ``nblocks`` blocks of ``block`` pairs (no loop for one block)."""
    g, table = program.graph, program.table
    dtype = ops[0].dtype
    groups = plan(program.terms)

    def body(i, carry):
        blk = _Block(program, ops, index, i, block)
        contrib: dict[int, jax.Array] = {}
        for grp in groups:
            for hole_slot, adjoints, r in _contractions(blk, table, grp, wide):
                for j, view in adjoints:
                    c = blk.adjoint(hole_slot, view, r)
                    kind, shape = program.outputs[j]
                    if kind == "w":  # sum over the axes along which the weights broadcast
                        axes = tuple(ax for ax in (0, 2) if shape[ax] == 1)
                        c = jnp.sum(c, axis=axes, keepdims=True) if axes else c
                    contrib[j] = c if j not in contrib else contrib[j] + c
        carry = list(carry)
        for j, c in contrib.items():
            kind, shape = program.outputs[j]
            acc = carry[j]
            if kind == "G" and g.mode == "dense":
                rows = block // g.neighbours
                msg = jnp.sum(c.reshape(c.shape[0], rows, g.neighbours, c.shape[-1]), axis=2)
                acc = jax.lax.dynamic_update_slice_in_dim(acc, jnp.transpose(msg, (1, 0, 2)), i * rows, 0)
            elif kind == "G":
                acc = acc.at[blk.dst].add(jnp.transpose(c, (1, 0, 2)), mode="drop",
                                          indices_are_sorted=g.dst_sorted)
            elif kind == "X":
                acc = acc.at[blk.src].add(jnp.transpose(c, (1, 0, 2)))
            elif _per_pair(kind, shape):
                acc = jax.lax.dynamic_update_slice_in_dim(acc, c, blk.start, 1)
            else:
                acc = acc + c
            carry[j] = acc
        return tuple(carry)

    init = tuple(_initial(program, j, block, dtype) for j in range(len(program.outputs)))
    out = body(0, init) if nblocks == 1 else jax.lax.fori_loop(0, nblocks, body, init)
    results = []
    ones = jnp.ones((block,), dtype)
    for j, (kind, shape) in enumerate(program.outputs):
        a = out[j]
        if kind == "bias":
            a = jnp.einsum("bf,b->f", a, ones, precision=_HI)
        elif kind == "k":
            a = jnp.einsum("pbf,b->pf", a, ones, precision=_HI)
        elif kind == "w" and not _per_pair(kind, shape):
            a = jnp.einsum("sbf,b->sf", a, ones, precision=_HI)[:, None]
        results.append(a.astype(dtype))
    return results
