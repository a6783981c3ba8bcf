"""The ASE calculator: agreement with the model and ASE's numerical derivatives, loading from a
run directory, an NVE run with a counted number of compilations, errors."""

from __future__ import annotations

import ase
import ase.build
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.fd import FiniteDifferenceCalculator
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.units import fs
from helpers import enable_x64, tiny_potential

from eqx_mp import io
from eqx_mp.batching import grown_capacity
from eqx_mp.calculator import Calculator, load_potential
from eqx_mp.data import load_dataset
from eqx_mp.models import Potential

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@pytest.fixture(scope="module")
def model() -> Potential:
    return tiny_potential()


@pytest.fixture(scope="module")
def atoms() -> ase.Atoms:
    return load_dataset("bulk").to_atoms(181)  # 31 atoms, strained triclinic cell, a vacancy


@pytest.mark.parametrize("neighbours", ["host", "jax"])
def test_results_equal_the_model(model, atoms, neighbours):
    a = atoms.copy()
    a.calc = Calculator(model, neighbours=neighbours)
    e, f, s = model.energy_forces_stress(jnp.asarray(a.positions, jnp.float32), jnp.asarray(a.numbers),
                                         jnp.asarray(a.cell.array, jnp.float32))
    np.testing.assert_allclose(a.get_potential_energy(), e, rtol=1e-5)
    np.testing.assert_allclose(a.get_potential_energy(force_consistent=True), e, rtol=1e-5)
    np.testing.assert_allclose(a.get_forces(), f, atol=2e-5 * float(jnp.abs(f).max()))
    np.testing.assert_allclose(a.get_stress(), s, atol=2e-5 * float(jnp.abs(s).max()))
    np.testing.assert_allclose(a.get_potential_energies().sum(), e, rtol=1e-5)
    assert a.get_forces().shape == (len(a), 3) and a.get_stress().shape == (6,)


def test_jax_neighbours_regrow_after_overflow(model, atoms):
    """Compressing the cell overflows the fixed list; the calculator grows it and recomputes."""
    calc = Calculator(model, neighbours="jax")
    a = atoms.copy()
    a.calc = calc
    a.get_potential_energy()
    first = set(calc.compiled_shapes)
    a.set_cell(0.85 * a.cell.array, scale_atoms=True)
    host = atoms.copy()
    host.set_cell(0.85 * host.cell.array, scale_atoms=True)
    host.calc = Calculator(model)
    np.testing.assert_allclose(a.get_potential_energy(), host.get_potential_energy(), rtol=1e-5)
    np.testing.assert_allclose(a.get_forces(), host.get_forces(), atol=1e-4 * np.abs(host.get_forces()).max())
    assert len(calc.compiled_shapes) > len(first)  # a larger list was compiled


def test_forces_and_stress_equal_ase_numerical_derivatives(model, atoms):
    """ASE's own central differences (its stress sign and Voigt order) in float64."""
    with enable_x64():
        a = atoms.copy()
        a.rattle(0.05, seed=2)
        calc = Calculator(model, dtype="float64")
        a.calc = calc
        f, s = a.get_forces(), a.get_stress()
        fd = FiniteDifferenceCalculator(calc, eps_disp=1e-4, eps_strain=1e-5)
        f_num, s_num = fd.get_forces(a), fd.get_stress(a)
    np.testing.assert_allclose(f, f_num, rtol=1e-6, atol=1e-6 * np.abs(f).max())
    np.testing.assert_allclose(s, s_num, rtol=1e-6, atol=1e-6 * np.abs(s).max())
    assert np.abs(s).max() > 1e-3


def test_loads_a_run_directory(model, atoms, tmp_path):
    io.save(tmp_path / "run" / "model.eqx", model)
    io.save(tmp_path / "file.eqx", model)
    reference = Calculator(model).get_potential_energy(atoms.copy())
    for path in (tmp_path / "run", tmp_path / "file.eqx"):
        assert eqx.tree_equal(eqx.filter(load_potential(path), eqx.is_array),
                              eqx.filter(model, eqx.is_array))
        assert Calculator(path).get_potential_energy(atoms.copy()) == reference
    with pytest.raises(FileNotFoundError, match=r"no saved model at"):
        Calculator(tmp_path / "nowhere")


def test_nve_conserves_energy_with_few_compilations(model, atoms):
    """ASE velocity Verlet, 400 steps of 2 fs from 300 K with a float32 untrained potential
    (energy scale x0.25; its wells heat the system, exchanging ~0.09 eV/atom between potential
    and kinetic energy). Stated bound: the total energy stays within 0.5 meV/atom of its start
    and within 1 % of the potential energy exchanged (measured: 0.007 meV/atom). No
    compilation after the first 5 steps (counted with JAX's monitoring)."""
    a = atoms.copy()
    calc = Calculator(eqx.tree_at(lambda m: m.energy_scale, model, 0.25 * model.energy_scale))
    a.calc = calc
    thermalize_momenta(a, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(a)
    dyn = VelocityVerlet(a, timestep=2.0 * fs)
    start = a.positions.copy()
    dyn.run(5)
    e0 = a.get_total_energy()
    compiles = []

    def listener(event, duration, **kwargs):
        if event == BACKEND_COMPILE_EVENT:
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    total, potential = [], []
    dyn.attach(lambda: (total.append(a.get_total_energy()), potential.append(a.get_potential_energy())))
    try:
        dyn.run(400)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    drift = np.abs(np.asarray(total) - e0).max() / len(a)
    exchanged = np.ptp(potential) / len(a)
    assert exchanged > 0.05  # eV/atom: the dynamics are not trivial
    assert drift < 5e-4 and drift < 0.01 * exchanged, (drift, exchanged)
    assert len(compiles) == 0, compiles
    assert len(calc.compiled_shapes) == 1
    assert np.abs(a.positions - start).max() > 1.0  # atoms moved; neighbour lists changed


def test_capacities_grow_geometrically(model):
    caps, cap = [], 0
    for needed in range(1, 1001):
        cap = grown_capacity(needed, cap, 1.5)
        caps.append(cap)
    assert len(set(caps)) <= 18 and all(c >= n for c, n in zip(caps, range(1, 1001)))
    # Larger then smaller structures: the smaller one reuses the capacities of the larger one.
    calc = Calculator(model)
    big = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    for at in (big[:8], big, big[:20]):
        at = at.copy()
        at.calc = calc
        at.get_potential_energy()
    assert len(calc.compiled_shapes) == 2


def test_errors(model, atoms):
    a = atoms.copy()
    a.calc = Calculator(model)
    a.positions[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"positions of 1 atom\(s\) are NaN or inf \(first: atom 3"):
        a.get_potential_energy()
    flat = atoms.copy()
    flat.set_cell([[3.0, 0, 0], [0, 3.0, 0], [6.0, 6.0, 0]], scale_atoms=False)
    flat.calc = Calculator(model)
    with pytest.raises(ValueError, match=r"the cell has volume 0 Å³"):
        flat.get_potential_energy()
    known = Calculator(tiny_potential(elements=[29, 78]))
    u = atoms.copy()
    u.numbers[0] = 92
    u.calc = known
    with pytest.raises(ValueError, match=r"atomic number\(s\) \[92\] unknown to the model; it knows elements \[29, 78\]"):
        u.get_forces()
    molecule = ase.Atoms("Cu3", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0]])
    molecule.calc = Calculator(model)
    assert np.isfinite(molecule.get_potential_energy())
    with pytest.raises(PropertyNotImplementedError, match="stress needs periodic boundary"):
        molecule.get_stress()
    with pytest.raises(ValueError, match=r"neighbours must be 'host' or 'jax'"):
        Calculator(model, neighbours="gpu")
