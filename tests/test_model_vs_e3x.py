"""A complete e3x-style potential written with eqx_mp only vs. the same model in e3x.

Embed -> basis -> [MessagePass -> add (residual) -> Dense -> silu] x 2 -> scalar readout ->
energy, forces = -dE/dR. The e3x model is an ordinary flax module; its weights are carried over
layer by layer with ``eqx_mp.interop.from_e3x`` (example arguments recorded with
``flax.linen.intercept_methods``). Energies and forces must agree to 1e-5 (float32) and 1e-10
(float64).
"""

from __future__ import annotations

import functools

import e3x
import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqx_mp
from eqx_mp.interop import from_e3x

FEATURES = 8
NUM_BASIS = 6
BASIS_MAX_DEGREE = 2
MAX_DEGREE = 1
CUTOFF = 3.0
NUM_ELEMENTS = 10
# Compile at XLA optimisation level 0 (both models alike): the CPU backend's optimisations
# dominate the test time and change nothing that is compared here.
_FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@pytest.fixture(params=["float32", pytest.param("float64", marks=pytest.mark.slow)])
def dtype(request):
    """Run the test in float32, and in float64 with x64 enabled only for this test."""
    if request.param == "float32":
        yield jnp.float32
        return
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        yield jnp.float64
    finally:
        jax.config.update("jax_enable_x64", prev)


# --------------------------------------------------------------------------- the e3x model


class E3xPotential(nn.Module):
    """The reference model, written with e3x/flax only."""

    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, numbers, positions, dst_idx, src_idx):
        r = positions[src_idx] - positions[dst_idx]
        basis = e3x.nn.basis(
            r,
            max_degree=BASIS_MAX_DEGREE,
            num=NUM_BASIS,
            radial_fn=functools.partial(e3x.nn.reciprocal_bernstein, kind="damped"),
            cutoff_fn=functools.partial(e3x.nn.smooth_cutoff, cutoff=CUTOFF),
            damping_fn=e3x.nn.smooth_damping,
        )
        x = e3x.nn.Embed(NUM_ELEMENTS, FEATURES, param_dtype=self.param_dtype)(numbers)
        for _ in range(2):
            y = e3x.nn.MessagePass(max_degree=MAX_DEGREE, param_dtype=self.param_dtype)(
                x, basis, dst_idx=dst_idx, src_idx=src_idx, num_segments=numbers.shape[0]
            )
            x = e3x.nn.add(x, y)
            x = e3x.nn.Dense(FEATURES, param_dtype=self.param_dtype)(x)
            x = e3x.nn.silu(x)
        x = e3x.nn.change_max_degree_or_type(x, max_degree=0, include_pseudotensors=False)
        atomic_energies = e3x.nn.Dense(1, use_bias=False, param_dtype=self.param_dtype)(x)
        return jnp.sum(atomic_energies)


# --------------------------------------------------------------------------- the eqx_mp model


class EqxPotential(eqx.Module):
    """The same model, written with eqx_mp only (eager modules, explicit sizes)."""

    embed: eqx_mp.nn.Embed
    message_passes: tuple[eqx_mp.nn.MessagePass, ...]
    denses: tuple[eqx_mp.nn.Dense, ...]
    readout: eqx_mp.nn.Dense

    def __init__(self, *, param_dtype=jnp.float32, key):
        keys = jax.random.split(key, 6)
        self.embed = eqx_mp.nn.Embed(NUM_ELEMENTS, FEATURES, param_dtype=param_dtype, key=keys[0])
        mps, denses = [], []
        in_degree, in_parity = 0, 1
        for i in range(2):
            mp = eqx_mp.nn.MessagePass(
                FEATURES, NUM_BASIS, in_degree, BASIS_MAX_DEGREE, in_parity=in_parity,
                max_degree=MAX_DEGREE, param_dtype=param_dtype, key=keys[1 + 2 * i],
            )
            # add() of inputs and messages has the larger degree / type of the two
            in_degree = max(in_degree, mp.max_degree)
            in_parity = max(in_parity, mp.out_parity)
            mps.append(mp)
            denses.append(eqx_mp.nn.Dense(FEATURES, FEATURES, in_degree, parity=in_parity,
                                          param_dtype=param_dtype, key=keys[2 + 2 * i]))
        self.message_passes, self.denses = tuple(mps), tuple(denses)
        self.readout = eqx_mp.nn.Dense(FEATURES, 1, 0, parity=1, use_bias=False,
                                       param_dtype=param_dtype, key=keys[5])

    def __call__(self, numbers, positions, dst_idx, src_idx):
        r = positions[src_idx] - positions[dst_idx]
        basis = eqx_mp.nn.basis(
            r,
            max_degree=BASIS_MAX_DEGREE,
            num=NUM_BASIS,
            radial_fn=functools.partial(eqx_mp.nn.reciprocal_bernstein, kind="damped"),
            cutoff_fn=functools.partial(eqx_mp.nn.smooth_cutoff, cutoff=CUTOFF),
            damping_fn=eqx_mp.nn.smooth_damping,
        )
        x = self.embed(numbers)
        for mp, dense in zip(self.message_passes, self.denses):
            y = mp(x, basis, dst_idx=dst_idx, src_idx=src_idx, num_segments=numbers.shape[0])
            x = eqx_mp.nn.add(x, y)
            x = eqx_mp.nn.silu(dense(x))
        x = eqx_mp.nn.change_max_degree_or_type(x, max_degree=0, include_pseudotensors=False)
        return jnp.sum(self.readout(x))


def init_and_convert(model, seed, *args):
    """Random e3x variables, and the eqx_mp model with the same weights.

    ``model.init`` is only traced (``jax.eval_shape``: compiling the initialisers would dominate
    the test time) while each top-level submodule's call arguments are recorded; the parameters
    are then filled with seeded random values (LeCun-like scale) and converted layer by layer with
    ``from_e3x``. Returns ``(variables, eqx_model)``.
    """
    calls = []

    def shape_only(a):  # from_e3x needs the example arguments' shapes only
        return np.zeros(a.shape, a.dtype) if isinstance(a, jax.Array) else a

    def record(next_fun, call_args, call_kwargs, context):
        if context.method_name == "__call__" and len(context.module.scope.path) == 1:
            calls.append((context.module.scope.path[0], context.module.clone(parent=None),
                          jax.tree.map(shape_only, call_args),
                          jax.tree.map(shape_only, call_kwargs)))
        return next_fun(*call_args, **call_kwargs)

    with nn.intercept_methods(record):
        shapes = jax.eval_shape(model.init, jax.random.key(0), *args)
    rng = np.random.default_rng(seed)

    def fill(s):
        scale = 1.0 / np.sqrt(s.shape[-2]) if len(s.shape) >= 2 else 0.1
        return jnp.asarray(rng.normal(scale=scale, size=s.shape), s.dtype)

    variables = jax.tree.map(fill, shapes)
    params = variables["params"]
    conv = {name: from_e3x(m, {"params": params[name]}, *a, **kw) for name, m, a, kw in calls}
    assert sorted(conv) == ["Dense_0", "Dense_1", "Dense_2", "Embed_0", "MessagePass_0",
                            "MessagePass_1"]
    dtype = jnp.asarray(params["Embed_0"]["embedding"]).dtype
    skeleton = eqx.filter_eval_shape(EqxPotential, param_dtype=dtype, key=jax.random.key(0))
    ours = eqx.tree_at(
        lambda m: (m.embed, m.message_passes, m.denses, m.readout),
        skeleton,
        (conv["Embed_0"], (conv["MessagePass_0"], conv["MessagePass_1"]),
         (conv["Dense_0"], conv["Dense_1"]), conv["Dense_2"]),
    )
    return variables, ours


def _random_rotation(seed):
    """A random proper rotation matrix (numpy QR; no device work)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _system(dtype, seed=0):
    """5 atoms, all ordered pairs; one atom beyond the cutoff of two others."""
    rng = np.random.default_rng(seed)
    positions = rng.uniform(0.0, 2.0, size=(5, 3))
    positions[4] = [5.5, 0.5, 0.5]
    numbers = rng.integers(1, NUM_ELEMENTS, size=5)
    dst, src = np.nonzero(~np.eye(5, dtype=bool))
    return (jnp.asarray(numbers, jnp.int32), jnp.asarray(positions, dtype),
            jnp.asarray(dst, jnp.int32), jnp.asarray(src, jnp.int32))


def test_energy_and_forces_match_e3x(dtype):
    numbers, positions, dst, src = _system(dtype)
    ref_model = E3xPotential(param_dtype=dtype)
    variables, ours = init_and_convert(ref_model, 42, numbers, positions, dst, src)

    # the converted model has exactly the structure of one built from sizes
    fresh = eqx.filter_eval_shape(EqxPotential, param_dtype=dtype, key=jax.random.key(1))
    def shapes(m):
        leaves = jax.tree_util.tree_flatten_with_path(m)[0]
        return [(jax.tree_util.keystr(k), a.shape, a.dtype) for k, a in leaves]

    assert shapes(ours) == shapes(fresh)

    def ref_energy(pos):
        return ref_model.apply(variables, numbers, pos, dst, src)

    def our_energy_and_forces(model, pos):
        e, g = jax.value_and_grad(lambda p: model(numbers, p, dst, src))(pos)
        return e, -g

    params, static = eqx.partition(ours, eqx.is_array)
    ours_fn = jax.jit(lambda prm, pos: our_energy_and_forces(eqx.combine(prm, static), pos))
    ours_fn = ours_fn.lower(params, positions).compile(_FAST_COMPILE)
    ref_e, ref_g = (
        jax.jit(jax.value_and_grad(ref_energy)).lower(positions).compile(_FAST_COMPILE)(positions)
    )
    e, f = ours_fn(params, positions)
    assert e.dtype == dtype and f.shape == (5, 3)
    assert bool(jnp.all(jnp.isfinite(f)))
    tol = 1e-5 if dtype == jnp.float32 else 1e-10
    scale = max(1.0, float(jnp.abs(ref_e)))
    np.testing.assert_allclose(e, ref_e, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(f, -ref_g, rtol=tol, atol=tol * max(1.0, float(jnp.max(jnp.abs(ref_g)))))
    assert float(jnp.max(jnp.abs(f))) > 1e-3  # non-trivial forces

    # same numbers for a rotated + translated copy (and both models are invariant/equivariant)
    rot = jnp.asarray(_random_rotation(7), dtype)
    moved = positions @ rot + jnp.asarray([0.3, -1.0, 2.0], dtype)
    e2, f2 = ours_fn(params, moved)
    np.testing.assert_allclose(e2, e, rtol=10 * tol, atol=10 * tol * scale)
    np.testing.assert_allclose(f2, f @ rot, atol=10 * tol * max(1.0, float(jnp.max(jnp.abs(f)))))
