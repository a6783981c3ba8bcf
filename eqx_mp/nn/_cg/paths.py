"""Coupling paths and the static term tables of the sparse Clebsch-Gordan product.

A tensor product of irreps features is organised by *coupling path* ``(p1, l1, p2, l2, p3, l3)``:
parity index and degree of each factor and of the output. A path is allowed when the degrees
satisfy the triangle rule ``|l1 - l2| <= l3 <= l1 + l2`` and the parities multiply,
``(d1 + d2) % 2 == d3`` (``d`` = 0 even, 1 odd). With ``P = 2`` the parity index *is* ``d``; with
``P = 1`` the entry of degree ``l`` has ``d = l % 2`` (e3x's convention).

Only the nonzero Clebsch-Gordan entries of allowed paths are contracted: the product is the
trilinear form ``S = sum_t k[p_t] c_t u[a_t] v[b_t] o[o_t]`` over a static :class:`Table` of terms
``t`` (per feature). The tensor product is ``dS/do``; ``dS/du``, ``dS/dv`` and ``dS/dk`` are the
same form with the roles permuted (:attr:`Table.grad_u`, :attr:`Table.grad_v`).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from ...so3.clebsch_gordan import cg_block, clebsch_gordan_numpy

Path = tuple[int, int, int, int, int, int]  # (p1, l1, p2, l2, p3, l3)

#: At most this many terms are unrolled per loop iteration of a contraction (bounds compile time).
MAX_CHUNK = 4


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
    """Static term table of ``out[o] = sum_t k[p_t] * c_t * u[a_t] * v[b_t]`` (per feature).

    Attributes:
        nu, nv, no: Slot counts of the first factor, the second factor and the output.
        npath: Number of paths (rows of the path kernel ``k``).
        terms: ``(a, b, o, p, c)`` per nonzero term.

    Hashable: it is part of the static parameters of the contraction primitive.
    """

    nu: int
    nv: int
    no: int
    npath: int
    terms: tuple[tuple[int, int, int, int, float], ...]

    @functools.cached_property
    def grad_u(self) -> Table:
        """``dS/du`` as a table: factors ``(o, v)``, output ``u``."""
        return Table(self.no, self.nv, self.nu, self.npath,
                     tuple((o, b, a, p, c) for a, b, o, p, c in self.terms))

    @functools.cached_property
    def grad_v(self) -> Table:
        """``dS/dv`` as a table: factors ``(u, o)``, output ``v``."""
        return Table(self.nu, self.no, self.nv, self.npath,
                     tuple((a, o, b, p, c) for a, b, o, p, c in self.terms))


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

    Flattened indices: ``a = p1 * (L1+1)**2 + l1**2 + i1`` (likewise ``b``, ``o``); path ``p`` is
    the position in ``paths``.
    """
    if paths is None:
        paths = allowed_paths(parity1, max_degree1, parity2, max_degree2, parity3, max_degree3)
    d1, d2, d3 = (max_degree1 + 1) ** 2, (max_degree2 + 1) ** 2, (max_degree3 + 1) ** 2
    terms = []
    for p, (p1, l1, p2, l2, p3, l3) in enumerate(paths):
        blk = cg_block(l1, l2, l3, cartesian_order)
        for i1, i2, i3 in zip(*np.nonzero(blk)):
            terms.append((p1 * d1 + l1 * l1 + int(i1), p2 * d2 + l2 * l2 + int(i2),
                          p3 * d3 + l3 * l3 + int(i3), p, float(blk[i1, i2, i3])))
    return Table(parity1 * d1, parity2 * d2, parity3 * d3, len(paths), tuple(terms))


@functools.lru_cache(maxsize=None)
def partial_tables(table: Table, hole: str) -> tuple[Table, Table, Table]:
    """Tables of the per-path partial sums behind a contraction fused with its path gradient.

    For ``hole`` in ``"U"``, ``"V"``, ``"O"`` with slot index ``x`` and the two other factors
    ``(f1, f2)`` in the order of :attr:`Table.grad_u`, :attr:`Table.grad_v` or ``table``:

    * ``tq``: ``Q[q] = sum_{t: (p_t, x_t) = q} c_t f1[.] f2[.]`` (contract with ``k = 1``);
    * ``tr``: ``dS/d hole [x] = sum_{q: x_q = x} k[p_q] Q[q]`` (contract ``Q`` with ones);
    * ``tk``: ``dS/dk [p] = sum_{q: p_q = p} F[x_q] Q[q]`` (contract ``F`` and ``Q`` with ``k = 1``).
    """
    base = {"U": table.grad_u, "V": table.grad_v, "O": table}[hole]
    qs = sorted({(p, x) for _, _, x, p, _ in base.terms})
    qi = {q: i for i, q in enumerate(qs)}
    tq = Table(base.nu, base.nv, len(qs), base.npath,
               tuple((a, b, qi[(p, x)], p, c) for a, b, x, p, c in base.terms))
    tr = Table(len(qs), 1, base.no, base.npath, tuple((i, 0, x, p, 1.0) for i, (p, x) in enumerate(qs)))
    tk = Table(base.no, len(qs), base.npath, 1, tuple((x, i, p, 0, 1.0) for i, (p, x) in enumerate(qs)))
    return tq, tr, tk


@dataclasses.dataclass(frozen=True)
class Chunks:
    """A table's terms grouped by output slot (or by path) and cut into chunks of equal length.

    Attributes:
        target: ``(n,)`` output slot (or path) of each chunk.
        a, b, o, p: ``(n, chunk)`` term indices; padding terms have index 0 and ``c = 0``.
        c: ``(n, chunk)`` float64 coefficients.
    """

    target: np.ndarray
    a: np.ndarray
    b: np.ndarray
    o: np.ndarray
    p: np.ndarray
    c: np.ndarray


@functools.lru_cache(maxsize=None)
def chunks_full(table: Table, by_path: bool = False) -> Chunks:
    """One chunk per output slot (or path), in order, padded to the longest group ``G``:
    ``(no, G)`` (or ``(npath, G)``) index arrays for the wide contraction."""
    return chunks(table, by_path, None)


@functools.lru_cache(maxsize=None)
def chunks(table: Table, by_path: bool = False, size: int | None = MAX_CHUNK) -> Chunks:
    """Cut ``table`` into chunks of at most ``size`` terms of one output slot (or path).

    The chunk length is the longest group, capped at ``size``, so most chunks are full. With
    ``size=None`` every output slot (or path) is one chunk, empty ones included.
    """
    groups: list[list[tuple[int, int, int, int, float]]] = [
        [] for _ in range(table.npath if by_path else table.no)]
    for a, b, o, p, c in table.terms:
        groups[p if by_path else o].append((a, b, o, p, c))
    longest = max([len(g) for g in groups] + [1])
    if size is None:
        size, rows = longest, list(enumerate(groups))
    else:
        size = min(size, longest)
        rows = [(g, terms[s : s + size]) for g, terms in enumerate(groups)
                for s in range(0, len(terms), size)]
    rows = rows or [(0, [])]
    n = len(rows)
    target = np.zeros((n,), np.int32)
    ia, ib, io, ip = (np.zeros((n, size), np.int32) for _ in range(4))
    c = np.zeros((n, size))
    for i, (g, terms) in enumerate(rows):
        target[i] = g
        for j, (a, b, o, p, cc) in enumerate(terms):
            ia[i, j], ib[i, j], io[i, j], ip[i, j], c[i, j] = a, b, o, p, cc
    return Chunks(target, ia, ib, io, ip, c)


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
