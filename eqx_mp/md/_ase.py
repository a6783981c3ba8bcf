"""Molecular dynamics through ASE's integrators (the ``--engine ase`` path) and the start
structures of the command line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["default_structure", "run_md", "summarise"]


def default_structure(spec: str | None, repeat: Any = 1) -> Any:
    """The starting structure of a run.

    Arguments:
        spec: ``None`` (a cubic fcc Cu cell, a = 3.61 Å, repeated 3x3x3: 108 atoms),
            ``"bulk:INDEX"`` (a frame of the embedded bulk data set), or a file ASE can read
            (its last frame).
        repeat: Replicate the structure ``repeat`` times along each lattice vector (an int,
            or three ints for the three lattice vectors, e.g. ``(4, 4, 4)``).

    Returns:
        An ``ase.Atoms``.
    """
    import ase.build
    import ase.io

    atoms: Any
    if spec is None:
        atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    elif spec.startswith("bulk:"):
        from ..data import load_dataset

        atoms = load_dataset("bulk").to_atoms(int(spec.split(":", 1)[1]))
        atoms.calc = None
    else:
        atoms = ase.io.read(spec, index=-1)
    reps = tuple(np.broadcast_to(np.asarray(repeat, int), (3,)).tolist())
    if min(reps) < 1:
        raise ValueError(f"repeat must be >= 1 along each lattice vector, got {repeat}")
    return atoms.repeat(reps) if max(reps) > 1 else atoms


#: The ensembles of both engines: NVE (velocity Verlet), NVT by Langevin (BAOAB in the JAX
#: engine, ASE's Langevin in the ASE loop), NVT by a Nosé-Hoover chain, and NPT by the isotropic
#: Martyna-Tobias-Klein barostat (ASE's ``IsotropicMTKNPT``; periodic structures).
ENSEMBLES = ("nve", "langevin", "nose-hoover", "npt")


def check_ensemble(ensemble: str, tdamp: float | None, pdamp: float | None,
                   timestep: float, pbc: Any) -> tuple[float, float]:
    """Check the ensemble's name; the thermostat's and barostat's time scales (fs).

    Arguments:
        ensemble: One of :data:`ENSEMBLES`.
        tdamp: Nosé-Hoover time scale (fs) or ``None`` (100 time steps).
        pdamp: Barostat time scale (fs) or ``None`` (1000 time steps).
        timestep: Time step (fs).
        pbc: ``(3,)`` periodic directions of the structure.

    Returns:
        ``(tdamp, pdamp)`` in fs.

    Raises:
        ValueError: For an unknown ensemble, a non-positive time scale, or ``"npt"`` on a
            structure that is not periodic in all three directions.
    """
    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble must be one of {list(ENSEMBLES)}, got {ensemble!r}")
    tdamp = 100.0 * timestep if tdamp is None else float(tdamp)
    pdamp = 1000.0 * timestep if pdamp is None else float(pdamp)
    if not (tdamp > 0 and pdamp > 0):
        raise ValueError(f"tdamp and pdamp must be > 0 fs, got {tdamp} and {pdamp}")
    if ensemble == "npt" and not np.all(pbc):
        raise ValueError("ensemble 'npt' needs a structure periodic in all three directions")
    return tdamp, pdamp


def _dynamics(atoms: Any, ensemble: str, temperature: float, timestep: float, friction: float,
              tdamp: float | None, pdamp: float | None, pressure: float,
              rng: np.random.Generator) -> Any:
    """Maxwell-Boltzmann velocities (no net momentum) and the ASE integrator."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.nose_hoover_chain import IsotropicMTKNPT, NoseHooverChainNVT
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    tdamp, pdamp = check_ensemble(ensemble, tdamp, pdamp, timestep, atoms.pbc)
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=timestep * units.fs)
    if ensemble == "nose-hoover":
        return NoseHooverChainNVT(atoms, timestep=timestep * units.fs, temperature_K=temperature,
                                  tdamp=tdamp * units.fs)
    if ensemble == "npt":
        return IsotropicMTKNPT(atoms, timestep=timestep * units.fs, temperature_K=temperature,
                               pressure_au=pressure * units.GPa, tdamp=tdamp * units.fs,
                               pdamp=pdamp * units.fs)
    return Langevin(atoms, timestep=timestep * units.fs, temperature_K=temperature,
                    friction=friction / units.fs, fixcm=False, rng=rng)


def run_md(
    calculator: Any, atoms: Any, *, ensemble: str = "nve", temperature: float = 300.0,
    timestep: float = 2.0, steps: int = 1000, friction: float = 0.01,
    tdamp: float | None = None, pdamp: float | None = None, pressure: float = 0.0,
    interval: int = 10, trajectory: str | Path | None = None, seed: int = 0,
) -> dict[str, Any]:
    """Run NVE (velocity Verlet), Langevin, Nosé-Hoover chain or NPT (isotropic MTK) dynamics with
    ASE and record the energies.

    Arguments:
        calculator: An ASE calculator (e.g. :class:`eqx_mp.calculator.Calculator`).
        atoms: The ``ase.Atoms`` to move (modified in place).
        ensemble: ``"nve"``, ``"langevin"``, ``"nose-hoover"`` (ASE's ``NoseHooverChainNVT``,
            a chain of 3) or ``"npt"`` (ASE's ``IsotropicMTKNPT``; periodic structures).
        temperature: Initial temperature of the Maxwell-Boltzmann velocities, and the thermostat
            target (K).
        timestep: Time step (fs).
        steps: Number of MD steps.
        friction: Langevin friction (1/fs).
        tdamp: Nosé-Hoover time scale (fs; default 100 time steps).
        pdamp: Barostat time scale (fs; default 1000 time steps).
        pressure: External pressure of ``"npt"`` (GPa).
        interval: Record energies (and trajectory frames) every ``interval`` steps.
        trajectory: Path of the ASE ``.traj`` file to write, or ``None``.
        seed: Seed of the initial velocities and the Langevin noise.

    Returns:
        A dict with ``time_ps`` (K,), ``potential``, ``kinetic``, ``thermostat`` and ``total``
        (K,) energies per atom (eV; ``total`` is the conserved quantity: potential + kinetic +
        the thermostat's and barostat's energy), ``temperature`` (K,) (K), ``volume`` (K,)
        (Å³, 0 without a cell), ``drift_mev_per_atom_ps``
        (slope of a linear fit of the total energy per atom), ``max_deviation_mev_per_atom``
        (largest deviation of the total energy per atom from its start), ``num_atoms``,
        ``steps``, ``seconds`` and ``atom_steps_per_second`` (timed after step 0, whose energy
        call compiles).

    Raises:
        ValueError: For an unknown ensemble or non-positive steps, interval or time step.
    """
    from ase.io.trajectory import Trajectory

    for name, value in (("steps", steps), ("interval", interval), ("timestep", timestep)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    atoms.calc = calculator
    dyn = _dynamics(atoms, ensemble, temperature, timestep, friction, tdamp, pdamp, pressure,
                    np.random.default_rng(seed))
    n = len(atoms)
    record: dict[str, list[float]] = {k: [] for k in RECORD}

    clock: list[float] = []

    def log() -> None:  # ASE calls it at step 0 too (whose energy call compiles the model)
        record["time_ps"].append(dyn.nsteps * timestep * 1e-3)
        record["potential"].append(atoms.get_potential_energy() / n)
        record["kinetic"].append(atoms.get_kinetic_energy() / n)
        conserved = getattr(dyn, "get_conserved_energy", None)
        record["thermostat"].append(
            0.0 if conserved is None else
            (conserved() - atoms.get_potential_energy() - atoms.get_kinetic_energy()) / n)
        record["temperature"].append(atoms.get_temperature())
        record["volume"].append(atoms.get_volume() if atoms.pbc.any() else 0.0)
        clock.append(time.perf_counter())

    dyn.attach(log, interval=interval)
    traj: Any = None
    if trajectory is not None:
        traj = Trajectory(str(trajectory), "w", atoms)
        dyn.attach(traj.write, interval=interval)
    try:
        dyn.run(steps)
    finally:
        if traj is not None:
            traj.close()
    out = summarise(record, n, steps, time.perf_counter() - clock[0])
    return out


#: The series both engines record per frame (:func:`summarise`).
RECORD = ("time_ps", "potential", "kinetic", "thermostat", "temperature", "volume")


def summarise(record: dict[str, Any], num_atoms: int, steps: int, seconds: float) -> dict[str, Any]:
    """Energy series per atom, drift and speed of a run (both engines).

    Arguments:
        record: ``time_ps``, ``potential``, ``kinetic``, ``thermostat`` (eV per atom; the energy
            of the thermostat's and barostat's variables, else zero), ``temperature`` (K) and
            ``volume`` (Å³) series, ``(K,)`` each.
        num_atoms: Atoms.
        steps: MD steps run.
        seconds: Wall time of the steps (s).

    Returns:
        The series as arrays plus ``total`` (potential + kinetic + thermostat: the conserved
        quantity of NVE, Nosé-Hoover and NPT), ``drift_mev_per_atom_ps`` (slope of a linear fit of
        the total energy per atom), ``max_deviation_mev_per_atom`` (largest deviation of the
        total energy per atom from its start), ``num_atoms``, ``steps``, ``seconds`` and
        ``atom_steps_per_second``.
    """
    out: dict[str, Any] = {k: np.asarray(v, np.float64) for k, v in record.items()}
    out["total"] = out["potential"] + out["kinetic"] + out["thermostat"]
    slope = np.polyfit(out["time_ps"], out["total"], 1)[0] if len(out["total"]) > 1 else 0.0
    out.update(
        drift_mev_per_atom_ps=1e3 * float(slope),
        max_deviation_mev_per_atom=1e3 * float(np.abs(out["total"] - out["total"][0]).max()),
        num_atoms=int(num_atoms), steps=int(steps), seconds=float(seconds),
        atom_steps_per_second=num_atoms * steps / seconds,
    )
    return out
