"""The ``--engine jax`` path: an ``ase.Atoms`` run by :class:`~eqx_mp.md.Simulation`, with the
same start velocities, records and trajectory as :func:`~eqx_mp.md.run_md`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ._ase import RECORD, check_ensemble, summarise
from ._simulation import Simulation
from .engine import Langevin, VelocityVerlet
from .thermostats import IsotropicMTKNPT, NoseHooverChain

__all__ = ["run_jax_md"]


def _start_momenta(atoms: Any, temperature: float, seed: int) -> np.ndarray:
    """Maxwell-Boltzmann momenta without net momentum (as :func:`run_md` draws them)."""
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    a = atoms.copy()
    thermalize_momenta(a, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(a)
    return a.get_momenta()


def run_jax_md(
    model: Any, atoms: Any, *, ensemble: str = "nve", temperature: float = 300.0,
    timestep: float = 2.0, steps: int = 1000, friction: float = 0.01,
    tdamp: float | None = None, pdamp: float | None = None, pressure: float = 0.0,
    interval: int = 10, trajectory: str | Path | None = None, seed: int = 0, skin: float = 0.5,
    dtype: Any = None, frames_per_chunk: int = 10, progress: bool = False,
) -> dict[str, Any]:
    """Run NVE, Langevin (BAOAB), Nosé-Hoover (NVT) or NPT dynamics inside ``jit`` (in chunks).

    Arguments:
        model: A :class:`~eqx_mp.models.Potential`.
        atoms: The ``ase.Atoms`` start (its positions and momenta are set to the last frame).
        ensemble: ``"nve"``, ``"langevin"``, ``"nose-hoover"``
            (:class:`~eqx_mp.md.thermostats.NoseHooverChain`, a chain of 3, as ASE's
            ``NoseHooverChainNVT``) or ``"npt"``
            (:class:`~eqx_mp.md.thermostats.IsotropicMTKNPT`,
            as ASE's ``IsotropicMTKNPT``; periodic structures).
        temperature: Initial Maxwell-Boltzmann temperature and thermostat target (K).
        timestep: Time step (fs).
        steps: MD steps.
        friction: Langevin friction (1/fs).
        tdamp: Nosé-Hoover time scale (fs; default 100 time steps).
        pdamp: Barostat time scale (fs; default 1000 time steps).
        pressure: External pressure of ``"npt"`` (GPa).
        interval: Steps between recorded frames.
        trajectory: Path of the trajectory file to write (``.traj`` or ``.extxyz``), or ``None``.
        seed: Seed of the initial velocities and the Langevin noise.
        skin: Neighbour-list skin (Å).
        dtype: ``None`` (the model's), ``"float32"`` or ``"float64"``.
        frames_per_chunk: Frames per jitted chunk.
        progress: Show a tqdm progress bar.

    Returns:
        :func:`~eqx_mp.md.run_md`'s dict plus ``rebuilds``, ``regrowths``,
        ``compile_seconds`` (first chunk: compilation + run) and ``max_pairs``; the speed is
        timed after the first chunk.
    """
    sim = _simulation(model, atoms, ensemble, temperature, timestep, friction, tdamp, pdamp,
                      pressure, seed, skin, dtype)
    n = len(atoms)
    writer = None if trajectory is None else _Writer(atoms, trajectory)
    bar = _progress_bar(steps, n) if progress else None
    record: dict[str, list[float]] = {k: [] for k in RECORD}
    clock: list[float] = []

    def log(frame: dict[str, Any]) -> None:
        record["time_ps"].append(frame["step"] * timestep * 1e-3)
        record["potential"].append(frame["energy"] / n)
        record["kinetic"].append(frame["kinetic"] / n)
        record["thermostat"].append(frame["thermostat"] / n)
        record["temperature"].append(frame["temperature"])
        record["volume"].append(frame["volume"])
        if writer is not None:
            writer.write(frame)
        if bar is not None:
            bar.update(frame["step"] - bar.n)
        if frame["step"] % (interval * frames_per_chunk) == 0 or frame["step"] == steps:
            clock.append(time.perf_counter())

    thermo = sim.thermo()
    log(dict(step=0, positions=sim.positions, momenta=sim.momenta,
             forces=np.asarray(sim.state.forces, np.float64), cell=sim.cell, **thermo))
    clock.clear()
    try:
        sim.run(steps, interval=interval, frames_per_chunk=frames_per_chunk, callback=log)
    finally:
        if writer is not None:
            writer.close()
        if bar is not None:
            bar.close()
    atoms.positions = sim.positions
    atoms.set_momenta(sim.momenta)
    # Speed after the first chunk (which compiles); a single chunk is timed whole.
    timed_steps = steps - interval * frames_per_chunk if len(clock) > 1 else steps
    seconds = clock[-1] - clock[0] if len(clock) > 1 else sum(sim.compile_seconds)
    out = summarise(record, n, timed_steps, seconds)
    out.update(steps=int(steps), rebuilds=sim.rebuilds, regrowths=sim.regrowths,
               compile_seconds=sim.compile_seconds[0] if sim.compile_seconds else 0.0,
               max_pairs=sim.spec.max_pairs, dtype=str(sim.dtype))
    return out


def _simulation(model: Any, atoms: Any, ensemble: str, temperature: float, timestep: float,
                friction: float, tdamp: float | None, pdamp: float | None, pressure: float,
                seed: int, skin: float, dtype: Any) -> Simulation:
    """The :class:`Simulation` of an ``ase.Atoms`` with Maxwell-Boltzmann start momenta."""
    from ase import units

    tdamp, pdamp = check_ensemble(ensemble, tdamp, pdamp, timestep, atoms.pbc)
    integrator: Any = VelocityVerlet(timestep)
    if ensemble == "langevin":
        integrator = Langevin(timestep, temperature, friction)
    elif ensemble == "nose-hoover":
        integrator = NoseHooverChain(timestep, temperature, tdamp)
    elif ensemble == "npt":
        integrator = IsotropicMTKNPT(timestep, temperature, pressure * units.GPa, tdamp, pdamp)
    periodic = bool(atoms.pbc.any())
    return Simulation(model, atoms.positions, atoms.numbers, atoms.get_masses(), integrator,
                      cell=atoms.cell.array if periodic else None,
                      pbc=atoms.pbc if periodic else None,
                      momenta=_start_momenta(atoms, temperature, seed), skin=skin, dtype=dtype,
                      seed=seed)


def _progress_bar(steps: int, num_atoms: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=steps, unit="step", desc=f"MD {num_atoms} atoms")


class _Writer:
    """Trajectory frames with energy and forces (ASE ``.traj`` or any format ASE writes)."""

    def __init__(self, atoms: Any, path: str | Path):
        import ase.io
        from ase.calculators.singlepoint import SinglePointCalculator

        self.atoms, self.path, self.io = atoms.copy(), Path(path), ase.io
        self.single_point = SinglePointCalculator
        self.traj: Any = None
        if self.path.suffix == ".traj":
            from ase.io.trajectory import Trajectory

            self.traj = Trajectory(str(self.path), "w")
        elif self.path.exists():
            self.path.unlink()

    def write(self, frame: dict[str, Any]) -> None:
        a = self.atoms
        a.positions = frame["positions"]
        a.set_momenta(frame["momenta"])
        if a.pbc.any():
            a.set_cell(frame["cell"], scale_atoms=False)
        a.calc = self.single_point(a, energy=frame["energy"], forces=frame["forces"])
        if self.traj is not None:
            self.traj.write(a)
        else:
            self.io.write(self.path, a, append=True)

    def close(self) -> None:
        if self.traj is not None:
            self.traj.close()
