"""Programs of the contraction engine: which multilinear terms to evaluate over a graph.

Every map the engine computes is a partial derivative of one scalar form over the pairs ``e`` of a
graph (per feature, summed over features)::

    S = sum_e sum_t k[p_t] c_t  U[e, a_t] V[e, b_t] O[e, o_t]

whose three per-pair factors are *views* of operand arrays:

* ``U``: ``("filter", basis, W)`` = ``basis[e] @ W`` per degree (MessagePass's filter),
  ``("bias", b)`` = ``b`` on the scalar slot, or ``("pair", u)`` = ``u[:, e]`` (plain tensor product);
* ``V``: ``("gather", X, w)`` = ``w[e] * X[src[e]]`` (``w`` may be ``None``), or ``("pair", v)``;
* ``O``: ``("gather", G)`` = ``G[dst[e]]`` (dense lists: row ``e // M``), or ``("pair", g)``;
* ``K``: the path kernel operand ``k``.

``S`` is linear in every operand, so a :class:`Term` names one operand per position and leaves
exactly one position :data:`HOLE`: the term is ``dS/d(hole)``, an array of the hole operand's
kind (node features for ``X``/``G``, per-pair arrays for ``basis``/``u``/``v``/``g``/``w``,
parameters for ``W``/``bias``/``k``). MessagePass's forward pass is the term with the hole at
``O``'s ``G``. The JVP of a program replaces one operand of a term by its tangent
(:func:`jvp_terms`), and the transpose with respect to an operand moves the hole there and puts
the output's cotangent where the hole was (:func:`transpose_terms`): both are again programs, so
derivatives of every order run on the same engine.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

from .paths import Table

HOLE = -1

#: Operand kinds and their array layouts (``E`` pairs, ``N`` nodes, ``N'`` segments).
KIND_LAYOUT = {
    "basis": "((Lb+1)**2, E, K) slot-major pair basis",
    "W": "(Lb+1, K, F) filter weights",
    "bias": "(F,) filter bias",
    "X": "(N, nv, F) node inputs",
    "w": "(Sw, Ew, Fw) slot-major pair weights, Ew/Sw/Fw each 1 or full",
    "k": "(npath, F) path kernel",
    "G": "(N', no, F) node outputs",
    "u": "(nu, E, F) slot-major first factor",
    "v": "(nv, E, F) slot-major second factor",
    "g": "(no, E, F) slot-major output",
}
#: Kinds whose arrays are per pair (pair axis 1), per node (node axis 0), or shared.
PAIR_KINDS = frozenset({"basis", "u", "v", "g"})
NODE_KINDS = frozenset({"X", "G"})
PARAM_KINDS = frozenset({"W", "bias", "k"})


class Term(NamedTuple):
    """One partial derivative of ``S``; operand indices, :data:`HOLE` at the derivative's position.

    Attributes:
        out: Index of the program output the term is added to.
        U: ``("filter", basis, W)``, ``("bias", b)`` or ``("pair", u)``.
        V: ``("gather", X, w_or_None)`` or ``("pair", v)``.
        O: ``("gather", G)`` or ``("pair", g)``.
        K: Path-kernel operand index.
    """

    out: int
    U: tuple
    V: tuple
    O: tuple
    K: int


# (slot, position in the view tuple); the K slot is the int itself (position 0 of a 1-tuple).
Position = tuple[str, int]
_KIND_AT = {
    ("U", "filter", 1): "basis", ("U", "filter", 2): "W", ("U", "bias", 1): "bias",
    ("U", "pair", 1): "u", ("V", "gather", 1): "X", ("V", "gather", 2): "w", ("V", "pair", 1): "v",
    ("O", "gather", 1): "G", ("O", "pair", 1): "g",
}


def positions(term: Term) -> list[tuple[Position, int, str]]:
    """``(position, operand index, kind)`` of every position of ``term`` that is not ``None``."""
    out = []
    for slot in ("U", "V", "O"):
        view = getattr(term, slot)
        for j in range(1, len(view)):
            if view[j] is not None:
                out.append(((slot, j), view[j], _KIND_AT[(slot, view[0], j)]))
    out.append((("K", 0), term.K, "k"))
    return out


def replace(term: Term, position: Position, value: int) -> Term:
    """``term`` with the operand at ``position`` replaced by ``value``."""
    slot, j = position
    if slot == "K":
        return term._replace(K=value)
    view = list(getattr(term, slot))
    view[j] = value
    return term._replace(**{slot: tuple(view)})


def hole(term: Term) -> tuple[Position, str]:
    """Position and kind of the term's hole (exactly one)."""
    holes = [(pos, kind) for pos, i, kind in positions(term) if i == HOLE]
    if len(holes) != 1:
        raise ValueError(f"a term needs exactly one hole, got {len(holes)}: {term}")
    return holes[0]


@dataclasses.dataclass(frozen=True)
class Graph:
    """Static structure of the pairs.

    Attributes:
        mode: ``"sparse"`` (``src``, ``dst``, ``valid`` index arrays), ``"dense"`` (``src`` and
            ``valid``; pair ``e`` belongs to row ``e // neighbours``) or ``"pairs"`` (no graph:
            views are per-pair arrays, e.g. a plain tensor product over batch axes).
        num_pairs: ``E``.
        num_nodes: ``N``, rows of ``X`` (0 in ``"pairs"`` mode).
        num_segments: ``N'``, rows of ``G`` (dense: ``N``).
        neighbours: ``M`` (dense mode), else 0.
        dst_sorted: Whether ``dst`` is sorted (sparse mode; a hint for scatters and gathers).
    """

    mode: str
    num_pairs: int
    num_nodes: int = 0
    num_segments: int = 0
    neighbours: int = 0
    dst_sorted: bool = False

    @property
    def index_names(self) -> tuple[str, ...]:
        """Names of the integer/bool operands that follow the float operands."""
        return {"sparse": ("src", "dst", "valid"), "dense": ("src", "valid"), "pairs": ()}[self.mode]


@dataclasses.dataclass(frozen=True)
class Program:
    """Everything static about one engine call (hashable: the primitive's only parameter).

    Attributes:
        table: CG term table (``nu`` U slots, ``nv`` V slots, ``no`` O slots, ``npath`` paths).
        graph: :class:`Graph`.
        basis_max_degree: ``Lb`` of ``filter`` views (rows of ``W``).
        precision: ``jax.lax.Precision`` of the filter's matrix products.
        kinds: Kind of every float operand (see :data:`KIND_LAYOUT`).
        shapes: Shape of every float operand.
        terms: The :class:`Term` s.
        outputs: ``(kind, shape)`` of every output; output ``j`` is the sum of its terms.
        schedule: The :attr:`eqx_mp.Config.schedule` setting when the program was traced
            (``"auto"``, ``"cpu"`` or ``"gpu"``; resolved per platform at lowering, see
            :mod:`.schedule`).
    """

    table: Table
    graph: Graph
    basis_max_degree: int
    precision: Any
    kinds: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    terms: tuple[Term, ...]
    outputs: tuple[tuple[str, tuple[int, ...]], ...]
    schedule: str = "auto"

    def __post_init__(self):
        for t in self.terms:
            (_, kind) = hole(t)
            if kind != self.outputs[t.out][0]:
                raise ValueError(f"term {t} has its hole at a {kind!r} but output {t.out} is "
                                 f"{self.outputs[t.out][0]!r}")
            for _, i, kind in positions(t):
                if i != HOLE and self.kinds[i] != kind:
                    raise ValueError(f"term {t}: operand {i} is a {self.kinds[i]!r}, not a {kind!r}")


def jvp_terms(terms: tuple[Term, ...], tangent_of: dict[int, int]) -> tuple[Term, ...]:
    """Terms of the JVP: each term once per operand that has a tangent, with the tangent in its place.

    Arguments:
        terms: The program's terms.
        tangent_of: Operand index -> index of its tangent operand (only nonzero tangents).

    Returns:
        The tangent terms (each output keeps its index).
    """
    out = []
    for t in terms:
        for pos, i, _ in positions(t):
            if i in tangent_of:
                out.append(replace(t, pos, tangent_of[i]))
    return tuple(out)


def transpose_terms(
    terms: tuple[Term, ...], undefined: dict[int, int], ct_of: dict[int, int]
) -> tuple[Term, ...]:
    """Terms of the transpose with respect to the ``undefined`` (linear) operands.

    Every term must contain exactly one undefined operand (the program is linear in them); the
    hole moves to that operand's position and the cotangent of the term's output fills the old
    hole.

    Arguments:
        terms: The program's terms.
        undefined: Undefined operand index -> index of the new output that receives its cotangent.
        ct_of: Output index -> operand index of its (nonzero) cotangent; outputs without one are
            skipped.

    Returns:
        The transposed terms.
    """
    out = []
    for t in terms:
        if t.out not in ct_of:
            continue
        lin = [(pos, i) for pos, i, _ in positions(t) if i in undefined]
        if len(lin) != 1:
            raise NotImplementedError(
                f"the contraction is multilinear: transposing needs exactly one linear operand per "
                f"term, got {len(lin)} in {t}")
        (pos, i), (old, _) = lin[0], hole(t)
        t = replace(replace(t, pos, HOLE), old, ct_of[t.out])
        out.append(t._replace(out=undefined[i]))
    return tuple(out)


def prune(
    kinds: tuple[str, ...], shapes: tuple, operands: list, terms: tuple[Term, ...]
) -> tuple[tuple[str, ...], tuple, list, tuple[Term, ...]]:
    """Drop operands no term uses and renumber the rest (keeps programs and their inputs small)."""
    used = sorted({i for t in terms for _, i, _ in positions(t) if i != HOLE})
    new = {old: j for j, old in enumerate(used)}
    new[HOLE] = HOLE

    def ren(t: Term) -> Term:
        for pos, i, _ in positions(t):
            t = replace(t, pos, new[i])
        return t

    return (tuple(kinds[i] for i in used), tuple(shapes[i] for i in used),
            [operands[i] for i in used], tuple(ren(t) for t in terms))


# --------------------------------------------------------------------------------------------
# Execution plan: which contractions a block runs, and what each feeds.
# --------------------------------------------------------------------------------------------

SLOTS = ("U", "V", "O", "K")


class Group(NamedTuple):
    """One contraction per block: ``hole`` slot, the sums of views in the other three slots (in
    :data:`SLOTS` order), and the ``(output, hole view)`` adjoints its result feeds.

    A group whose hole is ``U``, ``V`` or ``O`` can also carry a path-kernel gradient that shares
    its two non-``K`` factors: ``k_factor`` is that gradient's factor in the hole slot and
    ``k_adjoints`` its adjoints (see :func:`plan`)."""

    hole: str
    factors: tuple[tuple[tuple, ...], ...]
    adjoints: tuple[tuple[int, tuple], ...]
    k_factor: tuple[tuple, ...] | None = None
    k_adjoints: tuple[tuple[int, tuple], ...] = ()


@functools.lru_cache(maxsize=None)
def plan(terms: tuple[Term, ...]) -> tuple[Group, ...]:
    """Group terms into as few contractions as multilinearity allows.

    Two terms with the same hole slot and the same adjoint (output and hole view) that agree in two
    of their three factors are one contraction with the third factor summed (e.g. the filter and
    bias parts of ``U``, or the JVP's tangents of ``basis``, ``W`` and ``bias``). Terms whose
    three factors agree share one contraction and feed several adjoints (e.g. the gradients of
    ``basis``, ``W`` and ``bias`` all read ``dS/dU``).
    """
    items = []
    for t in terms:
        (slot, _), _ = hole(t)
        views = {"U": t.U, "V": t.V, "O": t.O, "K": ("k", t.K)}
        factors = tuple((views[s],) for s in SLOTS if s != slot)
        items.append([slot, (t.out, views[slot]), factors])
    merged = True
    while merged:
        merged = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                a, b = items[i], items[j]
                if a[0] != b[0] or a[1] != b[1]:
                    continue
                diff = [s for s in range(3) if a[2][s] != b[2][s]]
                if len(diff) == 1:
                    s = diff[0]
                    f = list(a[2])
                    f[s] = tuple(sorted(a[2][s] + b[2][s], key=repr))
                    a[2] = tuple(f)
                    del items[j]
                    merged = True
                    break
            if merged:
                break
    groups: dict[tuple, list] = {}
    for slot, adjoint, factors in items:
        groups.setdefault((slot, factors), []).append(adjoint)
    return _pair_path_gradients([Group(slot, f, tuple(adj)) for (slot, f), adj in groups.items()])


def _pair_path_gradients(groups: list[Group]) -> tuple[Group, ...]:
    """Fuse each path-kernel gradient with a contraction that shares its two other factors.

    ``dS/dk[p] = sum_a U[a] Q[p, a]`` and ``dS/dU[a] = sum_p k[p] Q[p, a]`` both follow from the
    per-path partial sums ``Q[p, a] = sum_{t in p, a_t = a} c_t V[b_t] O[o_t]`` (likewise with the
    roles of ``U``, ``V``, ``O`` exchanged), so the pair costs one contraction instead of two.
    """
    out = [g for g in groups if g.hole != "K"]
    for kg in (g for g in groups if g.hole == "K"):
        kf: dict[str, tuple] = dict(zip(("U", "V", "O"), kg.factors))
        for i, g in enumerate(out):
            if g.k_factor is not None:
                continue
            gf: dict[str, tuple] = dict(zip([s for s in SLOTS if s != g.hole], g.factors))
            if all(gf[s] == kf[s] for s in ("U", "V", "O") if s != g.hole):
                out[i] = g._replace(k_factor=kf[g.hole], k_adjoints=kg.adjoints)
                break
        else:
            out.append(kg)
    return tuple(out)
