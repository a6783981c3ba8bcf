"""Generate the embedded demo data set ``eqx_mp/data/cupt_icosahedron.npz``.

Recipe (see ``eqx_mp/data/__init__.py`` for the full provenance):

* a 13-atom Cu icosahedron (``ase.cluster.Icosahedron("Cu", noshells=2)``);
* per trajectory, 0-6 randomly chosen atoms switched to Pt;
* ASE's EMT calculator (effective medium theory; energies in eV, forces in eV/Å);
* Langevin molecular dynamics, 2 fs time step, friction 0.02 / fs, 8 trajectories at
  temperatures evenly spaced over 300-900 K, 200 warm-up steps, then 250 frames each taken
  every 10 steps = 2000 frames.

Needs the ``dev`` extra (ASE). Takes ~90 s on two CPU cores::

    python scripts/generate_dataset.py [--out eqx_mp/data/cupt_icosahedron.npz] [--seed 0]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "eqx_mp" / "data" / "cupt_icosahedron.npz"


def generate(
    *,
    num_trajectories: int = 8,
    frames_per_trajectory: int = 250,
    stride: int = 10,
    warmup_steps: int = 200,
    t_min: float = 300.0,
    t_max: float = 900.0,
    timestep_fs: float = 2.0,
    friction: float = 0.02,
    max_pt: int = 6,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Run the MD trajectories and return the data set arrays.

    Arguments:
        num_trajectories: Number of independent Langevin trajectories.
        frames_per_trajectory: Frames recorded per trajectory (after warm-up).
        stride: MD steps between recorded frames.
        warmup_steps: MD steps discarded at the start of each trajectory.
        t_min: Temperature (K) of the first trajectory.
        t_max: Temperature (K) of the last trajectory.
        timestep_fs: MD time step in femtoseconds.
        friction: Langevin friction in 1/fs.
        max_pt: Maximum number of Cu atoms switched to Pt per trajectory (uniform in 0..max_pt).
        seed: Seed of the numpy generator used for substitutions and the thermostat.

    Returns:
        A dict with ``positions`` (F, 13, 3) float32 [Å], ``forces`` (F, 13, 3) float32 [eV/Å],
        ``energies`` (F,) float64 [eV], ``numbers`` (F, 13) uint8 (atomic numbers per frame),
        ``temperatures`` (F,) float32 [K, thermostat target] and ``trajectory`` (F,) uint8.
    """
    from ase import units
    from ase.calculators.emt import EMT
    from ase.cluster import Icosahedron
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    rng = np.random.default_rng(seed)
    temps = np.linspace(t_min, t_max, num_trajectories)
    pos, frc, ene, num, tem, trj = [], [], [], [], [], []
    for t, temp in enumerate(temps):
        atoms = Icosahedron("Cu", noshells=2)
        n_pt = int(rng.integers(0, max_pt + 1))
        symbols = atoms.get_chemical_symbols()
        for i in rng.choice(len(atoms), size=n_pt, replace=False):
            symbols[i] = "Pt"
        atoms.set_chemical_symbols(symbols)
        atoms.center()
        atoms.calc = EMT()
        thermalize_momenta(atoms, temperature_K=float(temp), rng=rng)
        Stationary(atoms)
        ZeroRotation(atoms)
        dyn = Langevin(
            atoms,
            timestep=timestep_fs * units.fs,
            temperature_K=float(temp),
            friction=friction / units.fs,
            fixcm=False,
            rng=rng,
        )
        dyn.run(warmup_steps)
        for _ in range(frames_per_trajectory):
            dyn.run(stride)
            pos.append(atoms.get_positions().astype(np.float32))
            frc.append(atoms.get_forces().astype(np.float32))
            ene.append(float(atoms.get_potential_energy()))
            num.append(atoms.get_atomic_numbers().astype(np.uint8))
            tem.append(temp)
            trj.append(t)
        print(f"trajectory {t}: {temp:.0f} K, {n_pt} Pt, last E = {ene[-1]:.4f} eV", flush=True)
    return {
        "positions": np.stack(pos),
        "forces": np.stack(frc),
        "energies": np.asarray(ene, dtype=np.float64),
        "numbers": np.stack(num),
        "temperatures": np.asarray(tem, dtype=np.float32),
        "trajectory": np.asarray(trj, dtype=np.uint8),
    }


if __name__ == "__main__":
    from _dataset_cli import main

    main(__doc__.split("\n")[0], DEFAULT_OUT, generate)
