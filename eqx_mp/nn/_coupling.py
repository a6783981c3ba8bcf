"""Coupling paths and the sparse Clebsch-Gordan bilinear map shared by Tensor and FusedTensor.

A tensor product of irreps features is organised by *coupling path*
``(p1, l1, p2, l2, p3, l3)``: parity index and degree of each factor and of the output. A path is
allowed when the degrees satisfy the triangle rule ``|l1 - l2| <= l3 <= l1 + l2`` and the parities
multiply, ``(d1 + d2) % 2 == d3`` (``d`` = 0 even, 1 odd). With ``P = 2`` the parity index *is*
``d``; with ``P = 1`` the entry of degree ``l`` has ``d = l % 2`` (e3x's convention).

Only the nonzero Clebsch-Gordan entries of allowed paths are contracted. The whole map is a
bilinear form ``out[o] = sum_t K[path_t] * c_t * u[a_t] * v[b_t]`` over a static table of terms
``t``; its gradients are the same kind of bilinear form with the roles of ``u``, ``v`` and the
output permuted, so one ``jax.custom_vjp`` primitive (:func:`bilinear`) serves the forward pass,
the backward pass and any higher-order reverse-mode derivative (e.g. force training), and nothing
of size ``F x (L1+1)**2 x (L2+1)**2`` is materialised per pair.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ..so3.clebsch_gordan import cg_block, clebsch_gordan_numpy

Path = tuple[int, int, int, int, int, int]  # (p1, l1, p2, l2, p3, l3)


def parity_entries(num_parity: int, max_degree: int) -> list[tuple[int, int, int]]:
    """``(p, l, d)`` for every parity index ``p`` and degree ``l``; ``d`` is the parity (0 even)."""
    if num_parity == 2:
        return [(0, l, 0) for l in range(max_degree + 1)] + [
            (1, l, 1) for l in range(max_degree + 1)
        ]
    return [(0, l, l % 2) for l in range(max_degree + 1)]


def output_parity(
    parity1: int,
    max_degree1: int,
    parity2: int,
    max_degree2: int,
    max_degree3: int,
    include_pseudotensors: bool,
) -> int:
    """Number of parity channels of a tensor product's output (e3x's rule).

    If neither input has pseudotensors and one of the degrees is 0, no pseudotensor can be
    produced and the output has one parity channel regardless of ``include_pseudotensors``.
    """
    if parity1 == parity2 == 1 and 0 in (max_degree1, max_degree2, max_degree3):
        return 1
    return 2 if include_pseudotensors else 1


@functools.lru_cache(maxsize=None)
def allowed_paths(
    parity1: int, max_degree1: int, parity2: int, max_degree2: int, parity3: int, max_degree3: int
) -> tuple[Path, ...]:
    """All parity- and triangle-allowed coupling paths, in e3x's kernel index order."""
    out = []
    for p1, l1, d1 in parity_entries(parity1, max_degree1):
        for p2, l2, d2 in parity_entries(parity2, max_degree2):
            for p3, l3, d3 in parity_entries(parity3, max_degree3):
                if (d1 + d2) % 2 == d3 and abs(l1 - l2) <= l3 <= l1 + l2:
                    out.append((p1, l1, p2, l2, p3, l3))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Table:
    """Static term table of a bilinear map ``out[o] = sum_t k[p_t] * c_t * u[a_t] * v[b_t]``.

    Hashable, so it can be a static (non-differentiable) argument of :func:`bilinear`.
    """

    nu: int
    nv: int
    no: int
    npath: int
    terms: tuple[tuple[int, int, int, int, float], ...]  # (a, b, o, p, c)

    @functools.cached_property
    def grad_u(self) -> Table:
        """Table of ``d out / d u`` contracted with a cotangent: inputs (g, v), output u."""
        return Table(self.no, self.nv, self.nu, self.npath, tuple((o, b, a, p, c) for a, b, o, p, c in self.terms))

    @functools.cached_property
    def grad_v(self) -> Table:
        """Table of ``d out / d v`` contracted with a cotangent: inputs (u, g), output v."""
        return Table(self.nu, self.no, self.nv, self.npath, tuple((a, o, b, p, c) for a, b, o, p, c in self.terms))


@functools.lru_cache(maxsize=None)
def tensor_table(
    parity1: int,
    max_degree1: int,
    parity2: int,
    max_degree2: int,
    parity3: int,
    max_degree3: int,
    cartesian_order: bool,
    paths: tuple[Path, ...] | None = None,
) -> Table:
    """Term table of the (unweighted) CG tensor product over ``paths`` (default: all allowed).

    Flattened indices: ``a = p1 * (L1+1)**2 + l1**2 + i1`` (likewise ``b``, ``o``); path ``p`` is the
    position in ``paths``.
    """
    if paths is None:
        paths = allowed_paths(parity1, max_degree1, parity2, max_degree2, parity3, max_degree3)
    d1, d2, d3 = (max_degree1 + 1) ** 2, (max_degree2 + 1) ** 2, (max_degree3 + 1) ** 2
    terms = []
    for p, (p1, l1, p2, l2, p3, l3) in enumerate(paths):
        blk = cg_block(l1, l2, l3, cartesian_order)
        for i1, i2, i3 in zip(*np.nonzero(blk)):
            terms.append(
                (
                    p1 * d1 + l1 * l1 + int(i1),
                    p2 * d2 + l2 * l2 + int(i2),
                    p3 * d3 + l3 * l3 + int(i3),
                    p,
                    float(blk[i1, i2, i3]),
                )
            )
    return Table(parity1 * d1, parity2 * d2, parity3 * d3, len(paths), tuple(terms))


MAX_CHUNK = 32  # at most this many terms are unrolled per loop iteration (bounds compile time)


def chunk_size(table: Table) -> int:
    """Terms per loop iteration: the longest output slot, capped at ``MAX_CHUNK``."""
    counts = np.bincount([t[2] for t in table.terms], minlength=table.no) if table.terms else [1]
    return int(min(MAX_CHUNK, max(1, int(np.max(counts)))))


@functools.lru_cache(maxsize=None)
def _chunks(table: Table, by_path: bool = False) -> tuple[np.ndarray, ...]:
    """Terms grouped by output slot (or by path) and cut into chunks of :func:`chunk_size` terms.

    Returns ``(slot, ia, ib, ip, c, io)``: ``slot`` ``(n,)`` is the output slot (or path) of each
    chunk, the others are ``(n, chunk)``. Padding terms have ``c = 0`` and index 0 (no effect).
    """
    groups = table.npath if by_path else table.no
    slots: list[list[tuple[int, int, int, float, int]]] = [[] for _ in range(groups)]
    for a, b, o, p, c in table.terms:
        slots[p if by_path else o].append((a, b, p, c, o))
    size = chunk_size(table)
    rows = []
    for o, terms in enumerate(slots):
        for start in range(0, len(terms), size):
            rows.append((o, terms[start : start + size]))
    if not rows:
        rows = [(0, [])]
    n = len(rows)
    slot = np.zeros((n,), np.int32)
    ia, ib, ip, io = (np.zeros((n, size), np.int32) for _ in range(4))
    c = np.zeros((n, size))
    for i, (o, terms) in enumerate(rows):
        slot[i] = o
        for j, (a_, b_, p_, c_, o_) in enumerate(terms):
            ia[i, j], ib[i, j], ip[i, j], c[i, j], io[i, j] = a_, b_, p_, c_, o_
    return slot, ia, ib, ip, c, io


def _chunk_products(table: Table, u: jax.Array, v: jax.Array, i: jax.Array, by_path: bool = False):
    """``u[a_t] * v[b_t]`` for the terms ``t`` of chunk ``i`` (``i`` traced)."""
    _, ia, ib, _, _, _ = _chunks(table, by_path)
    ia_i = jnp.asarray(ia)[i]
    ib_i = jnp.asarray(ib)[i]
    for t in range(ia.shape[1]):
        ua = jax.lax.dynamic_index_in_dim(u, ia_i[t], axis=u.ndim - 2, keepdims=False)
        vb = jax.lax.dynamic_index_in_dim(v, ib_i[t], axis=v.ndim - 2, keepdims=False)
        yield ua * vb


def _apply(table: Table, u: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
    """Evaluate the bilinear map: ``u (..., nu, F)``, ``v (..., nv, F)``, ``k (npath, F)``.

    A ``fori_loop`` over chunks of (at most ``MAX_CHUNK``) terms of one output slot each; inside, the terms are
    unrolled, so each chunk is one fused elementwise pass that accumulates into its slot. Compile
    time is bounded by the chunk size, not by the number of terms (which grows like ``L**4``).
    """
    dtype = jnp.result_type(u, v, k)
    u, v, k = u.astype(dtype), v.astype(dtype), k.astype(dtype)
    slot, _, _, ip, c, _ = _chunks(table)
    coef = k[ip] * jnp.asarray(c, dtype)[..., None]  # (n, chunk, F)
    slot_j = jnp.asarray(slot)
    shape = jnp.broadcast_shapes(u.shape[:-2], v.shape[:-2]) + (table.no, u.shape[-1])
    axis = len(shape) - 2

    def body(i, out):
        coef_i = jax.lax.dynamic_index_in_dim(coef, i, keepdims=False)
        acc = None
        for t, uv in enumerate(_chunk_products(table, u, v, i)):
            acc = uv * coef_i[t] if acc is None else acc + uv * coef_i[t]
        o = slot_j[i]
        prev = jax.lax.dynamic_index_in_dim(out, o, axis=axis, keepdims=False)
        return jax.lax.dynamic_update_index_in_dim(out, prev + acc, o, axis=axis)

    return jax.lax.fori_loop(0, slot.shape[0], body, jnp.zeros(shape, dtype))


def _kernel_grad(table: Table, u: jax.Array, v: jax.Array, g: jax.Array) -> jax.Array:
    """``d <g, out> / d k``: per path, sum over all leading axes of ``c * u[a] * v[b] * g[o]``.

    Terms are chunked by path, so each chunk is one fused multiply-and-reduce pass.
    """
    dtype = jnp.result_type(u, v, g)
    u, v, g = u.astype(dtype), v.astype(dtype), g.astype(dtype)
    path, _, _, _, c, io = _chunks(table, by_path=True)
    path_j, io_j = jnp.asarray(path), jnp.asarray(io)
    coef = jnp.asarray(c, dtype)
    f = g.shape[-1]

    def body(i, acc):
        s = None
        for t, uv in enumerate(_chunk_products(table, u, v, i, by_path=True)):
            g_o = jax.lax.dynamic_index_in_dim(g, io_j[i, t], axis=g.ndim - 2, keepdims=False)
            term = uv * g_o * coef[i, t]
            s = term if s is None else s + term
        s = jnp.broadcast_to(s, g.shape[:-2] + (f,)).reshape(-1, f)
        # A matrix-vector product sums over the pairs far faster than a column reduce on CPU.
        row = jnp.dot(jnp.ones((s.shape[0],), dtype), s, precision=jax.lax.Precision.HIGHEST)
        p = path_j[i]
        return jax.lax.dynamic_update_index_in_dim(acc, acc[p] + row, p, axis=0)

    return jax.lax.fori_loop(0, path.shape[0], body, jnp.zeros((table.npath, f), dtype))


def _unbroadcast(x: jax.Array, shape: Sequence[int]) -> jax.Array:
    """Sum ``x`` down to ``shape`` (the reverse of numpy broadcasting)."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    x = jnp.sum(x, axis=tuple(range(lead))) if lead else x
    axes = tuple(i for i, (n, m) in enumerate(zip(x.shape, shape)) if m == 1 and n != 1)
    return jnp.sum(x, axis=axes, keepdims=True) if axes else x


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def bilinear(table: Table, u: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
    """Sparse bilinear map ``out[..., o, f] = sum_t k[p_t, f] c_t u[..., a_t, f] v[..., b_t, f]``.

    Arguments:
        table: Static term table (see :class:`Table`).
        u: ``(..., nu, F)``.
        v: ``(..., nv, F)``; leading axes broadcast against ``u``'s.
        k: ``(npath, F)`` path weights.

    Returns:
        ``(..., no, F)``.
    """
    return _apply(table, u, v, k)


def _bilinear_fwd(table, u, v, k):
    return _apply(table, u, v, k), (u, v, k)


def _bilinear_bwd(table, res, g):
    u, v, k = res
    gu = _unbroadcast(bilinear(table.grad_u, g, v, k), u.shape)
    gv = _unbroadcast(bilinear(table.grad_v, u, g, k), v.shape)
    gk = _kernel_grad(table, u, v, g)
    return gu.astype(u.dtype), gv.astype(v.dtype), gk.astype(k.dtype)


bilinear.defvjp(_bilinear_fwd, _bilinear_bwd)


# --------------------------------------------------------------------------------------------
# FusedTensor: the matrix-product construction equals a Tensor with a rank-one path kernel.
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def fused_path_scales(max_max_degree: int, cartesian_order: bool) -> dict[tuple[int, int, int], float]:
    """Scale ``alpha(l1, l2, l3)`` with which e3x's matrix-product coupling equals CG coupling.

    e3x's FusedTensor maps each irrep to a ``(2m+1) x (2m+1)`` matrix (``m = ceil(L/2)``) with CG
    coefficients, multiplies matrices and projects back. Each step is equivariant, so by Schur's
    lemma the composite map restricted to degrees ``(l1, l2) -> l3`` is ``alpha * CG(l1, l2, l3)``.
    This computes ``alpha`` exactly (float64) and verifies the proportionality.
    """
    md = math.ceil(max_max_degree / 2)
    cg = clebsch_gordan_numpy(md, md, max_max_degree, cartesian_order)
    cgm = cg[md * md : (md + 1) ** 2, md * md : (md + 1) ** 2, :]
    # T[a, b, n] = sum_{l, m, j} cg[l, m, a] cg[m, j, b] cg[l, j, n]
    t = np.einsum("lma,mjb,ljn->abn", cgm, cgm, cgm)
    out = {}
    for l1 in range(max_max_degree + 1):
        for l2 in range(max_max_degree + 1):
            for l3 in range(abs(l1 - l2), min(l1 + l2, max_max_degree) + 1):
                blk = t[l1 * l1 : (l1 + 1) ** 2, l2 * l2 : (l2 + 1) ** 2, l3 * l3 : (l3 + 1) ** 2]
                c = cg_block(l1, l2, l3, cartesian_order)
                alpha = float(np.sum(blk * c) / np.sum(c * c))
                if np.max(np.abs(blk - alpha * c)) > 1e-12:  # pragma: no cover - maths guard
                    raise AssertionError(f"fused coupling ({l1},{l2},{l3}) is not proportional to CG")
                if abs(alpha) > 1e-14:
                    out[(l1, l2, l3)] = alpha
    return out
