"""The contraction engine as one JAX primitive, closed under JVP, transposition and batching.

``cg_p`` evaluates a :class:`~.program.Program` (see :mod:`.program`) with the block loop of
:mod:`.engine`. Its rules only rewrite programs:

* **JVP**: the tangent of every output is the same program with one operand of each term replaced
  by its tangent (:func:`~.program.jvp_terms`): one more call of the engine.
* **Transpose**: with respect to the linear operands, each term moves its hole to the linear
  operand and reads the output's cotangent where the hole was (:func:`~.program.transpose_terms`):
  one call of the engine computes all cotangents (inputs, basis, filter weights, bias, path kernel,
  pair weights) in one pass over the blocks.
* **Batching**: a batch of graphs is folded into one graph (node and pair axes concatenated, indices
  offset) when only graph operands are batched and all outputs are per node or per pair; anything
  else (batched parameters, per-example parameter gradients) maps the engine over the batch.

So ``grad``, ``jvp``, ``jacfwd``, ``jacrev``, ``hessian``, ``vmap`` and reverse-over-reverse
(training on forces) all stay on the fused engine; nothing is differentiated generically.

**Lowering**: one rule per platform (``mlir.register_lowering(..., platform=...)``) evaluates
the program with the :class:`~.schedule.Schedule` of that platform, or the one
:attr:`eqx_mp.Config.schedule` forces (traced into the program as ``Program.schedule``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import ShapedArray
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from .engine import padded_size, run
from .schedule import current, resolve
from .graph import FlatGraph, pad, padded
from .paths import Table
from .program import (
    HOLE, NODE_KINDS, PARAM_KINDS, Graph, Program, Term, jvp_terms, prune,
    transpose_terms,
)

cg_p = Primitive("eqx_mp_cg")
cg_p.multiple_results = True


def call(
    base: Program,
    kinds: Sequence[str],
    shapes: Sequence,
    operands: list,
    terms: tuple[Term, ...],
    outputs: tuple[tuple[str, tuple[int, ...]], ...],
    index: tuple,
    graph: Graph | None = None,
) -> list[jax.Array | None]:
    """Bind ``cg_p`` for a program that shares ``base``'s table and filter settings.

    Unused operands are dropped and outputs without terms are not computed. A program derived
    from another (``base`` has terms: derivatives, folded batches) keeps its schedule setting; an
    entry point's takes :attr:`eqx_mp.Config.schedule` as it is now.

    Returns:
        One array per entry of ``outputs``, or ``None`` where no term produces it (zero).
    """
    kinds, shapes, operands, terms = prune(tuple(kinds), tuple(shapes), list(operands), terms)
    live = sorted({t.out for t in terms})
    if not live:
        return [None] * len(outputs)
    renum = {j: n for n, j in enumerate(live)}
    program = Program(
        table=base.table, graph=base.graph if graph is None else graph,
        basis_max_degree=base.basis_max_degree, precision=base.precision, kinds=kinds,
        shapes=tuple(tuple(s) for s in shapes), terms=tuple(t._replace(out=renum[t.out]) for t in terms),
        outputs=tuple(outputs[j] for j in live),
        schedule=base.schedule if base.terms else current())
    res = cg_p.bind(*operands, *index, program=program)
    out: list = [None] * len(outputs)
    for j, r in zip(live, res):
        out[j] = r
    return out


def call_single(base: Program, kinds: Sequence[str], shapes: Sequence, operands: list,
                terms: tuple[Term, ...], output: tuple[str, tuple[int, ...]], index: tuple) -> jax.Array:
    """:func:`call` for a program with one output that its terms produce (an entry point)."""
    (out,) = call(base, kinds, shapes, operands, terms, (output,), index)
    if out is None:  # pragma: no cover - entry points always have a term
        raise AssertionError(f"no term produces the output {output}")
    return out


@functools.lru_cache(maxsize=128)
def _compiled(program: Program):
    return jax.jit(functools.partial(cg_p.bind, program=program))


def _impl(*args, program):
    return _compiled(program)(*args)


def _abstract_eval(*avals, program):
    dtype = avals[0].dtype
    return [ShapedArray(tuple(shape), dtype) for _, shape in program.outputs]


def _lowering(platform: str):
    def lower(*args, program):
        return run(program, *args, schedule=resolve(program.schedule, platform))

    return mlir.lower_fun(lower, multiple_results=True)


cg_p.def_impl(_impl)
cg_p.def_abstract_eval(_abstract_eval)
#: Platforms with a rule of their own; any other platform gets the GPU schedule's rule.
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
mlir.register_lowering(cg_p, _lowering("accelerator"))
for _platform in PLATFORMS:
    mlir.register_lowering(cg_p, _lowering(_platform), platform=_platform)


def _zero(shape, dtype) -> ad.Zero:
    return ad.Zero(ShapedArray(tuple(shape), dtype))


def _jvp(primals, tangents, *, program):
    n = len(program.kinds)
    outs = cg_p.bind(*primals, program=program)
    ops, kinds, shapes = list(primals[:n]), list(program.kinds), list(program.shapes)
    tangent_of = {}
    for i in range(n):
        if type(tangents[i]) is ad.Zero:
            continue
        tangent_of[i] = len(ops)
        ops.append(tangents[i])
        kinds.append(program.kinds[i])
        shapes.append(program.shapes[i])
    res = call(program, kinds, shapes, ops, jvp_terms(program.terms, tangent_of), program.outputs,
               primals[n:])
    dtype = outs[0].dtype
    return outs, [_zero(s, dtype) if r is None else r for r, (_, s) in zip(res, program.outputs)]


def _transpose(cts, *args, program):
    n = len(program.kinds)
    ops, kinds, shapes = list(args[:n]), list(program.kinds), list(program.shapes)
    undefined, outputs = {}, []
    for i in range(n):
        if ad.is_undefined_primal(ops[i]):
            undefined[i] = len(outputs)
            outputs.append((program.kinds[i], program.shapes[i]))
            ops[i] = None
    ct_of = {}
    for j, ct in enumerate(cts):
        if type(ct) is ad.Zero:
            continue
        ct_of[j] = len(ops)
        ops.append(ct)
        kinds.append(program.outputs[j][0])
        shapes.append(program.outputs[j][1])
    res = call(program, kinds, shapes, ops, transpose_terms(program.terms, undefined, ct_of),
               tuple(outputs), args[n:])
    out: list[Any] = [None] * len(args)
    for i, j in undefined.items():
        out[i] = res[j] if res[j] is not None else ad.Zero(args[i].aval)
    return out


ad.primitive_jvps[cg_p] = _jvp
ad.primitive_transposes[cg_p] = _transpose


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------


def _foldable(program: Program, dims) -> bool:
    n = len(program.kinds)
    for kind, d in zip(program.kinds, dims[:n]):
        if d is not None and kind in PARAM_KINDS:
            return False
    for kind, shape in program.outputs:
        if kind in PARAM_KINDS or (kind == "w" and shape[1] == 1):
            return False
    return True


def _fold(args, dims, program: Program, size: int):
    """Fold a batch of ``size`` graphs into one graph of ``size`` times the nodes and pairs."""
    g = program.graph
    n = len(program.kinds)
    e, nn, ns = g.num_pairs, g.num_nodes, g.num_segments

    def front(a, d):
        a = jnp.moveaxis(a, d, 0) if d is not None else a[None]
        return jnp.broadcast_to(a, (size,) + a.shape[1:])

    ops, shapes = [], []
    for a, d, kind, shape in zip(args[:n], dims[:n], program.kinds, program.shapes):
        if kind in PARAM_KINDS or (d is None and kind == "w" and shape[1] == 1):
            ops.append(a)  # shared by every graph of the batch
            shapes.append(shape)
            continue
        a = front(a, d)
        if kind == "w" and shape[1] == 1:
            a = jnp.broadcast_to(a, (size, shape[0], e, shape[2]))
        if kind in NODE_KINDS:  # (size, rows, slots, F) -> (size * rows, slots, F)
            a = a.reshape((size * a.shape[1],) + a.shape[2:])
        else:  # (size, slots, pairs, K or F) -> (slots, size * pairs, K or F)
            a = jnp.moveaxis(a, 0, 1)
            a = a.reshape((a.shape[0], size * a.shape[2], a.shape[3]))
        ops.append(a)
        shapes.append(a.shape)
    index = dict(zip(g.index_names, (front(a, d) for a, d in zip(args[n:], dims[n:]))))
    new_index = []
    offsets = jnp.arange(size, dtype=jnp.int32)[:, None]
    for name in g.index_names:
        a = index[name]
        if name == "src":
            a = a + offsets * nn
        elif name == "dst":
            a = jnp.where(index["valid"], a + offsets * ns, size * ns)
        new_index.append(a.reshape(-1))
    graph = Graph(g.mode, size * e, size * nn, size * ns, g.neighbours, False)
    outputs = []
    for kind, shape in program.outputs:
        if kind in NODE_KINDS:
            outputs.append((kind, (size * shape[0],) + tuple(shape[1:])))
        else:
            outputs.append((kind, (shape[0], size * shape[1], shape[2])))
    res = call(program, program.kinds, shapes, ops, program.terms, tuple(outputs), tuple(new_index),
               graph=graph)
    out, out_dims = [], []
    for r, (kind, shape) in zip(res, program.outputs):
        assert r is not None  # the same terms as the batched program: every output is produced
        if kind in NODE_KINDS:
            out.append(r.reshape((size,) + tuple(shape)))
            out_dims.append(0)
        else:
            out.append(r.reshape((shape[0], size) + tuple(shape[1:])))
            out_dims.append(1)
    return out, out_dims


def _batch(args, dims, *, program):
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    if _foldable(program, dims):
        return _fold(args, dims, program, size)
    mapped = [i for i, d in enumerate(dims) if d is not None]
    xs = [jnp.moveaxis(args[i], dims[i], 0) for i in mapped]

    def one(xs_i):
        a = list(args)
        for i, x in zip(mapped, xs_i):
            a[i] = x
        return cg_p.bind(*a, program=program)

    return jax.lax.map(one, xs), [0] * len(program.outputs)


batching.primitive_batchers[cg_p] = _batch


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def message_pass(
    table: Table,
    basis_max_degree: int,
    x: jax.Array,
    basis: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None,
    k: jax.Array,
    w: jax.Array | None,
    fg: FlatGraph,
    precision: Any = None,
) -> jax.Array:
    """Fused message pass over one (folded) graph: gather, filter, CG product, weights, sum.

    Arguments:
        table: CG term table; ``nu = (Lb+1)**2`` filter slots, ``nv = P * (L+1)**2`` input slots.
        basis_max_degree: ``Lb``.
        x: ``(N, nv, F)`` node features, slots flattened.
        basis: ``((Lb+1)**2, E, K)`` pair basis, slot-major.
        kernel: ``(Lb+1, K, F)`` filter weights.
        bias: ``(F,)`` filter bias or ``None``.
        k: ``(npath, F)`` path kernel.
        w: ``None`` or pair weights ``(Ew, Sw, Fw)``, ``Ew in (1, E)``, ``Sw in (1, nv)``,
            ``Fw in (1, F)``.
        fg: The neighbour list (:func:`~.graph.flat_graph`); invalid pairs contribute nothing and
            get zero gradients.
        precision: ``jax.lax.Precision`` of the filter's matrix products.

    Returns:
        ``(N', no, F)`` messages, ``N' = fg.graph.num_segments``.

    The pair axis is padded once here (:func:`~.graph.padded`), so every program derived from this
    call runs on the same arrays with no further padding.
    """
    f = x.shape[-1]
    graph, index, rows = padded(fg)
    e_pad = graph.num_pairs
    ops = [pad(basis, e_pad, 1), kernel, x, k]
    kinds = ["basis", "W", "X", "k"]
    v_view = ("gather", 2, None)
    if w is not None:
        v_view = ("gather", 2, len(ops))
        w = jnp.transpose(w, (1, 0, 2))
        ops.append(w if w.shape[1] == 1 else pad(w, e_pad, 1))
        kinds.append("w")
    terms = [Term(0, ("filter", 0, 1), v_view, ("gather", HOLE), 3)]
    if bias is not None:
        terms.append(Term(0, ("bias", len(ops)), v_view, ("gather", HOLE), 3))
        ops.append(bias)
        kinds.append("bias")
    base = Program(table, graph, basis_max_degree, precision, (), (), (), ())
    out = call_single(base, kinds, [a.shape for a in ops], ops, tuple(terms),
                      ("G", (rows, table.no, f)), index)
    return out[: fg.graph.num_segments]


def bilinear(table: Table, u: jax.Array, v: jax.Array, k: jax.Array) -> jax.Array:
    """Sparse CG bilinear map ``out[..., o, f] = sum_t k[p_t, f] c_t u[..., a_t, f] v[..., b_t, f]``.

    Arguments:
        table: Static term table.
        u: ``(..., nu, F)``.
        v: ``(..., nv, F)``; leading axes broadcast against ``u``'s.
        k: ``(npath, F)`` path weights.

    Returns:
        ``(..., no, F)``.
    """
    batch = jnp.broadcast_shapes(u.shape[:-2], v.shape[:-2])
    f = u.shape[-1]
    e = int(np.prod(batch, dtype=np.int64))
    if e == 0:
        return jnp.zeros(batch + (table.no, f), u.dtype)

    e_pad = padded_size(e)

    def slot_major(a, slots):
        a = jnp.broadcast_to(a, batch + a.shape[-2:]).reshape(e, slots, f)
        return pad(jnp.transpose(a, (1, 0, 2)), e_pad, 1)

    ops = [slot_major(u, table.nu), slot_major(v, table.nv), k]
    base = Program(table, Graph("pairs", e_pad), 0, None, (), (), (), ())
    terms = (Term(0, ("pair", 0), ("pair", 1), ("pair", HOLE), 2),)
    out = call_single(base, ("u", "v", "k"), [a.shape for a in ops], ops, terms,
                      ("g", (table.no, e_pad, f)), ())
    return jnp.transpose(out[:, :e], (1, 0, 2)).reshape(batch + (table.no, f))
