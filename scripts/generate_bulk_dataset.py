"""Generate the embedded periodic data set ``eqx_mp/data/cupt_bulk.npz``.

Recipe (see ``eqx_mp/data/__init__.py`` for the keys and statistics):

* fcc Cu/Pt alloy supercells of the cubic 4-atom cell repeated 2x2x2, 2x2x3, 2x3x3 or 3x3x3
  (32, 48, 72 or 108 sites), a random Pt fraction 0-50 % per trajectory, 0-2 vacancies;
* lattice constant from Vegard's law (Cu 3.61 Å, Pt 3.92 Å), then a random symmetric strain
  with every component uniform in [-3 %, +3 %] (normal and shear);
* ASE's EMT calculator (energies in eV, forces in eV/Å, stress in eV/Å³ with ASE's sign);
* Langevin molecular dynamics at fixed cell, 2 fs time step, friction 0.02 / fs, temperature
  uniform in 300-1500 K per trajectory, 100 warm-up steps, then frames every 10 steps;
  positions wrapped into the cell.

Needs the ``dev`` extra (ASE). Takes about a minute on two CPU cores::

    python scripts/generate_bulk_dataset.py [--out eqx_mp/data/cupt_bulk.npz] [--seed 0]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "eqx_mp" / "data" / "cupt_bulk.npz"
REPEATS = ((2, 2, 2), (2, 2, 3), (2, 3, 3), (3, 3, 3))
LATTICE = {"Cu": 3.61, "Pt": 3.92}


def _structure(rng: np.random.Generator, max_strain: float, max_vacancies: int):
    """A random strained, substituted fcc supercell with vacancies; returns (atoms, info)."""
    import ase.build

    repeat = REPEATS[int(rng.integers(len(REPEATS)))]
    x_pt = float(rng.uniform(0.0, 0.5))
    a = (1 - x_pt) * LATTICE["Cu"] + x_pt * LATTICE["Pt"]
    atoms = ase.build.bulk("Cu", "fcc", a=a, cubic=True).repeat(repeat)
    symbols = np.array(atoms.get_chemical_symbols())
    symbols[rng.random(len(atoms)) < x_pt] = "Pt"
    atoms.set_chemical_symbols(symbols.tolist())
    vacancies = int(rng.integers(0, max_vacancies + 1))
    del atoms[rng.choice(len(atoms), size=vacancies, replace=False).tolist()]
    e = rng.uniform(-max_strain, max_strain, size=(3, 3))
    strain = 0.5 * (e + e.T)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
    return atoms, dict(vacancies=vacancies, strain=strain)


def _record(out: dict[str, list], atoms, temp: float, trajectory: int, info: dict) -> None:
    """Append one frame (wrapped into the cell) to the lists in ``out``."""
    atoms.wrap()
    s = info["strain"]
    out["energies"].append(float(atoms.get_potential_energy()))
    out["atom_counts"].append(len(atoms))
    out["positions"].append(atoms.get_positions().astype(np.float32))
    out["forces"].append(atoms.get_forces().astype(np.float32))
    out["numbers"].append(atoms.get_atomic_numbers().astype(np.uint8))
    out["cells"].append(atoms.cell.array.copy())
    out["stresses"].append(atoms.get_stress(voigt=True))
    out["temperatures"].append(temp)
    out["trajectory"].append(trajectory)
    out["strains"].append([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    out["vacancies"].append(info["vacancies"])


def generate(
    *,
    num_trajectories: int = 48,
    frames_per_trajectory: int = 20,
    stride: int = 10,
    warmup_steps: int = 100,
    t_min: float = 300.0,
    t_max: float = 1500.0,
    max_strain: float = 0.03,
    max_vacancies: int = 2,
    timestep_fs: float = 2.0,
    friction: float = 0.02,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Run the MD trajectories and return the data set arrays (packed per-atom layout).

    Arguments:
        num_trajectories: Number of independent structures / Langevin trajectories.
        frames_per_trajectory: Frames recorded per trajectory (after warm-up).
        stride: MD steps between recorded frames.
        warmup_steps: MD steps discarded at the start of each trajectory.
        t_min: Lowest thermostat temperature (K).
        t_max: Highest thermostat temperature (K).
        max_strain: Largest absolute strain component (0.03 = 3 %).
        max_vacancies: Maximum number of removed atoms per structure.
        timestep_fs: MD time step in femtoseconds.
        friction: Langevin friction in 1/fs.
        seed: Seed of the numpy generator (structures and thermostat).

    Returns:
        A dict with ``energies`` (F,) float64 [eV], ``atom_counts`` (F,) int16, the frames'
        atoms concatenated: ``positions`` (A, 3) float32 [Å], ``forces`` (A, 3) float32 [eV/Å],
        ``numbers`` (A,) uint8; per frame ``cells`` (F, 3, 3) float64 [Å, rows],
        ``pbc`` (F, 3) bool, ``stresses`` (F, 6) float64 [eV/Å³, Voigt xx yy zz yz xz xy],
        ``temperatures`` (F,) float32 [K], ``trajectory`` (F,) uint8, ``strains`` (F, 6)
        float32 (the applied strain, Voigt) and ``vacancies`` (F,) uint8.
    """
    from ase import units
    from ase.calculators.emt import EMT
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    rng = np.random.default_rng(seed)
    out: dict[str, list] = {k: [] for k in ("energies", "atom_counts", "positions", "forces",
                                            "numbers", "cells", "stresses", "temperatures",
                                            "trajectory", "strains", "vacancies")}
    for t in range(num_trajectories):
        atoms, info = _structure(rng, max_strain, max_vacancies)
        temp = float(rng.uniform(t_min, t_max))
        atoms.calc = EMT()
        thermalize_momenta(atoms, temperature_K=temp, rng=rng)
        Stationary(atoms)
        dyn = Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=temp,
                       friction=friction / units.fs, fixcm=False, rng=rng)
        dyn.run(warmup_steps)
        for _ in range(frames_per_trajectory):
            dyn.run(stride)
            _record(out, atoms, temp, t, info)
        n_pt = int((atoms.numbers == 78).sum())
        print(f"trajectory {t}: {len(atoms)} atoms ({n_pt} Pt, {info['vacancies']} vacancies), "
              f"{temp:.0f} K, last E = {out['energies'][-1]:.3f} eV", flush=True)
    return {
        "energies": np.asarray(out["energies"], np.float64),
        "atom_counts": np.asarray(out["atom_counts"], np.int16),
        "positions": np.concatenate(out["positions"]),
        "forces": np.concatenate(out["forces"]),
        "numbers": np.concatenate(out["numbers"]),
        "cells": np.asarray(out["cells"], np.float64),
        "pbc": np.ones((len(out["energies"]), 3), bool),
        "stresses": np.asarray(out["stresses"], np.float64),
        "temperatures": np.asarray(out["temperatures"], np.float32),
        "trajectory": np.asarray(out["trajectory"], np.uint8),
        "strains": np.asarray(out["strains"], np.float32),
        "vacancies": np.asarray(out["vacancies"], np.uint8),
    }


if __name__ == "__main__":
    from _dataset_cli import main

    main(__doc__.split("\n")[0], DEFAULT_OUT, generate)
