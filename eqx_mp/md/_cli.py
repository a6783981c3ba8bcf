"""``python -m eqx_mp.md``: parser and entry point."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ._ase import ENSEMBLES, default_structure, run_md
from ._plot import plot_energies

__all__ = ["build_parser", "main"]

DESCRIPTION = "Molecular dynamics with a trained eqx_mp potential (in-JAX engine or ASE)."


def _supercell(text: str) -> tuple[int, int, int]:
    parts = [int(x) for x in text.replace("x", ",").split(",")]
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"--supercell needs one or three positive ints "
                                         f"(e.g. 4,4,4), got {text!r}")
    return parts[0], parts[1], parts[2]


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m eqx_mp.md`` argument parser.

    Returns:
        An ``argparse.ArgumentParser``.
    """
    p = argparse.ArgumentParser(prog="python -m eqx_mp.md", description=DESCRIPTION,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="training run directory (or .eqx file)")
    p.add_argument("--engine", choices=("jax", "ase"), default="jax",
                   help="jax: integrator, neighbour list and model inside jit (lax.scan chunks); "
                        "ase: ASE's integrators with eqx_mp.calculator.Calculator")
    p.add_argument("--structure", default=None,
                   help="ASE-readable file (last frame) or bulk:INDEX (embedded bulk set); "
                        "default: fcc Cu, 3x3x3 cubic cells (108 atoms)")
    p.add_argument("--supercell", type=_supercell, default=None,
                   help="repeat the structure, e.g. 4,4,4")
    p.add_argument("--repeat", type=int, default=1, help="replicate the structure N x N x N")
    p.add_argument("--ensemble", choices=ENSEMBLES, default="nve",
                   help="nve: velocity Verlet; langevin: NVT by Langevin (BAOAB in the jax "
                        "engine); nose-hoover: NVT by a Nosé-Hoover chain of 3 (ASE's "
                        "NoseHooverChainNVT, step for step); npt: the isotropic MTK barostat "
                        "with Nosé-Hoover chains (ASE's IsotropicMTKNPT; periodic structures)")
    p.add_argument("--temperature", type=float, default=300.0,
                   help="initial velocities / thermostat target (K)")
    p.add_argument("--timestep", type=float, default=2.0, help="time step (fs)")
    p.add_argument("--steps", type=int, default=1000, help="number of MD steps")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction (1/fs)")
    p.add_argument("--tdamp", type=float, default=None,
                   help="Nosé-Hoover time scale (fs; default: 100 time steps)")
    p.add_argument("--pdamp", type=float, default=None,
                   help="barostat time scale (fs; default: 1000 time steps)")
    p.add_argument("--pressure", type=float, default=0.0, help="npt: external pressure (GPa)")
    p.add_argument("--interval", type=int, default=10, help="steps between recorded frames")
    p.add_argument("--skin", type=float, default=0.5, help="neighbour-list skin (Å, jax engine)")
    p.add_argument("--chunk", type=int, default=10,
                   help="frames per jitted chunk (jax engine; the host sees the state between)")
    p.add_argument("--neighbours", choices=("host", "jax"), default="host",
                   help="ase engine: neighbour list on the host (vesin) or inside jit")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="compute precision (default: the model's)")
    p.add_argument("--format", choices=("traj", "extxyz"), default="traj",
                   help="trajectory file: md.traj or md.extxyz")
    p.add_argument("--output", default="runs/md", help="output directory")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plot", action="store_true", help="skip energies.png")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _load(path: str, dtype: str | None) -> Any:
    """The model, with ``jax_enable_x64`` on first if it or the run is float64."""
    import jax

    from .. import io

    file = Path(path) / "model.eqx" if Path(path).is_dir() else Path(path)
    saved = io.read_header(file).get("float_dtype") if file.exists() else None
    if dtype == "float64" or saved == "float64":
        jax.config.update("jax_enable_x64", True)
    from ..calculator import load_potential

    return load_potential(path)


def _report(args: argparse.Namespace, result: dict[str, Any], out: Path, traj: Path) -> None:
    label = {"nve": "NVE drift", "nose-hoover": "Nosé-Hoover drift (conserved energy)",
             "npt": "NPT drift (conserved energy)",
             "langevin": "total-energy drift (Langevin, not conserved)"}[args.ensemble]
    print(f"{label}: {result['drift_mev_per_atom_ps']:.4f} meV/atom/ps (largest deviation "
          f"{result['max_deviation_mev_per_atom']:.4f} meV/atom over "
          f"{result['time_ps'][-1]:.3f} ps); final T = {result['temperature'][-1]:.0f} K")
    extra = (f", {result['rebuilds']} neighbour-list builds, {result['regrowths']} regrowths"
             if args.engine == "jax" else "")
    print(f"speed: {result['atom_steps_per_second']:.0f} atom-steps/s ({result['seconds']:.1f} s"
          f"{extra}); wrote {traj}, {out / 'md.json'}"
          + ("" if args.no_plot else f", {out / 'energies.png'}"))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: run MD, write the trajectory, ``md.json`` and ``energies.png``.

    Arguments:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status (0).
    """
    args = build_parser().parse_args(argv)
    model = _load(args.model, args.dtype)
    atoms = default_structure(args.structure, args.supercell or args.repeat)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    traj = out / f"md.{args.format}"
    print(f"{args.ensemble.upper()} MD ({args.engine} engine): {len(atoms)} atoms "
          f"({atoms.get_chemical_formula()}), {args.steps} steps of {args.timestep} fs at "
          f"{args.temperature} K", flush=True)
    common = dict(ensemble=args.ensemble, temperature=args.temperature, timestep=args.timestep,
                  steps=args.steps, friction=args.friction, tdamp=args.tdamp,
                  pdamp=args.pdamp, pressure=args.pressure, interval=args.interval,
                  trajectory=traj, seed=args.seed)
    if args.engine == "jax":
        from ._jax import run_jax_md

        result = run_jax_md(model, atoms, skin=args.skin, dtype=args.dtype,
                            frames_per_chunk=args.chunk, progress=not args.no_progress, **common)
        extra: dict[str, Any] = {}
    else:
        from ..calculator import Calculator

        calc = Calculator(model, neighbours=args.neighbours, dtype=args.dtype)
        result = run_md(calc, atoms, **common)
        extra = dict(compiled_shapes=sorted(calc.compiled_shapes), dtype=str(calc.dtype))
    summary = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(args).items()}
    summary.update(settings=settings, **extra)
    (out / "md.json").write_text(json.dumps(summary, indent=1))
    if not args.no_plot:
        plot_energies(result, out / "energies.png")
    _report(args, result, out, traj)
    return 0
