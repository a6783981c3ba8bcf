"""Fused message-passing kernel: gather -> filter -> CG tensor product -> weights -> segment sum.

``MessagePass`` computes, for every pair ``e = (dst, src)``,

    y[e] = dense(basis[e])                     (filter, per degree of the basis)
    v[e] = w[e] * x[src[e]]                    (gathered, weighted inputs)
    m[dst[e]] += sum_t k[p_t] c_t y[e, a_t] v[e, b_t]   (sparse CG bilinear map, see ``_coupling``)

Done naively each stage is a pass over per-pair arrays of size ``E x slots x F`` that live in main
memory, and the bilinear map alone is hundreds of such passes. Here the pairs are cut into blocks
of a few hundred; a ``fori_loop`` runs every stage for one block while it sits in cache, the
nonzero CG terms as fused elementwise loops over ``block x F``.
Arrays are slot-major (``slots, pairs, F``) so each irrep component of a block is one contiguous
vector. Nothing of size ``E x slots x F`` is ever materialised.

The backward pass (``jax.custom_vjp``) is one more loop over the same blocks: it recomputes the
block's filters and gathered inputs (cheap) instead of storing them, and produces the gradients for
inputs, basis, filter weights, path kernel and pair weights in the same pass. Its operations are
ordinary JAX operations, so higher derivatives (e.g. training on forces) differentiate through it.

Inside a block the terms are contracted in chunks of at most 32 (a nested ``fori_loop``, each
chunk one fused elementwise pass into one output slot), which bounds compile time at any degree.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._coupling import Table, _chunks

# Terms up to which the CG contraction of a block is fully unrolled instead of chunked. Measured on
# CPU (typical layer, L=2, 274 terms), the chunked loop is ~1.5x faster forward and ~1.7x forward +
# backward than full unrolling, and it compiles in bounded time at any degree (full unrolling at L=4
# takes minutes), so chunks are the default; the unrolled form stays as a tested alternative.
UNROLL_MAX_TERMS = 0
# Target per-block working set in bytes (a few arrays of ``slots x block x F``): L2-sized.
BLOCK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Spec:
    """Static description of one fused message pass (hashable; a ``nondiff_argnums`` argument).

    Attributes:
        table: CG term table; ``u`` = filter slots ``(Lb+1)**2``, ``v`` = input slots ``P (L+1)**2``.
        basis_max_degree: ``Lb`` (filter kernel rows per degree).
        use_bias: Whether the filter adds a bias to its scalar slot.
        neighbours: ``M`` for dense index lists (pairs are ``N x M``, row-major); ``None`` = sparse.
        num_segments: Number of output rows.
        block: Pairs per block (dense: a multiple of ``neighbours``).
        sorted: Whether sparse ``dst`` is sorted (passed on to the scatter).
        precision: ``jax.lax.Precision`` of the filter matmuls.
    """

    table: Table
    basis_max_degree: int
    use_bias: bool
    neighbours: int | None
    num_segments: int
    block: int
    sorted: bool = False
    precision: Any = None


def block_size(table: Table, num_features: int, neighbours: int | None, num_pairs: int) -> int:
    """Pairs per block: about :data:`BLOCK_BYTES` of working set, at least one dense row."""
    per_pair = 4 * num_features * (table.nu + table.nv + 2 * table.no)
    b = int(np.clip(BLOCK_BYTES // max(per_pair, 1), 32, 2048))
    b = min(b, max(num_pairs, 1))
    if neighbours:
        rows = max(1, b // neighbours)
        return rows * neighbours
    return b


# ----------------------------------------------------------------------------------------------
# The CG bilinear map on slot-major blocks: u (nu, B, F), v (nv, B, F), k (npath, F).
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _groups(table: Table) -> tuple[tuple[int, int, tuple[tuple[int, int, float], ...]], ...]:
    """Terms grouped by (path, output slot): ``((p, o, ((a, b, c), ...)), ...)``."""
    groups: dict[tuple[int, int], list[tuple[int, int, float]]] = {}
    for a, b, o, p, c in table.terms:
        groups.setdefault((p, o), []).append((a, b, c))
    return tuple((p, o, tuple(ts)) for (p, o), ts in groups.items())


def _partials(table: Table, u: jax.Array, v: jax.Array):
    """Yield ``(p, o, s)`` with ``s = sum_t c_t u[a_t] v[b_t]`` over the terms of path p -> slot o."""
    for p, o, terms in _groups(table):
        s = None
        for a, b, c in terms:
            t = (u[a] * c) * v[b]
            s = t if s is None else s + t
        yield p, o, s


def _stack_slots(slots: list, like: jax.Array, n: int) -> jax.Array:
    zero = jnp.zeros_like(like)
    return jnp.stack([zero if s is None else s for s in slots[:n]], axis=0)


def _contract_unrolled(table: Table, u: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
    acc: list = [None] * table.no
    for p, o, s in _partials(table, u, v):
        s = s * k[p]
        acc[o] = s if acc[o] is None else acc[o] + s
    return _stack_slots(acc, u[0] * v[0], table.no)


def _contract_chunked(table: Table, u: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
    slot, ia, ib, ip, c, _ = _chunks(table)
    coef = k[ip] * jnp.asarray(c, k.dtype)[..., None]  # (chunks, chunk, F)
    ia, ib, slot_j = jnp.asarray(ia), jnp.asarray(ib), jnp.asarray(slot)

    def body(i, out):
        acc = None
        for t in range(c.shape[1]):
            term = u[ia[i, t]] * v[ib[i, t]] * coef[i, t]
            acc = term if acc is None else acc + term
        return out.at[slot_j[i]].add(acc)

    out = jnp.zeros((table.no,) + u.shape[1:], jnp.result_type(u, v, k))
    return jax.lax.fori_loop(0, slot.shape[0], body, out)


def contract(table: Table, u: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
    """``out[o] = sum_t k[p_t] c_t u[a_t] v[b_t]`` on slot-major blocks -> ``(no, B, F)``."""
    if len(table.terms) <= UNROLL_MAX_TERMS:
        return _contract_unrolled(table, u, v, k)
    return _contract_chunked(table, u, v, k)


def _kernel_grad_unrolled(table: Table, u: jax.Array, v: jax.Array, g: jax.Array) -> jax.Array:
    rows: list = [None] * table.npath
    for p, o, s in _partials(table, u, v):
        s = s * g[o]
        rows[p] = s if rows[p] is None else rows[p] + s
    return _stack_slots(rows, u[0] * v[0], table.npath)


def _kernel_grad_chunked(table: Table, u: jax.Array, v: jax.Array, g: jax.Array) -> jax.Array:
    path, ia, ib, _, c, io = _chunks(table, by_path=True)
    ia, ib, io, path_j = jnp.asarray(ia), jnp.asarray(ib), jnp.asarray(io), jnp.asarray(path)
    coef = jnp.asarray(c, u.dtype)

    def body(i, acc):
        s = None
        for t in range(c.shape[1]):
            term = u[ia[i, t]] * v[ib[i, t]] * g[io[i, t]] * coef[i, t]
            s = term if s is None else s + term
        return acc.at[path_j[i]].add(s)

    return jax.lax.fori_loop(0, path.shape[0], body, jnp.zeros((table.npath,) + u.shape[1:], u.dtype))


def kernel_grad(table: Table, u: jax.Array, v: jax.Array, g: jax.Array) -> jax.Array:
    """``d <g, contract(u, v, k)> / d k`` per pair of the block -> ``(npath, B, F)``.

    The sum over pairs is left to the caller, which accumulates blocks and reduces once at the
    end (a reduction over the pair axis per block is slow on CPU: it is not the minor axis).
    """
    if len(table.terms) <= UNROLL_MAX_TERMS:
        return _kernel_grad_unrolled(table, u, v, g)
    return _kernel_grad_chunked(table, u, v, g)


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------


def _filters(spec: Spec, basis: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> jax.Array:
    """Slot-major filters ``(Db, B, F)`` of a block ``basis (B, Db, K)``."""
    rows = []
    for l in range(spec.basis_max_degree + 1):
        y = jnp.einsum("bmk,kf->mbf", basis[:, l * l : (l + 1) ** 2], kernel[l], precision=spec.precision)
        if l == 0 and bias is not None:
            y = y + bias
        rows.append(y)
    return jnp.concatenate(rows, axis=0) if len(rows) > 1 else rows[0]


def _slice(a: jax.Array | None, start: jax.Array, size: int, axis: int) -> jax.Array | None:
    if a is None:
        return None
    if a.shape[axis] == 1:  # broadcast along pairs
        return a
    return jax.lax.dynamic_slice_in_dim(a, start, size, axis)


class _Blocks:
    """Per-block views of the (padded) pair arrays."""

    def __init__(self, spec: Spec, basis, src, dst, valid, w):
        self.spec = spec
        self.basis, self.src, self.dst, self.valid, self.w = basis, src, dst, valid, w

    def __call__(self, i):
        b = self.spec.block
        start = i * b
        valid = _slice(self.valid, start, b, 0)
        basis = jnp.where(valid[:, None, None], _slice(self.basis, start, b, 0), 0)
        src = _slice(self.src, start, b, 0)
        dst = None if self.dst is None else _slice(self.dst, start, b, 0)
        w = _slice(self.w, start, b, 1)  # slot-major weights (Sw, Ew, Fw)
        return start, valid, basis, src, dst, w


def _pad(a: jax.Array, n: int, axis: int, value: Any = 0) -> jax.Array:
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, n - a.shape[axis])
    return jnp.pad(a, pad, constant_values=value)


def _prepare(spec: Spec, basis, src, dst, valid, w):
    """Pad the pair axis to a multiple of the block; weights slot-major ``(Sw, Ew, Fw)``."""
    e = basis.shape[0]
    e_pad = -(-e // spec.block) * spec.block
    if e_pad != e:
        basis = _pad(basis, e_pad, 0)
        src = _pad(src, e_pad, 0)
        dst = None if dst is None else _pad(dst, e_pad, 0, spec.num_segments)
        valid = _pad(valid, e_pad, 0, False)
    if w is not None:
        w = jnp.transpose(w, (1, 0, 2))
        if w.shape[1] != 1 and e_pad != e:
            w = _pad(w, e_pad, 1)
    return e_pad, _Blocks(spec, basis, src, dst, valid, w)


def _forward(spec, x, basis, kernel, bias, k, w, src, dst, valid):
    table = spec.table
    f = x.shape[-1]
    xt = jnp.transpose(x, (1, 0, 2))  # (nv, N, F)
    e_pad, blocks = _prepare(spec, basis, src, dst, valid, w)
    dtype = x.dtype
    if spec.neighbours:
        m = spec.neighbours
        rows = spec.block // m
        out = jnp.zeros((table.no, e_pad // m, f), dtype)
    else:
        out = jnp.zeros((table.no, spec.num_segments, f), dtype)

    def body(i, out):
        start, valid_b, basis_b, src_b, dst_b, w_b = blocks(i)
        y = _filters(spec, basis_b, kernel, bias)
        v = xt[:, src_b]
        if w_b is not None:
            v = v * w_b
        v = jnp.where(valid_b[:, None], v, 0)
        prod = contract(table, y, v, k)  # (no, B, F)
        if spec.neighbours:
            msg = jnp.sum(prod.reshape(table.no, rows, spec.neighbours, f), axis=2)
            return jax.lax.dynamic_update_slice_in_dim(out, msg, i * rows, axis=1)
        return out.at[:, dst_b].add(prod, mode="drop", indices_are_sorted=spec.sorted)

    out = jax.lax.fori_loop(0, e_pad // spec.block, body, out)
    if spec.neighbours:
        out = out[:, : spec.num_segments]
    return jnp.transpose(out, (1, 0, 2))  # (N', no, F)


def _backward(spec, res, g):
    x, basis, kernel, bias, k, w, src, dst, valid = res
    table = spec.table
    f = x.shape[-1]
    e = basis.shape[0]
    xt = jnp.transpose(x, (1, 0, 2))
    gt = jnp.transpose(g, (1, 0, 2))  # (no, N', F)
    e_pad, blocks = _prepare(spec, basis, src, dst, valid, w)
    if spec.neighbours:
        m = spec.neighbours
        rows = spec.block // m
        rows_pad = e_pad // m
        if rows_pad != gt.shape[1]:
            gt = jnp.pad(gt, ((0, 0), (0, rows_pad - gt.shape[1]), (0, 0)))
    lb = spec.basis_max_degree
    wt = blocks.w
    carry = dict(
        gx=jnp.zeros_like(xt),
        gbasis=jnp.zeros((e_pad,) + basis.shape[1:], basis.dtype),
        gkernel=jnp.zeros_like(kernel),
        gk=jnp.zeros((k.shape[0], spec.block, f), k.dtype),  # per pair of a block; summed at the end
    )
    if bias is not None:
        carry["gbias"] = jnp.zeros((spec.block, f), bias.dtype)  # per pair; summed at the end
    if wt is not None:
        carry["gw"] = jnp.zeros_like(wt)

    def body(i, c):
        start, valid_b, basis_b, src_b, dst_b, w_b = blocks(i)
        y = _filters(spec, basis_b, kernel, bias)
        x_b = xt[:, src_b]
        v = x_b if w_b is None else x_b * w_b
        v = jnp.where(valid_b[:, None], v, 0)
        if spec.neighbours:
            g_rows = jax.lax.dynamic_slice_in_dim(gt, i * rows, rows, axis=1)
            gb = jnp.broadcast_to(g_rows[:, :, None], (table.no, rows, spec.neighbours, f))
            gb = gb.reshape(table.no, spec.block, f)
        else:
            gb = gt.at[:, dst_b].get(mode="fill", fill_value=0, indices_are_sorted=spec.sorted)
        gb = jnp.where(valid_b[:, None], gb, 0)
        gy = contract(table.grad_u, gb, v, k)  # (Db, B, F)
        gv = contract(table.grad_v, y, gb, k)  # (nv, B, F)
        c = dict(c)
        c["gk"] = c["gk"] + kernel_grad(table, y, v, gb)
        # Filter: y[l] = basis[:, l] @ kernel[l] (+ bias on l = 0).
        gbasis = []
        gkernel = c["gkernel"]
        for l in range(lb + 1):
            sl = slice(l * l, (l + 1) ** 2)
            gbasis.append(jnp.einsum("mbf,kf->bmk", gy[sl], kernel[l], precision=spec.precision))
            gkernel = gkernel.at[l].add(
                jnp.einsum("bmk,mbf->kf", basis_b[:, sl], gy[sl], precision=spec.precision))
        c["gkernel"] = gkernel
        c["gbasis"] = jax.lax.dynamic_update_slice_in_dim(
            c["gbasis"], jnp.concatenate(gbasis, axis=1) if lb else gbasis[0], start, axis=0)
        if bias is not None:
            c["gbias"] = c["gbias"] + gy[0]
        if w_b is not None:
            gw = gv * x_b
            axes = tuple(ax for ax in range(3) if w_b.shape[ax] == 1)
            gw = jnp.sum(gw, axis=axes, keepdims=True) if axes else gw
            if wt.shape[1] == 1:
                c["gw"] = c["gw"] + gw
            else:
                c["gw"] = jax.lax.dynamic_update_slice_in_dim(c["gw"], gw, start, axis=1)
            gv = gv * w_b
        c["gx"] = c["gx"].at[:, src_b].add(gv, indices_are_sorted=False)
        return c

    c = jax.lax.fori_loop(0, e_pad // spec.block, body, carry)
    gx = jnp.transpose(c["gx"], (1, 0, 2))
    gbasis = c["gbasis"][:e]
    gw = None
    if w is not None:
        gw = jnp.transpose(c["gw"], (1, 0, 2))[: w.shape[0]]
    # Sums over the pairs of a block: a matrix-vector product, far faster on CPU than a reduction
    # over a non-minor axis.
    ones = jnp.ones((spec.block,), k.dtype)
    hi = jax.lax.Precision.HIGHEST
    gk = jnp.einsum("pbf,b->pf", c["gk"], ones, precision=hi)
    gbias = None if bias is None else jnp.einsum("bf,b->f", c["gbias"], ones, precision=hi)
    return (gx, gbasis, c["gkernel"], gbias, gk, gw, None, None, None)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def message_kernel(spec: Spec, x, basis, kernel, bias, k, w, src, dst, valid) -> jax.Array:
    """Fused message pass over one graph (no batch axes).

    Arguments:
        spec: Static :class:`Spec`.
        x: ``(N, nv, F)`` node features, slots flattened (``P * (L+1)**2``).
        basis: ``(E, (Lb+1)**2, K)`` pair basis (dense lists: ``E = N * M`` row-major).
        kernel: ``(Lb+1, K, F)`` filter weights; ``bias``: ``(F,)`` or ``None``.
        k: ``(npath, F)`` path kernel.
        w: ``None`` or pair weights ``(Ew, Sw, Fw)`` with ``Ew in (1, E)``, ``Sw in (1, nv)``,
            ``Fw in (1, F)``.
        src: ``(E,)`` int32 source indices in ``[0, N)``.
        dst: ``(E,)`` int32 destination indices (sparse; pairs outside ``[0, num_segments)`` are
            dropped) or ``None`` (dense).
        valid: ``(E,)`` bool; invalid pairs contribute nothing (and get zero gradients).

    Returns:
        ``(num_segments, no, F)`` messages.
    """
    return _forward(spec, x, basis, kernel, bias, k, w, src, dst, valid)


def _fwd(spec, x, basis, kernel, bias, k, w, src, dst, valid):
    out = _forward(spec, x, basis, kernel, bias, k, w, src, dst, valid)
    return out, (x, basis, kernel, bias, k, w, src, dst, valid)


message_kernel.defvjp(_fwd, _backward)
