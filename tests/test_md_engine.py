"""The in-JAX MD engine (eqx_mp.md.Simulation): energies and forces equal the ASE Calculator's
(host neighbour list) along the trajectory, periodic and isolated; NVE conserves energy,
Langevin thermostats; an overflowing neighbour list is regrown and the chunk redone (cell
compressed mid-run); the float64 command line end to end."""

from __future__ import annotations

import json
import warnings

import ase
import ase.build
import ase.cluster
import ase.io
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import enable_x64, tiny_potential

from eqx_mp import io
from eqx_mp.calculator import Calculator
from eqx_mp.data import load_dataset
from eqx_mp.md import (
    IsotropicMTKNPT,
    Langevin,
    NoseHooverChain,
    Simulation,
    VelocityVerlet,
    main,
    run_jax_md,
    run_md,
)


@pytest.fixture(scope="module")
def model():
    return tiny_potential(energy_scale=0.25)


def _bulk():
    atoms = load_dataset("bulk").to_atoms(181)  # 31 atoms, strained triclinic cell, a vacancy
    atoms.calc = None
    return atoms


def _cluster():
    atoms = ase.cluster.Icosahedron("Cu", noshells=2)
    atoms.numbers[[0, 4]] = 78
    atoms.rattle(0.05, seed=0)
    return atoms


def _float64(model):
    return jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, model)


def _host_energies(model, atoms, frames, cell=None, dtype=None):
    """Energies and forces of recorded frames by the Calculator (vesin list, no skin)."""
    a = atoms.copy()
    if cell is not None:
        a.set_cell(cell, scale_atoms=False)
    a.calc = Calculator(model, dtype=dtype)
    out = []
    for f in frames:
        a.positions = f["positions"]
        out.append((a.get_potential_energy(), a.get_forces()))
    return out


@pytest.mark.parametrize("make", [_bulk, _cluster], ids=["periodic", "isolated"])
def test_frames_equal_the_calculator(model, make):
    atoms = make()
    frames = []
    out = run_jax_md(model, atoms.copy(), temperature=800, steps=42, interval=5,
                     frames_per_chunk=4, seed=1)  # frames at 0, 5, ..., 40 and the last step, 42
    sim = Simulation(model, atoms.positions, atoms.numbers, atoms.get_masses(), VelocityVerlet(2.0),
                     cell=atoms.cell.array if atoms.pbc.any() else None,
                     momenta=np.random.default_rng(0).normal(0, 0.3, (len(atoms), 3)))
    sim.run(30, interval=3, frames_per_chunk=4, callback=frames.append)
    assert [f["step"] for f in frames] == list(range(3, 31, 3))
    for f, (e, forces) in zip(frames, _host_energies(model, atoms, frames)):
        np.testing.assert_allclose(f["energy"], e, rtol=2e-6)
        np.testing.assert_allclose(f["forces"], forces, atol=2e-5 * np.abs(forces).max())
    assert np.abs(frames[-1]["positions"] - atoms.positions).max() > 0.05
    np.testing.assert_allclose(out["time_ps"], 2e-3 * np.array([*range(0, 41, 5), 42]))
    assert out["max_deviation_mev_per_atom"] < 0.5


def test_nve_float64_conserves_energy(model):
    """Velocity Verlet, 2 fs, 400 steps from 600 K in float64: total energy within 0.02 meV/atom
    of its start while > 5 meV/atom move between potential and kinetic energy."""
    with enable_x64():
        m64 = _float64(model)
        out = run_jax_md(m64, _bulk().repeat((2, 1, 1)), temperature=600, steps=400, interval=10,
                         frames_per_chunk=20)
    assert out["dtype"] == "float64"
    assert np.ptp(out["kinetic"]) > 5e-3
    assert out["max_deviation_mev_per_atom"] < 0.02, out["max_deviation_mev_per_atom"]
    assert out["rebuilds"] > 1  # the list was rebuilt inside jit


def test_langevin_thermostats(model):
    """BAOAB with strong friction pulls a cold start (zero momenta) to the target temperature."""
    atoms = _bulk()
    sim = Simulation(model, atoms.positions, atoms.numbers, atoms.get_masses(),
                     Langevin(2.0, temperature=1200.0, friction=0.2), cell=atoms.cell.array)
    out = sim.run(200, interval=10, frames_per_chunk=10)
    assert sim.thermo()["temperature"] == out["temperature"][-1]
    assert 800 < np.mean(out["temperature"][5:]) < 1600


def test_nose_hoover_follows_ase_step_for_step(model):
    """The Nosé-Hoover chain inside jit equals ASE's NoseHooverChainNVT (the oracle) frame by
    frame in float64: potential, kinetic and thermostat energies and the temperature, from the
    same start (300 K) with a tight chain (tdamp 15 fs)."""
    kw = dict(ensemble="nose-hoover", temperature=300.0, timestep=2.0, steps=60, interval=5,
              seed=3)
    with enable_x64():
        m64 = _float64(model)
        ours = run_jax_md(m64, _bulk(), tdamp=15.0, frames_per_chunk=4, **kw)
        ase_out = run_md(Calculator(m64), _bulk(), tdamp=15.0, **kw)  # same momenta (seed)
    for key in ("potential", "kinetic", "thermostat", "temperature", "total"):
        np.testing.assert_allclose(ours[key], ase_out[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert np.abs(ours["thermostat"]).max() > 1e-4  # the chain did exchange energy (eV/atom)
    assert ours["max_deviation_mev_per_atom"] < 0.05


def test_nose_hoover_heats_to_the_target_and_conserves_its_energy(model):
    """A cold start (zero momenta) under a 1200 K chain (tdamp 20 fs) warms up, and potential +
    kinetic + thermostat energy stays constant (float64) while kinetic energy grows."""
    atoms = _bulk()
    with enable_x64():
        sim = Simulation(_float64(model), atoms.positions, atoms.numbers, atoms.get_masses(),
                         NoseHooverChain(1.0, temperature=1200.0, tdamp=20.0),
                         cell=atoms.cell.array,
                         momenta=np.random.default_rng(0).normal(0, 0.05, (len(atoms), 3)))
        start = sim.thermo()
        out = sim.run(400, interval=10, frames_per_chunk=10)
    conserved = out["energy"] + out["kinetic"] + out["thermostat"]
    initial = start["energy"] + start["kinetic"] + start["thermostat"]
    assert np.abs(conserved - initial).max() / len(atoms) < 5e-5  # eV/atom
    assert out["kinetic"].max() - start["kinetic"] > 0.05 * len(atoms)
    assert 700 < np.mean(out["temperature"][20:]) < 1700
    with pytest.raises(ValueError, match=r"NoseHooverChain: chain and loops must be >= 1"):
        NoseHooverChain(1.0, temperature=300.0, tdamp=20.0, chain=0)
    with pytest.raises(ValueError, match=r"tdamp and pdamp must be > 0 fs, got -1.0 and 2000.0"):
        run_jax_md(model, _bulk(), ensemble="nose-hoover", tdamp=-1.0, steps=1)


def test_npt_follows_ase_step_for_step(model):
    """The isotropic MTK barostat inside jit equals ASE's IsotropicMTKNPT (the oracle) frame by
    frame in float64 (energies, the barostat's and thermostats' energy, volume), while the
    volume moves by more than 10 % (the tiny model's cell is far from its equilibrium); the
    conserved total stays within 1 % of the energy that flows; the list is rebuilt only when a
    pair may be missing, not at every change of the cell."""
    kw = dict(ensemble="npt", temperature=600.0, timestep=1.0, steps=80, interval=5, seed=2,
              tdamp=20.0, pdamp=100.0, pressure=2.0)
    with enable_x64():
        m64 = _float64(model)
        ours = run_jax_md(m64, _bulk(), frames_per_chunk=4, skin=0.3, **kw)
        ase_out = run_md(Calculator(m64), _bulk(), **kw)  # same momenta (seed)
    for key in ("potential", "kinetic", "thermostat", "temperature", "total", "volume"):
        np.testing.assert_allclose(ours[key], ase_out[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert np.ptp(ours["volume"]) > 0.1 * ours["volume"][0]
    assert ours["max_deviation_mev_per_atom"] < 0.01 * 1e3 * np.ptp(ours["potential"])
    assert 1 < ours["rebuilds"] < kw["steps"]
    with pytest.raises(ValueError, match=r"'npt' needs a structure periodic in all three"):
        run_jax_md(model, _cluster(), ensemble="npt", steps=1)
    with pytest.raises(ValueError, match=r"IsotropicMTKNPT changes the cell; it needs a periodic"):
        Simulation(model, _cluster().positions, _cluster().numbers, _cluster().get_masses(),
                   IsotropicMTKNPT(1.0, 300.0, 0.0, 100.0, 1000.0))


def test_list_kept_under_a_deforming_cell_misses_no_pair():
    """The engine's rebuild rule (engine._stale) under random cell deformations (up to 3 %) and
    atomic displacements: whenever it keeps the list, the kept list's pairs within the cutoff are
    all the pairs a fresh list finds at the new positions and cell (none missing); and it does
    keep the list for small deformations (it is not a rebuild at every change of the cell)."""
    from eqx_mp.md.engine import MDState, _stale
    from eqx_mp.neighbours import FixedListSpec, fixed_neighbour_list

    cutoff, skin = 3.0, 0.1  # a thin skin: pairs cross it under small changes
    rng = np.random.default_rng(0)
    # Random atoms in a triclinic cell: pair distances fill every range (no shell gaps).
    cell0 = np.array([[7.0, 0.0, 0.0], [1.2, 6.8, 0.0], [0.7, -0.9, 7.3]])
    pos0 = rng.uniform(0, 1, (48, 3)) @ cell0
    big = FixedListSpec.allocate(pos0, cutoff + skin, cell0, (True,) * 3, growth=3.0)
    exact = FixedListSpec.allocate(pos0, cutoff, cell0, (True,) * 3, growth=3.0)
    listed = fixed_neighbour_list(jnp.asarray(pos0), jnp.asarray(cell0), spec=big)
    assert not bool(listed.overflow)
    zeros = jnp.zeros(())

    @jax.jit
    def check(pos, cell):
        state = MDState(pos, pos, pos, zeros, cell, listed.dst, listed.src, listed.shifts,
                        jnp.asarray(pos0), jnp.asarray(cell0), zeros, zeros, zeros, zeros, pos,
                        zeros, zeros)
        n = pos.shape[0]
        real = listed.dst < n
        vec = (pos[jnp.minimum(listed.src, n - 1)] - pos[jnp.minimum(listed.dst, n - 1)]
               + listed.shifts @ cell)
        kept = jnp.sum(real & (jnp.sum(vec**2, axis=-1) < cutoff**2))
        return _stale(big, skin, state), kept, fixed_neighbour_list(pos, cell, spec=exact)

    kept_deformed = 0
    for trial in range(80):
        strain = (0.0, 0.002, 0.005, 0.01, 0.03)[trial % 5]
        deform = np.eye(3) + rng.uniform(-strain, strain, (3, 3))
        moved = rng.normal(0, (0.002, 0.01, 0.03, 0.06)[trial // 5 % 4], pos0.shape)
        pos, cell = pos0 @ deform + moved, cell0 @ deform
        stale, kept, fresh = check(jnp.asarray(pos), jnp.asarray(cell))
        assert not bool(fresh.overflow)
        if not bool(stale):
            assert int(kept) == int(fresh.num_pairs), trial
            kept_deformed += int(strain > 0)
    assert kept_deformed >= 5


def test_overflow_inside_a_chunk_is_redone(model):
    """An expanded cluster whose atoms fly inwards (0.02 Å/fs): the pair count grows past the
    list's capacity at a rebuild inside jit; the chunk is redone with a grown list and every
    frame equals the host list's energies and forces (nothing dropped)."""
    atoms = _cluster()
    atoms.positions = 1.3 * (atoms.positions - atoms.positions.mean(0))
    r = np.linalg.norm(atoms.positions, axis=1, keepdims=True)
    velocity = -0.02 / ase.units.fs * atoms.positions / np.maximum(r, 1e-9)
    sim = Simulation(model, atoms.positions, atoms.numbers, atoms.get_masses(), VelocityVerlet(1.0),
                     momenta=atoms.get_masses()[:, None] * velocity, growth=1.0)
    before = sim.spec.max_pairs
    frames = []
    sim.run(60, interval=10, frames_per_chunk=6, callback=frames.append)
    assert sim.regrowths >= 1 and sim.spec.max_pairs > before and sim.rebuilds > 1
    for f, (e, forces) in zip(frames, _host_energies(model, atoms, frames)):
        np.testing.assert_allclose(f["energy"], e, rtol=2e-6)
        np.testing.assert_allclose(f["forces"], forces, atol=2e-5 * np.abs(forces).max())


def test_compressed_cell_regrows_the_list(model):
    """Compressing the cell by 15 % mid-run overflows the fixed list; the engine regrows it, and
    every later frame equals the host list's energies and forces."""
    atoms = _bulk()
    sim = Simulation(model, atoms.positions, atoms.numbers, atoms.get_masses(),
                     Langevin(2.0, temperature=900.0, friction=0.05), cell=atoms.cell.array)
    before = sim.spec.max_pairs
    sim.run(20, interval=10, frames_per_chunk=2)
    compressed = 0.85 * sim.cell
    sim.set_cell(compressed)
    frames = []
    sim.run(40, interval=10, frames_per_chunk=2, callback=frames.append)
    assert sim.regrowths >= 1 and sim.spec.max_pairs > before
    for f, (e, forces) in zip(frames, _host_energies(model, atoms, frames, cell=compressed)):
        np.testing.assert_allclose(f["energy"], e, rtol=2e-6)
        np.testing.assert_allclose(f["forces"], forces, atol=2e-5 * np.abs(forces).max())


def test_command_line_float64(tmp_path):
    """The default (jax) engine on a float64 model: float64 without --dtype, frames in md.traj
    equal the float64 Calculator's energies, md.json has drift, speed, rebuilds and regrowths."""
    with enable_x64():
        m64 = _float64(tiny_potential(energy_scale=0.25))
        io.save(tmp_path / "run" / "model.eqx", m64)
        out = tmp_path / "md"
        assert main(["--model", str(tmp_path / "run"), "--structure", "bulk:181", "--steps", "20",
                     "--interval", "5", "--supercell", "1,1,2", "--output", str(out),
                     "--no-progress", "--temperature", "500"]) == 0
        summary = json.loads((out / "md.json").read_text())
        frames = ase.io.read(out / "md.traj", index=":")
        calc = Calculator(m64)
        assert calc.dtype == jnp.float64
        for a in frames:
            ref = a.copy()
            ref.calc = calc
            np.testing.assert_allclose(a.get_potential_energy(), ref.get_potential_energy(),
                                       rtol=1e-12)
    assert summary["dtype"] == "float64" and len(frames) == 5 and len(frames[0]) == 62
    for key in ("drift_mev_per_atom_ps", "atom_steps_per_second", "rebuilds", "regrowths"):
        assert key in summary
    assert summary["max_deviation_mev_per_atom"] < 0.01
    assert (out / "energies.png").read_bytes()[:4] == b"\x89PNG"


def test_float32_from_float64_warns_once(model):
    with enable_x64():
        m64 = _float64(model)
        assert Calculator(m64).dtype == jnp.float64
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            calc = Calculator(m64, dtype="float32")
        assert calc.dtype == jnp.float32
        assert [str(w.message) for w in caught] == [
            "Calculator: the model is float64 but computes in float32 as asked (dtype='float32'); "
            "pass dtype=None to use the model's precision"]
    with pytest.raises(ValueError, match="dtype='float64' needs jax.config.update"):
        Calculator(model, dtype="float64")
