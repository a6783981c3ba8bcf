"""Property tests of the shape-checking layer: MessagePass, Dense and Tensor accept exactly the valid
layouts. Valid -> no error and the documented output shape; one perturbed axis -> ShapeError whose
message names the argument (and, for the feature layout axes, the axis).

Modules are built with ``eqx.filter_eval_shape`` and zero-filled (no initialiser cost); valid calls
are checked with ``eqx.filter_eval_shape`` (the checks run at trace time, and compiling a fresh
executable for every random shape would take minutes on two shared cores); invalid calls are made
eagerly with NumPy arrays (the error comes before any computation).
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eqx_mp import ShapeError
from eqx_mp.nn import Dense, FusedTensor, MessagePass, Tensor

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


@functools.lru_cache(maxsize=None)
def _build(cls, *args, **kwargs):
    sk = eqx.filter_eval_shape(cls, *args, key=jax.random.key(0), **kwargs)
    return jax.tree_util.tree_map(
        lambda s: np.zeros(s.shape, s.dtype) if isinstance(s, jax.ShapeDtypeStruct) else s, sk
    )


def _sds(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(tuple(shape), dtype)


def _perturb(shape, axis, new):
    s = list(shape)
    s[axis] = new
    return tuple(s)


def _expect_shape_error(fn, *fragments):
    try:
        fn()
    except ShapeError as err:
        msg = str(err)
        assert any(f in msg for f in fragments), (fragments, msg)
        return
    raise AssertionError(f"no ShapeError; expected one naming {fragments}")


def _layout_fragment(name, axis):
    return {-1: f"{name}: axis -1", -2: f"{name}: axis -2", -3: f"{name}: axis -3"}[axis]


def _bad_size(draw, axis, size):
    """A wrong size for a layout axis: parity -> 3 or the other parity; others -> +1 (or +2)."""
    if axis == -3:
        return draw(st.sampled_from([p for p in (1, 2, 3) if p != size]))
    return size + draw(st.sampled_from([1, 2]))


# ----------------------------------------------------------------------------- MessagePass


@st.composite
def mp_case(draw):
    L = draw(st.integers(0, 2))
    Lb = draw(st.integers(0, 2))
    P = draw(st.sampled_from([1, 2]))
    F = draw(st.integers(1, 2))
    K = draw(st.integers(1, 2))
    batch = tuple(draw(st.lists(st.integers(1, 2), max_size=2)))
    N = draw(st.integers(1, 4))
    dense = draw(st.booleans())
    M = draw(st.integers(0, 3))
    E = draw(st.integers(0, 5))
    return L, Lb, P, F, K, batch, N, dense, M, E


@SETTINGS
@given(mp_case(), st.data())
def test_message_pass_layouts(case, data):
    L, Lb, P, F, K, batch, N, dense, M, E = case
    mp = _build(MessagePass, F, K, L, Lb, in_parity=P)
    x = batch + (N, P, (L + 1) ** 2, F)
    pairs = batch + ((N, M) if dense else (E,))
    b = pairs + (1, (Lb + 1) ** 2, K)
    names = ("adj_idx",) if dense else ("dst_idx", "src_idx")
    shapes = {"inputs": x, "basis": b, **{n: pairs for n in names}}

    def call(shapes, make):
        idx = {n: make(shapes[n], jnp.int32) for n in names}
        return mp(make(shapes["inputs"]), make(shapes["basis"]), **idx)

    idx = {n: _sds(shapes[n], jnp.int32) for n in names}
    out = eqx.filter_eval_shape(lambda m, x, b, idx: m(x, b, **idx), mp, _sds(x), _sds(b), idx)
    assert out.shape == batch + (N, mp.out_parity, (mp.max_degree + 1) ** 2, F)

    # Perturb exactly one axis of one argument.
    arg = data.draw(st.sampled_from(sorted(shapes)))
    shape = shapes[arg]
    axes = list(range(-len(shape), 0))
    if arg == "inputs" and not dense:
        axes.remove(-4)  # N is free for sparse lists (num_segments defaults to it)
    if arg in ("inputs", "basis") and shape[-1] == 0:
        return
    axis = data.draw(st.sampled_from(axes))
    layout_axes = (-3, -2, -1) if arg in ("inputs", "basis") else ()
    if arg == "basis" and axis == -3:
        new = data.draw(st.sampled_from([2, 3]))
    elif axis in layout_axes:
        new = _bad_size(data.draw, axis, shape[axis])
    else:
        new = shape[axis] + data.draw(st.sampled_from([1, 2]))
    bad = dict(shapes, **{arg: _perturb(shape, axis, new)})

    def make(s, dtype=np.float32):
        return np.zeros(s, dtype)

    if axis in layout_axes:
        fragments = (_layout_fragment(arg, axis),)
    else:  # a pair/batch axis: the message names the argument or its partner and shows the shapes
        fragments = (arg, "index list", "inputs") if arg != "basis" else ("basis",)
    _expect_shape_error(lambda: call(bad, make), *fragments)


# ----------------------------------------------------------------------------- Dense


@SETTINGS
@given(
    st.integers(0, 2), st.sampled_from([1, 2]), st.integers(1, 3), st.integers(1, 3),
    st.lists(st.integers(1, 3), max_size=3), st.data(),
)
def test_dense_layouts(L, P, Fin, Fout, batch, data):
    d = _build(Dense, Fin, Fout, L, parity=P)
    shape = tuple(batch) + (P, (L + 1) ** 2, Fin)
    out = eqx.filter_eval_shape(d, _sds(shape))
    assert out.shape == tuple(batch) + (P, (L + 1) ** 2, Fout)
    axis = data.draw(st.sampled_from([-3, -2, -1]))
    bad = _perturb(shape, axis, _bad_size(data.draw, axis, shape[axis]))
    _expect_shape_error(lambda: d(np.zeros(bad, np.float32)), _layout_fragment("inputs", axis))
    # Too few dimensions.
    _expect_shape_error(lambda: d(np.zeros(shape[-2:], np.float32)), "at least 3 dimensions")


# ----------------------------------------------------------------------------- Tensor


@SETTINGS
@given(
    st.integers(0, 2), st.integers(0, 2), st.sampled_from([1, 2]), st.sampled_from([1, 2]),
    st.integers(1, 2), st.booleans(), st.lists(st.integers(2, 3), max_size=2), st.data(),
)
def test_tensor_layouts(L1, L2, P1, P2, F, fused, batch, data):
    cls = FusedTensor if fused else Tensor
    t = _build(cls, F, L1, L2, parity1=P1, parity2=P2)
    batch = tuple(batch)
    s1 = batch + (P1, (L1 + 1) ** 2, F)
    s2 = (1,) * len(batch) + (P2, (L2 + 1) ** 2, F)  # broadcasts against s1
    out = eqx.filter_eval_shape(t, _sds(s1), _sds(s2))
    assert out.shape == batch + (t.out_parity, (t.max_degree + 1) ** 2, F)
    which = data.draw(st.sampled_from(["inputs1", "inputs2"]))
    shapes = {"inputs1": s1, "inputs2": s2}
    shape = shapes[which]
    axes = [-3, -2, -1] + ([-4] if batch else [])
    axis = data.draw(st.sampled_from(axes))
    if axis == -4:  # a batch axis that no longer broadcasts
        other = shapes["inputs2" if which == "inputs1" else "inputs1"]
        new = max(shape[axis], other[axis]) + 1
        fragments = ("do not broadcast",)
        if which == "inputs2":
            bad = dict(shapes, inputs2=_perturb(shape, axis, new))
        else:
            bad = dict(shapes, inputs1=_perturb(shape, axis, new), inputs2=_perturb(s2, axis, shape[axis]))
    else:
        bad = dict(shapes, **{which: _perturb(shape, axis, _bad_size(data.draw, axis, shape[axis]))})
        fragments = (_layout_fragment(which, axis),)
    _expect_shape_error(lambda: t(np.zeros(bad["inputs1"], np.float32), np.zeros(bad["inputs2"], np.float32)),
                        *fragments)
