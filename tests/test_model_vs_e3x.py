"""A complete e3x-style potential written with eqx_mp only vs. the same model in e3x.

Embed -> basis -> [MessagePass -> add (residual) -> Dense -> silu] x 2 -> scalar readout ->
energy, forces = -dE/dR. The e3x model is an ordinary flax module; its weights are carried over
layer by layer with ``eqx_mp.interop.from_e3x`` (example arguments recorded with
``flax.linen.intercept_methods``). Energies and forces must agree to 1e-5 (float32) and 1e-10
(float64).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _twins import E3xPotential, EqxPotential, Sizes, init_and_convert
from helpers import random_rotation

SIZES = Sizes()
NUM_ELEMENTS = SIZES.num_elements
#: conftest's ``dtype`` fixture, with the float64 run marked slow.
DTYPES = pytest.mark.parametrize(
    "dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)], indirect=True
)


def _system(dtype, seed=0):
    """5 atoms, all ordered pairs; one atom beyond the cutoff of two others."""
    rng = np.random.default_rng(seed)
    positions = rng.uniform(0.0, 2.0, size=(5, 3))
    positions[4] = [5.5, 0.5, 0.5]
    numbers = rng.integers(1, NUM_ELEMENTS, size=5)
    dst, src = np.nonzero(~np.eye(5, dtype=bool))
    return (jnp.asarray(numbers, jnp.int32), jnp.asarray(positions, dtype),
            jnp.asarray(dst, jnp.int32), jnp.asarray(src, jnp.int32))


@DTYPES
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
    ref_e, ref_g = jax.jit(jax.value_and_grad(ref_energy))(positions)
    e, f = ours_fn(params, positions)
    assert e.dtype == dtype and f.shape == (5, 3)
    assert bool(jnp.all(jnp.isfinite(f)))
    tol = 1e-5 if dtype == jnp.float32 else 1e-10
    scale = max(1.0, float(jnp.abs(ref_e)))
    np.testing.assert_allclose(e, ref_e, rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(f, -ref_g, rtol=tol, atol=tol * max(1.0, float(jnp.max(jnp.abs(ref_g)))))
    assert float(jnp.max(jnp.abs(f))) > 1e-3  # non-trivial forces

    # same numbers for a rotated + translated copy (and both models are invariant/equivariant)
    rot = jnp.asarray(random_rotation(7), dtype)
    moved = positions @ rot + jnp.asarray([0.3, -1.0, 2.0], dtype)
    e2, f2 = ours_fn(params, moved)
    np.testing.assert_allclose(e2, e, rtol=10 * tol, atol=10 * tol * scale)
    np.testing.assert_allclose(f2, f @ rot, atol=10 * tol * max(1.0, float(jnp.max(jnp.abs(f)))))


def _as_e3x_params(model: EqxPotential) -> dict:
    """The eqx_mp model's arrays (e.g. a gradient) in e3x's variable layout, layer by layer."""
    from eqx_mp.interop import to_e3x

    layers = {"Embed_0": model.embed, f"Dense_{len(model.denses)}": model.readout}
    layers.update({f"MessagePass_{i}": m for i, m in enumerate(model.message_passes)})
    layers.update({f"Dense_{i}": d for i, d in enumerate(model.denses)})
    return {name: to_e3x(layer)[1]["params"] for name, layer in layers.items()}


@DTYPES
def test_force_training_gradient_and_hvp_match_e3x(dtype):
    """Training on forces: the parameter gradient of an energy + force loss (reverse over
    reverse), and a Hessian-vector product of the energy w.r.t. positions (forward over reverse),
    equal e3x's."""
    numbers, positions, dst, src = _system(dtype)
    ref_model = E3xPotential(param_dtype=dtype)
    variables, ours = init_and_convert(ref_model, 7, numbers, positions, dst, src)
    rng = np.random.default_rng(3)
    f_target = jnp.asarray(rng.normal(size=positions.shape), dtype)
    tangent = jnp.asarray(rng.normal(size=positions.shape), dtype)

    def loss(energy_fn):
        e, g = jax.value_and_grad(energy_fn)(positions)
        return (e - 1.0) ** 2 + jnp.sum((-g - f_target) ** 2)

    def hvp(energy_fn):
        return jax.jvp(jax.grad(energy_fn), (positions,), (tangent,))[1]

    def ref_energy(v):
        return lambda p: ref_model.apply(v, numbers, p, dst, src)

    def our_energy(m):
        return lambda p: m(numbers, p, dst, src)

    g_ref = jax.jit(jax.grad(lambda v: loss(ref_energy(v))))(variables)["params"]
    g_ours = _as_e3x_params(eqx.filter_jit(eqx.filter_grad(lambda m: loss(our_energy(m))))(ours))
    h_ref = jax.jit(lambda v: hvp(ref_energy(v)))(variables)
    h_ours = eqx.filter_jit(lambda m: hvp(our_energy(m)))(ours)
    tol = 1e-5 if dtype == jnp.float32 else 1e-10
    flat_ref = jax.tree_util.tree_flatten_with_path(g_ref)[0]
    flat_ours = dict(jax.tree_util.tree_flatten_with_path(g_ours)[0])
    total = float(np.sqrt(sum(np.sum(np.asarray(a, np.float64) ** 2) for _, a in flat_ref)))
    assert total > 1e-3
    for path, r in flat_ref:
        a = np.asarray(flat_ours[path], np.float64)
        err = np.linalg.norm(a - np.asarray(r, np.float64))
        assert err <= tol * max(np.linalg.norm(np.asarray(r, np.float64)), 1e-3 * total), (path, err)
    h_ref, h_ours = np.asarray(h_ref, np.float64), np.asarray(h_ours, np.float64)
    assert np.linalg.norm(h_ours - h_ref) <= tol * np.linalg.norm(h_ref)
