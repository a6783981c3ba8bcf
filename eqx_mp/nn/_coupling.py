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

    ``groups[o]`` lists ``(p, ((a, b, c), ...))`` for every path contributing to output ``o``.
    Hashable, so it can be a static (non-differentiable) argument of :func:`bilinear`.
    """

    nu: int
    nv: int
    no: int
    npath: int
    terms: tuple[tuple[int, int, int, int, float], ...]  # (a, b, o, p, c)

    @functools.cached_property
    def groups(self) -> tuple[tuple[tuple[int, tuple[tuple[int, int, float], ...]], ...], ...]:
        per_o: list[dict[int, list[tuple[int, int, float]]]] = [{} for _ in range(self.no)]
        for a, b, o, p, c in self.terms:
            per_o[o].setdefault(p, []).append((a, b, c))
        return tuple(tuple((p, tuple(v)) for p, v in d.items()) for d in per_o)

    @functools.cached_property
    def grad_u(self) -> Table:
        """Table of ``d out / d u`` contracted with a cotangent: inputs (g, v), output u."""
        return Table(self.no, self.nv, self.nu, self.npath, tuple((o, b, a, p, c) for a, b, o, p, c in self.terms))

    @functools.cached_property
    def grad_v(self) -> Table:
        """Table of ``d out / d v`` contracted with a cotangent: inputs (u, g), output v."""
        return Table(self.nu, self.no, self.nv, self.npath, tuple((a, o, b, p, c) for a, b, o, p, c in self.terms))

    @functools.cached_property
    def by_path(self) -> tuple[tuple[tuple[int, int, int, float], ...], ...]:
        per_p: list[list[tuple[int, int, int, float]]] = [[] for _ in range(self.npath)]
        for a, b, o, p, c in self.terms:
            per_p[p].append((a, b, o, c))
        return tuple(tuple(v) for v in per_p)

    def dense(self) -> np.ndarray:
        """Dense coefficient array ``(npath, nu, nv, no)`` (for tests and small problems)."""
        out = np.zeros((self.npath, self.nu, self.nv, self.no))
        for a, b, o, p, c in self.terms:
            out[p, a, b, o] += c
        return out


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
    path_scale: tuple[float, ...] | None = None,
) -> Table:
    """Term table of the (unweighted) CG tensor product over ``paths`` (default: all allowed).

    Flattened indices: ``a = p1 * (L1+1)**2 + l1**2 + i1`` (likewise ``b``, ``o``); path ``p`` is the
    position in ``paths``. ``path_scale`` multiplies every coefficient of a path.
    """
    if paths is None:
        paths = allowed_paths(parity1, max_degree1, parity2, max_degree2, parity3, max_degree3)
    d1, d2, d3 = (max_degree1 + 1) ** 2, (max_degree2 + 1) ** 2, (max_degree3 + 1) ** 2
    terms = []
    for p, (p1, l1, p2, l2, p3, l3) in enumerate(paths):
        blk = cg_block(l1, l2, l3, cartesian_order)
        scale = 1.0 if path_scale is None else path_scale[p]
        for i1, i2, i3 in zip(*np.nonzero(blk)):
            terms.append(
                (
                    p1 * d1 + l1 * l1 + int(i1),
                    p2 * d2 + l2 * l2 + int(i2),
                    p3 * d3 + l3 * l3 + int(i3),
                    p,
                    float(blk[i1, i2, i3]) * scale,
                )
            )
    return Table(parity1 * d1, parity2 * d2, parity3 * d3, len(paths), tuple(terms))


def _apply(table: Table, u: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
    """Evaluate the bilinear map: ``u (..., nu, F)``, ``v (..., nv, F)``, ``k (npath, F)``."""
    dtype = jnp.result_type(u, v, k)
    us = [u[..., i, :] for i in range(table.nu)]
    vs = [v[..., i, :] for i in range(table.nv)]
    ks = [k[p] for p in range(table.npath)]
    shape = jnp.broadcast_shapes(u.shape[:-2], v.shape[:-2]) + (u.shape[-1],)
    outs = []
    for groups in table.groups:
        acc = None
        for p, items in groups:
            s = None
            for a, b, c in items:
                t = us[a] * vs[b]
                t = t if c == 1.0 else t * jnp.asarray(c, dtype)
                s = t if s is None else s + t
            s = s * ks[p]
            acc = s if acc is None else acc + s
        outs.append(jnp.zeros(shape, dtype) if acc is None else jnp.broadcast_to(acc, shape))
    return jnp.stack(outs, axis=-2)


def _kernel_grad(table: Table, u: jax.Array, v: jax.Array, g: jax.Array) -> jax.Array:
    """``d <g, out> / d k``: per path, sum over all leading axes of ``c * u[a] * v[b] * g[o]``."""
    dtype = jnp.result_type(u, v, g)
    nlead = max(u.ndim, v.ndim, g.ndim) - 2
    rows = []
    for items in table.by_path:
        s = None
        for a, b, o, c in items:
            t = u[..., a, :] * v[..., b, :] * g[..., o, :]
            t = t if c == 1.0 else t * jnp.asarray(c, dtype)
            s = t if s is None else s + t
        if s is None:
            rows.append(jnp.zeros((g.shape[-1],), dtype))
        else:
            s = jnp.broadcast_to(s, g.shape[:-2] + g.shape[-1:])
            rows.append(jnp.sum(s, axis=tuple(range(nlead))))
    return jnp.stack(rows, axis=0)


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
