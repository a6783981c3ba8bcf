"""The higher-body-order potential (``correlation`` > 1, radial MLP, degree up to 3).

Equivariance under rotations and reflections, agreement with the same model written in e3x
(``eqx_mp.interop.potential_to_e3x``), save/load, presets.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_rotation

from eqx_mp import io
from eqx_mp.data import load_dataset
from eqx_mp.models import PRESETS, Potential, PotentialConfig, SelfProducts

#: Small versions of the presets' features (fast), one per correlation order and degree.
CASES = [
    dict(features=4, max_degree=2, num_basis=4, correlation=2, radial_mlp=8),
    dict(features=4, max_degree=3, num_basis=4, correlation=3, radial_mlp=0),
    dict(features=4, max_degree=1, num_basis=4, correlation=3, radial_mlp=6, num_iterations=1),
]


@pytest.fixture(scope="module")
def ethanol():
    """Two ethanol frames (positions, numbers) of the embedded DFT set."""
    d = load_dataset("ethanol").subset([4, 5])
    return jnp.asarray(d.positions), jnp.asarray(d.numbers)


@pytest.mark.parametrize("hp", CASES)
def test_energy_invariant_forces_equivariant_under_rotations_and_reflections(hp, ethanol):
    pos, num = ethanol
    model = Potential(**hp, cutoff=5.0, max_atomic_number=8, key=jax.random.key(3))
    e, f = model.energy_and_forces(pos[0], num[0])
    assert float(jnp.abs(f).max()) > 1e-4  # forces are not trivially zero
    rot = jnp.asarray(random_rotation(11), pos.dtype)
    for q in (rot, -rot, jnp.diag(jnp.asarray([1.0, 1.0, -1.0]))):  # rotation, improper, mirror
        e2, f2 = model.energy_and_forces(pos[0] @ q.T + jnp.asarray([0.5, -1.0, 2.0]), num[0])
        np.testing.assert_allclose(e2, e, atol=2e-5 * max(1.0, abs(float(e))))
        np.testing.assert_allclose(f2, f @ q.T, atol=2e-5)


def test_products_raise_the_body_order(ethanol):
    """With correlation 2 the per-element weights of A⊗A change the energy (the products are
    used); with them zeroed the model equals the two-body sum of the same block."""
    import equinox as eqx

    pos, num = ethanol
    model = Potential(**CASES[0], cutoff=5.0, max_atomic_number=8, key=jax.random.key(0))
    e = model(pos[0], num[0])
    zeroed = eqx.tree_at(lambda m: [p.weights[1].embedding for p in m.products], model,
                         replace_fn=jnp.zeros_like)
    assert abs(float(zeroed(pos[0], num[0]) - e)) > 1e-6
    with pytest.raises(ValueError, match="correlation"):
        SelfProducts(4, 1, 0, 9, key=jax.random.key(0))


@pytest.mark.parametrize("hp", [CASES[0], pytest.param(CASES[1], marks=pytest.mark.slow)])
def test_matches_the_same_model_in_e3x(hp, ethanol):
    pytest.importorskip("e3x")
    from eqx_mp.interop import potential_to_e3x
    from eqx_mp.ops import sparse_pairwise_indices

    pos, num = ethanol
    model = Potential(**hp, cutoff=5.0, max_atomic_number=8, key=jax.random.key(5))
    dst, src = sparse_pairwise_indices(9)
    vectors = pos[0][src] - pos[0][dst]
    twin, variables = potential_to_e3x(model)
    ours = model.node_energies(num[0], vectors, dst, src)
    ref = twin.apply(variables, num[0], vectors, dst, src)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)

    def grad(fn):
        return jax.grad(lambda v: jnp.sum(fn(v)))(vectors)

    np.testing.assert_allclose(grad(lambda v: model.node_energies(num[0], v, dst, src)),
                               grad(lambda v: twin.apply(variables, num[0], v, dst, src)),
                               rtol=1e-4, atol=1e-5)


def test_save_load_roundtrip(tmp_path, ethanol):
    pos, num = ethanol
    model = Potential(**CASES[0], max_atomic_number=8, elements=[1, 6, 8], key=jax.random.key(2))
    io.save(tmp_path / "m.eqx", model)
    back = io.load(tmp_path / "m.eqx")
    assert type(back) is Potential and back.config == model.config
    assert float(back(pos[1], num[1])) == float(model(pos[1], num[1]))
    for block in (model.products[0], model.radial):  # the blocks load on their own too
        io.save(tmp_path / "b.eqx", block)
        again = io.load(tmp_path / "b.eqx")
        assert type(again) is type(block)
        assert all(bool(jnp.all(a == b)) for a, b in zip(jax.tree_util.tree_leaves(again),
                                                          jax.tree_util.tree_leaves(block)))


def test_presets_are_valid_configs():
    assert set(PRESETS) >= {"e3x", "small", "medium", "large"}
    for hp in PRESETS.values():
        PotentialConfig(**hp)
    assert PRESETS["e3x"]["correlation"] == 1  # e3x's two-body model stays available
    assert max(hp["max_degree"] for hp in PRESETS.values()) == 3
    defaults = {f.name: f.default for f in dataclasses.fields(PotentialConfig)}
    with pytest.raises(ValueError, match="correlation"):
        PotentialConfig(correlation=0)
    assert defaults["radial_mlp"] == 0
