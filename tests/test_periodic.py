"""Potential on periodic structures: forces, stress, supercells, symmetries, batches, errors."""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import enable_x64, perturbed, random_rotation

from eqx_mp import batching
from eqx_mp.data import load_dataset
from eqx_mp.interop import potential_to_e3x
from eqx_mp.models import Potential
from eqx_mp.neighbours import neighbour_list

CUTOFF = 4.0
# A strongly triclinic 2-atom cell whose plane spacings (2.1-2.4 Å) are far below the cutoff,
# so every atom interacts with several images of the other atom and of itself.
CELL = np.array([[2.6, 0.0, 0.0], [1.1, 2.4, 0.0], [0.5, 0.7, 2.9]])
POSITIONS = np.array([[0.1, 0.2, 0.3], [1.9, 1.4, 1.6]])
NUMBERS = np.array([29, 78])


@pytest.fixture(scope="module")
def model64():
    """A tiny potential (F=8, L=1, 2 blocks) with every weight perturbed, in float64."""
    with enable_x64():  # float64 arrays; tests use them inside enable_x64() blocks
        m = Potential(features=8, max_degree=1, num_basis=6, cutoff=CUTOFF, max_atomic_number=80,
                      key=jax.random.key(3))
        return perturbed(m, dtype=jnp.float64)


@pytest.fixture(scope="module")
def energy_fn(model64):
    """Jitted ``E(positions, cell)`` with the neighbour list of the reference geometry."""
    nl = neighbour_list(POSITIONS, CUTOFF, CELL)

    @jax.jit
    def energy(pos, cell):
        return model64(pos, jnp.asarray(NUMBERS), cell=cell, neighbours=nl)

    return energy, nl


@eqx.filter_jit
def _jit_efs(model, pos, numbers, cell, nl):
    return model.energy_forces_stress(pos, numbers, cell, neighbours=nl)


def _efs(model, pos, numbers, cell):
    """Energy, forces, stress (numpy) with a host neighbour list and a jitted model call."""
    nl = neighbour_list(pos, model.cutoff, cell)
    return [np.asarray(a) for a in _jit_efs(model, jnp.asarray(pos), jnp.asarray(numbers),
                                            jnp.asarray(cell), nl)]


def test_forces_and_stress_equal_finite_differences(model64, energy_fn):
    """Forces = -dE/dx and stress = (1/V) dE/d(strain) (ASE sign, Voigt), float64, 1e-6."""
    energy, nl = energy_fn
    with enable_x64():
        e, f, s = _efs(model64, POSITIONS, NUMBERS, CELL)
        assert np.isclose(float(energy(jnp.asarray(POSITIONS), jnp.asarray(CELL))), e, rtol=1e-14)
        h = 1e-4
        fd = np.zeros_like(f)
        for a, k in itertools.product(range(2), range(3)):
            d = np.zeros_like(POSITIONS)
            d[a, k] = h
            ep, em = (float(energy(jnp.asarray(POSITIONS + sg * d), jnp.asarray(CELL))) for sg in (1, -1))
            fd[a, k] = -(ep - em) / (2 * h)
        np.testing.assert_allclose(f, fd, rtol=1e-6, atol=1e-6 * np.abs(f).max())
        volume = abs(np.linalg.det(CELL))
        fd_s = np.zeros(6)
        for v, (i, j) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
            eps = np.zeros((3, 3))
            eps[i, j] += h / 2
            eps[j, i] += h / 2  # symmetric strain; d/dh of it is the Voigt component
            ep, em = (float(energy(jnp.asarray(POSITIONS @ (np.eye(3) + sg * eps)),
                                   jnp.asarray(CELL @ (np.eye(3) + sg * eps)))) for sg in (1, -1))
            fd_s[v] = (ep - em) / (2 * h) / volume
        np.testing.assert_allclose(s, fd_s, rtol=1e-6, atol=1e-6 * np.abs(s).max())
        assert np.abs(f).max() > 0.1 and np.abs(s).max() > 1e-3  # non-trivial
        assert len(nl.dst) > 40 and np.any((nl.dst == nl.src))  # images of itself


def test_supercell_has_eight_times_the_energy(model64):
    with enable_x64():
        e, f, s = _efs(model64, POSITIONS, NUMBERS, CELL)
        a = np.asarray(model64.atomic_energies(jnp.asarray(POSITIONS), jnp.asarray(NUMBERS),
                                               cell=jnp.asarray(CELL)))
        images = np.array(list(itertools.product(range(2), repeat=3)))
        big_pos = np.concatenate([POSITIONS + t @ CELL for t in images])
        big_num = np.tile(NUMBERS, 8)
        e8, f8, s8 = _efs(model64, big_pos, big_num, 2 * CELL)
        a8 = np.asarray(model64.atomic_energies(jnp.asarray(big_pos), jnp.asarray(big_num),
                                                cell=jnp.asarray(2 * CELL)))
    np.testing.assert_allclose(e8, 8 * e, rtol=1e-12)
    np.testing.assert_allclose(f8, np.tile(f, (8, 1)), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s8, s, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(a8, np.tile(a, 8), rtol=1e-10)
    np.testing.assert_allclose(a.sum(), e, rtol=1e-13)


def _tensor(voigt):
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


@pytest.mark.parametrize("reflect", [False, True])
def test_rotation_translation_and_wrapping(model64, reflect):
    """E invariant; forces and the stress tensor rotate with cell and atoms; wrapping changes nothing."""
    with enable_x64():
        e, f, s = _efs(model64, POSITIONS, NUMBERS, CELL)
        rot = random_rotation(5, reflect=reflect)
        moved = POSITIONS @ rot.T + np.array([0.7, -3.1, 12.0])
        e2, f2, s2 = _efs(model64, moved, NUMBERS, CELL @ rot.T)
        wrapped = POSITIONS + np.array([[2, -1, 0], [-3, 0, 5]]) @ CELL
        e3, f3, s3 = _efs(model64, wrapped, NUMBERS, CELL)
    np.testing.assert_allclose(e2, e, rtol=1e-12)
    np.testing.assert_allclose(f2, f @ rot.T, atol=1e-12 * np.abs(f).max() + 1e-14)
    np.testing.assert_allclose(_tensor(s2), rot @ _tensor(s) @ rot.T, atol=1e-11 * np.abs(s).max())
    np.testing.assert_allclose(e3, e, rtol=1e-12)
    np.testing.assert_allclose(f3, f, atol=1e-11 * np.abs(f).max())
    np.testing.assert_allclose(s3, s, atol=1e-11 * np.abs(s).max())


def test_batch_predict_equals_single_structures():
    """A padded batch of a molecule and periodic frames of different sizes (float32, jitted)."""
    model = perturbed(Potential(features=8, max_degree=1, num_basis=6, cutoff=CUTOFF,
                                max_atomic_number=80, key=jax.random.key(4)))
    bulk = load_dataset("bulk").subset([180, 260])  # 31 atoms each
    graphs = batching.graphs_from_dataset(bulk, cutoff=CUTOFF)
    cluster = load_dataset().frame(0)
    nl = neighbour_list(cluster.positions, None)
    graphs.insert(1, batching.Graph(cluster.positions, cluster.numbers, cluster.energy,
                                    cluster.forces, nl.dst, nl.src))
    n = sum(g.num_nodes for g in graphs)
    batch = batching.pack_graphs(graphs, max_nodes=n + 5, max_edges=sum(g.num_edges for g in graphs) + 7,
                                 max_graphs=4)
    pred = eqx.filter_jit(Potential.batch_predict)(model, batch)
    assert pred.energies.shape == (4,) and pred.forces.shape == (n + 5, 3)
    assert pred.stresses.shape == (4, 6) and pred.atomic_energies.shape == (n + 5,)
    start = 0
    for k, g in enumerate(graphs):
        sl = slice(start, start + g.num_nodes)
        if g.cell is None:
            e, f = eqx.filter_jit(Potential.energy_and_forces)(
                model, jnp.asarray(g.positions), jnp.asarray(g.numbers))
            np.testing.assert_array_equal(pred.stresses[k], 0.0)
        else:
            e, f, s = _efs(model, g.positions, g.numbers, g.cell.astype(np.float32))
            np.testing.assert_allclose(pred.stresses[k], s, rtol=1e-4, atol=1e-5 * np.abs(s).max())
        np.testing.assert_allclose(pred.energies[k], e, rtol=1e-5)
        np.testing.assert_allclose(pred.forces[sl], f, atol=1e-4 * np.abs(f).max())
        np.testing.assert_allclose(pred.atomic_energies[sl].sum(), e, rtol=1e-5)
        start += g.num_nodes
    for a in (pred.energies[3:], pred.stresses[3:], pred.forces[n:], pred.atomic_energies[n:]):
        np.testing.assert_array_equal(a, 0.0)
    np.testing.assert_array_equal(batch.stress_mask, [True, False, True, False])
    np.testing.assert_allclose(batch.stresses[2], bulk.stresses[1], rtol=1e-6)


def test_matches_e3x_twin_on_a_periodic_structure():
    """The whole model equals e3x's (weights carried over) on the same periodic neighbour list."""
    model = perturbed(Potential(features=8, max_degree=1, num_basis=6, cutoff=CUTOFF,
                                max_atomic_number=80, key=jax.random.key(5)))
    fr = load_dataset("bulk").frame(5)
    nl = neighbour_list(fr.positions, CUTOFF, fr.cell, fr.pbc)
    pos, num = jnp.asarray(fr.positions), jnp.asarray(fr.numbers)
    cell = jnp.asarray(fr.cell, jnp.float32)
    twin, variables = potential_to_e3x(model)

    def e3x_energy(p):
        r = p[nl.src] - p[nl.dst] + jnp.asarray(nl.shifts, jnp.float32) @ cell
        return jnp.sum(twin.apply(variables, num, r, jnp.asarray(nl.dst), jnp.asarray(nl.src)))

    e_ref, g_ref = jax.jit(jax.value_and_grad(e3x_energy))(pos)
    e, f = eqx.filter_jit(lambda m, p: m.energy_and_forces(p, num, cell=cell, neighbours=nl))(model, pos)
    np.testing.assert_allclose(e, e_ref, rtol=1e-5)
    np.testing.assert_allclose(f, -g_ref, atol=1e-5 * float(jnp.abs(g_ref).max()))
    assert float(jnp.abs(f).max()) > 1e-2


def test_errors(model64):
    pos, num = jnp.asarray(POSITIONS), jnp.asarray(NUMBERS)
    flat = jnp.asarray([[3.0, 0, 0], [0, 3.0, 0], [6.0, 6.0, 0]])
    with pytest.raises(ValueError, match=r"the cell has volume 0 Å³"):
        model64(pos, num, cell=flat)
    with pytest.raises(ValueError, match=r"positions of 1 atom\(s\) are NaN or inf \(first: atom 1"):
        model64.energy_forces_stress(pos.at[1, 0].set(jnp.nan), num, jnp.asarray(CELL))
    with pytest.raises(ValueError, match=r"atomic number\(s\) \[92\] unknown to the model; it knows "
                                         r"atomic numbers 1\.\.80"):
        model64(pos, jnp.asarray([29, 92]), cell=jnp.asarray(CELL))
    known = Potential(features=4, num_basis=2, num_iterations=1, max_atomic_number=80,
                      elements=[78, 29], key=jax.random.key(0))
    assert known.config.elements == (29, 78) and known.hyperparameters()["elements"] == [29, 78]
    with pytest.raises(ValueError, match=r"atomic number\(s\) \[26\] unknown.*elements \[29, 78\]"):
        known.check_numbers([29, 26, 78])
    with pytest.raises(ValueError, match=r"needs neighbours=\.\.\."):
        jax.jit(lambda p: model64(p, num, cell=jnp.asarray(CELL)))(pos)
    with pytest.raises(ValueError, match=r"elements must be atomic numbers in 1\.\.max_atomic_number=80"):
        Potential(max_atomic_number=80, elements=[81], key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"hyper-parameters are \['features'"):
        Potential(feature=3, key=jax.random.key(0))
