"""Molecular dynamics with a trained potential through ASE's integrators.

Command line (needs ASE and the ``train`` extra)::

    python -m eqx_mp.md --model runs/latest [--structure FILE | bulk:INDEX] [--repeat N]
        [--ensemble nve|langevin] [--temperature K] [--timestep FS] [--steps N] [--output DIR]

It writes ``DIR/md.traj`` (ASE trajectory, every ``--interval`` steps), ``DIR/energies.png``
(potential, kinetic and total energy per atom against time), ``DIR/md.json`` (settings, energy
series, drift, speed) and prints the total-energy drift in meV/atom/ps (NVE: the slope of a
linear fit of the total energy per atom against time).

Python: :func:`run_md` (on any ``ase.Atoms``) and :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["build_parser", "default_structure", "main", "plot_energies", "run_md"]


def default_structure(spec: str | None, repeat: int = 1) -> Any:
    """The starting structure of a run.

    Arguments:
        spec: ``None`` (a cubic fcc Cu cell, a = 3.61 Å, repeated 3x3x3: 108 atoms),
            ``"bulk:INDEX"`` (a frame of the embedded bulk data set), or a file ASE can read
            (its last frame).
        repeat: Replicate the structure ``repeat`` times along each lattice vector.

    Returns:
        An ``ase.Atoms``.
    """
    import ase.build
    import ase.io

    if spec is None:
        atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    elif spec.startswith("bulk:"):
        from .data import load_dataset

        atoms = load_dataset("bulk").to_atoms(int(spec.split(":", 1)[1]))
        atoms.calc = None
    else:
        atoms = ase.io.read(spec, index=-1)
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    return atoms.repeat(repeat) if repeat > 1 else atoms


def _dynamics(atoms: Any, ensemble: str, temperature: float, timestep: float, friction: float,
              rng: np.random.Generator) -> Any:
    """Maxwell-Boltzmann velocities (no net momentum) and the ASE integrator."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    if ensemble not in ("nve", "langevin"):
        raise ValueError(f"ensemble must be 'nve' or 'langevin', got {ensemble!r}")
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    if ensemble == "nve":
        return VelocityVerlet(atoms, timestep=timestep * units.fs)
    return Langevin(atoms, timestep=timestep * units.fs, temperature_K=temperature,
                    friction=friction / units.fs, fixcm=False, rng=rng)


def run_md(
    calculator: Any,
    atoms: Any,
    *,
    ensemble: str = "nve",
    temperature: float = 300.0,
    timestep: float = 2.0,
    steps: int = 1000,
    friction: float = 0.01,
    interval: int = 10,
    trajectory: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run NVE (velocity Verlet) or Langevin dynamics with ASE and record the energies.

    Arguments:
        calculator: An ASE calculator (e.g. :class:`eqx_mp.calculator.Calculator`).
        atoms: The ``ase.Atoms`` to move (modified in place).
        ensemble: ``"nve"`` or ``"langevin"``.
        temperature: Initial temperature of the Maxwell-Boltzmann velocities, and the thermostat
            target for Langevin (K).
        timestep: Time step (fs).
        steps: Number of MD steps.
        friction: Langevin friction (1/fs).
        interval: Record energies (and trajectory frames) every ``interval`` steps.
        trajectory: Path of the ASE ``.traj`` file to write, or ``None``.
        seed: Seed of the initial velocities and the Langevin noise.

    Returns:
        A dict with ``time_ps`` (K,), ``potential``, ``kinetic``, ``total`` (K,) energies per
        atom (eV), ``temperature`` (K,) (K), ``drift_mev_per_atom_ps`` (slope of a linear fit of
        the total energy per atom), ``max_deviation_mev_per_atom`` (largest deviation of the
        total energy per atom from its start), ``num_atoms``, ``steps``, ``seconds`` and
        ``atom_steps_per_second`` (timed after step 0, whose energy call compiles).

    Raises:
        ValueError: For an unknown ensemble or non-positive steps, interval or time step.
    """
    from ase.io.trajectory import Trajectory

    for name, value in (("steps", steps), ("interval", interval), ("timestep", timestep)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    atoms.calc = calculator
    dyn = _dynamics(atoms, ensemble, temperature, timestep, friction, np.random.default_rng(seed))
    n = len(atoms)
    record: dict[str, list[float]] = {k: [] for k in ("time_ps", "potential", "kinetic", "temperature")}

    clock: list[float] = []

    def log() -> None:  # ASE calls it at step 0 too (whose energy call compiles the model)
        record["time_ps"].append(dyn.nsteps * timestep * 1e-3)
        record["potential"].append(atoms.get_potential_energy() / n)
        record["kinetic"].append(atoms.get_kinetic_energy() / n)
        record["temperature"].append(atoms.get_temperature())
        clock.append(time.perf_counter())

    dyn.attach(log, interval=interval)
    traj = None
    if trajectory is not None:
        traj = Trajectory(str(trajectory), "w", atoms)
        dyn.attach(traj.write, interval=interval)
    try:
        dyn.run(steps)
    finally:
        if traj is not None:
            traj.close()
    seconds = time.perf_counter() - clock[0]
    out: dict[str, Any] = {k: np.asarray(v) for k, v in record.items()}
    out["total"] = out["potential"] + out["kinetic"]
    slope = np.polyfit(out["time_ps"], out["total"], 1)[0] if len(out["total"]) > 1 else 0.0
    out.update(
        drift_mev_per_atom_ps=1e3 * float(slope),
        max_deviation_mev_per_atom=1e3 * float(np.abs(out["total"] - out["total"][0]).max()),
        num_atoms=n, steps=int(steps), seconds=seconds,
        atom_steps_per_second=n * steps / seconds,
    )
    return out


def plot_energies(result: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Plot potential, kinetic and total energy per atom against time (needs matplotlib).

    Arguments:
        result: :func:`run_md`'s dict.
        path: The ``.png`` file to write.
        title: Plot title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result["time_ps"]
    fig, axes = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    e0 = result["total"][0]
    for key, style in (("potential", "C0"), ("kinetic", "C1"), ("total", "k")):
        axes[0].plot(t, result[key] - (e0 if key != "kinetic" else 0.0), style, label=key)
    axes[0].set_ylabel("energy per atom (eV)\n(potential, total: minus total at t=0)")
    axes[0].legend()
    axes[1].plot(t, 1e3 * (result["total"] - e0), "k")
    axes[1].set_ylabel("total energy drift (meV/atom)")
    axes[1].set_xlabel("time (ps)")
    axes[0].set_title(title or f"{result['num_atoms']} atoms, drift "
                      f"{result['drift_mev_per_atom_ps']:.3g} meV/atom/ps")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m eqx_mp.md`` argument parser.

    Returns:
        An ``argparse.ArgumentParser``.
    """
    p = argparse.ArgumentParser(prog="python -m eqx_mp.md", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="training run directory (or .eqx file)")
    p.add_argument("--structure", default=None,
                   help="ASE-readable file (last frame) or bulk:INDEX (embedded bulk set); "
                        "default: fcc Cu, 3x3x3 cubic cells (108 atoms)")
    p.add_argument("--repeat", type=int, default=1, help="replicate the structure N x N x N")
    p.add_argument("--ensemble", choices=("nve", "langevin"), default="nve")
    p.add_argument("--temperature", type=float, default=300.0,
                   help="initial velocities / Langevin target (K)")
    p.add_argument("--timestep", type=float, default=2.0, help="time step (fs)")
    p.add_argument("--steps", type=int, default=1000, help="number of MD steps")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction (1/fs)")
    p.add_argument("--interval", type=int, default=10, help="steps between recorded frames")
    p.add_argument("--neighbours", choices=("host", "jax"), default="host",
                   help="neighbour list on the host (vesin) or inside jit")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--output", default="runs/md", help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plot", action="store_true", help="skip energies.png")
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring).

    Arguments:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status (0).
    """
    args = build_parser().parse_args(argv)
    if args.dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    from .calculator import Calculator

    calc = Calculator(args.model, neighbours=args.neighbours, dtype=args.dtype)
    atoms = default_structure(args.structure, args.repeat)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.ensemble.upper()} MD: {len(atoms)} atoms ({atoms.get_chemical_formula()}), "
          f"{args.steps} steps of {args.timestep} fs at {args.temperature} K", flush=True)
    result = run_md(calc, atoms, ensemble=args.ensemble, temperature=args.temperature,
                    timestep=args.timestep, steps=args.steps, friction=args.friction,
                    interval=args.interval, trajectory=out / "md.traj", seed=args.seed)
    summary = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}
    summary.update(settings=vars(args), compiled_shapes=sorted(calc.compiled_shapes))
    (out / "md.json").write_text(json.dumps(summary, indent=1))
    if not args.no_plot:
        plot_energies(result, out / "energies.png")
    label = "NVE drift" if args.ensemble == "nve" else "total-energy drift (Langevin, not conserved)"
    print(f"{label}: {result['drift_mev_per_atom_ps']:.4f} meV/atom/ps (largest deviation "
          f"{result['max_deviation_mev_per_atom']:.4f} meV/atom over "
          f"{result['time_ps'][-1]:.3f} ps); final T = {result['temperature'][-1]:.0f} K")
    print(f"speed: {result['atom_steps_per_second']:.0f} atom-steps/s "
          f"({result['seconds']:.1f} s, compiled {len(calc.compiled_shapes)} shape(s)); "
          f"wrote {out / 'md.traj'}, {out / 'md.json'}"
          + ("" if args.no_plot else f", {out / 'energies.png'}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
