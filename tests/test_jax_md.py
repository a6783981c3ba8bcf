"""eqx_mp.interop.jax_md: the same energies and forces as the ASE Calculator (host neighbour
list, independent of JAX-MD's), and JAX-MD's NVE integrator conserves the energy."""

from __future__ import annotations

import ase
import ase.build
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase.units import fs, kB
from helpers import enable_x64, tiny_potential

from jax_md import simulate, space

from eqx_mp.calculator import Calculator
from eqx_mp.interop.jax_md import potential


@pytest.fixture(scope="module")
def model():
    return tiny_potential(energy_scale=0.25)


def _crystal():
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)  # 108 atoms, box 10.83 Å
    atoms.numbers[::5] = 78
    atoms.rattle(0.08, seed=1)
    return atoms


@pytest.mark.parametrize("periodic", [True, False])
def test_energies_and_forces_equal_the_calculator(model, periodic):
    with enable_x64():
        atoms = _crystal()
        if periodic:
            box = atoms.cell.array[0, 0]
            displacement_fn, _ = space.periodic(box)
            atoms.wrap()
        else:
            atoms = atoms[:40]
            atoms.pbc, box = False, 100.0
            displacement_fn, _ = space.free()
        neighbor_fn, energy_fn = potential(model, displacement_fn, box, species=atoms.numbers,
                                           dtype="float64", disable_cell_list=not periodic)
        R = jnp.asarray(atoms.positions)
        nbrs = neighbor_fn.allocate(R)
        e, g = jax.jit(jax.value_and_grad(energy_fn))(R, neighbor=nbrs)
        atoms.calc = Calculator(model, dtype="float64")
        assert not bool(nbrs.did_buffer_overflow)
        np.testing.assert_allclose(float(e), atoms.get_potential_energy(), rtol=1e-12)
        np.testing.assert_allclose(-np.asarray(g), atoms.get_forces(), atol=1e-10)
        assert np.abs(atoms.get_forces()).max() > 0.1


def test_nve_conserves_energy(model):
    """JAX-MD's velocity Verlet, 2 fs, 300 steps from 600 K (float64): the total energy stays
    within 0.05 meV/atom of its start while ~10 meV/atom move between potential and kinetic."""
    with enable_x64():
        atoms = _crystal()
        atoms.wrap()
        box = atoms.cell.array[0, 0]
        displacement_fn, shift_fn = space.periodic(box)
        neighbor_fn, energy_fn = potential(model, displacement_fn, box, species=atoms.numbers,
                                           dtype="float64")
        R = jnp.asarray(atoms.positions, jnp.float64)
        nbrs = neighbor_fn.allocate(R)
        init_fn, apply_fn = simulate.nve(energy_fn, shift_fn, dt=2.0 * fs)
        mass = jnp.asarray(atoms.get_masses())[:, None]
        state = init_fn(jax.random.key(0), R, kT=600 * kB, mass=mass, neighbor=nbrs)

        @jax.jit
        def chunk(state, nbrs):
            def body(_, carry):
                s, nb = carry
                s = apply_fn(s, neighbor=nb)
                return s, nb.update(s.position)
            return jax.lax.fori_loop(0, 20, body, (state, nbrs))

        def total(s, nb):
            kinetic = 0.5 * jnp.sum(s.momentum**2 / s.mass)
            return float(energy_fn(s.position, neighbor=nb) + kinetic), float(kinetic)

        energies = [total(state, nbrs)]
        for _ in range(15):
            state, nbrs = chunk(state, nbrs)
            assert not bool(nbrs.did_buffer_overflow)
            energies.append(total(state, nbrs))
    e, kinetic = np.asarray(energies).T / len(atoms)
    assert np.ptp(kinetic) > 5e-3  # eV/atom exchanged: the dynamics are not trivial
    assert np.abs(e - e[0]).max() < 5e-5, np.abs(e - e[0]).max()
