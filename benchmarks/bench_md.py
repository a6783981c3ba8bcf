"""MD speed and energy conservation: the ASE loop, the in-JAX engine and e3x's twin in the engine.

For periodic fcc Cu/Pt supercells (every 5th atom Pt, rattled) of 108, 864, 4000 and 32000 atoms:

* ``ase``: ASE's velocity Verlet with :class:`eqx_mp.calculator.Calculator` (host neighbour list
  every step, padding, transfers and ASE's own work included);
* ``jax``: :class:`eqx_mp.md.Simulation` (velocity Verlet as a ``lax.scan`` in chunks, the
  fixed-capacity list with a 0.5 Å skin rebuilt inside ``jit``);
* ``e3x``: the same engine and ``lax.scan`` with the same model written in e3x
  (:func:`eqx_mp.interop.potential_to_e3x`, weights carried over) as its force field.

Each (engine, size) runs in its own process, so ``peak_rss_mib`` is that run's peak memory.
Reported: atom-steps/s after the first chunk, the first chunk's wall time (compilation + run),
peak RSS. ``--drift`` adds float64 NVE runs (2 fs) of the ``jax`` engine and reports the total
energy drift (slope of a linear fit, meV/atom/ps) and largest deviation. Usage::

    python benchmarks/bench_md.py --model runs/bulk64                 # the full table
    python benchmarks/bench_md.py --model runs/bulk64 --sizes 108 --steps 20   # quick check

Writes ``benchmarks/results/md.json`` (and prints a markdown table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _machine import cpu_model  # noqa: E402


def structure(num_atoms: int, seed: int = 0):
    """A rattled fcc Cu/Pt supercell (every 5th atom Pt) with ``num_atoms = 4 n³`` atoms."""
    import ase.build

    n = round((num_atoms / 4) ** (1 / 3))
    if 4 * n**3 != num_atoms:
        raise ValueError(f"num_atoms must be 4 n^3 (108, 864, 4000, 32000, ...), got {num_atoms}")
    atoms = ase.build.bulk("Cu", "fcc", a=3.65, cubic=True).repeat(n)
    atoms.numbers[::5] = 78
    atoms.rattle(0.05, seed=seed)
    return atoms


def _e3x_field(model: Any, numbers: Any) -> Any:
    """The e3x twin of the model as the engine's force field (same list, same vectors)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from eqx_mp.interop import potential_to_e3x
    from eqx_mp.md.engine import ForceField

    module, variables = potential_to_e3x(model)

    class E3xForces(ForceField):
        variables: Any
        numbers: Any
        module: Any = eqx.field(static=True)

        def __call__(self, positions, cell, dst, src, shifts):
            n = positions.shape[0]

            def energy(x):
                r = x[jnp.minimum(src, n - 1)] - x[jnp.minimum(dst, n - 1)]
                if cell is not None:
                    r = r + shifts.astype(x.dtype) @ cell
                r = jnp.where((dst < n)[:, None], r, jnp.asarray([2 * model.cutoff, 0, 0], x.dtype))
                return jnp.sum(self.module.apply(self.variables, self.numbers, r, dst, src))

            e, g = jax.value_and_grad(energy)(positions)
            return e, -g

    return E3xForces(variables, jnp.asarray(numbers, jnp.int32), module)


def run_case(engine: str, size: int, model_path: str, steps: int, dtype: str) -> dict:
    """One (engine, size) run in this process; returns its row."""
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import numpy as np

    from eqx_mp.calculator import Calculator, load_potential
    from eqx_mp.md import Simulation, VelocityVerlet
    from eqx_mp.md.engine import potential_in_dtype

    model, _ = potential_in_dtype(load_potential(model_path), dtype)
    atoms = structure(size)
    rng = np.random.default_rng(0)
    momenta = rng.normal(size=(size, 3)) * np.sqrt(atoms.get_masses()[:, None] * 8.617e-5 * 300)
    momenta -= momenta.mean(0)
    row: dict[str, Any] = dict(engine=engine, atoms=size, dtype=dtype)
    if engine == "ase":
        from ase.md.verlet import VelocityVerlet as AseVerlet
        from ase.units import fs

        atoms.calc = Calculator(model)
        atoms.set_momenta(momenta)
        dyn = AseVerlet(atoms, timestep=2.0 * fs)
        t = time.perf_counter()
        dyn.run(1)
        row["compile_s"] = time.perf_counter() - t
        t = time.perf_counter()
        dyn.run(steps)
        seconds = time.perf_counter() - t
    else:
        sim_model = model
        cutoff = None
        if engine == "e3x":
            sim_model, cutoff = _e3x_field(model, atoms.numbers), model.cutoff
        sim = Simulation(sim_model, atoms.positions, atoms.numbers, atoms.get_masses(),
                         VelocityVerlet(2.0), cell=atoms.cell.array, momenta=momenta,
                         cutoff=cutoff)
        interval = max(1, steps // 2)
        t = time.perf_counter()
        sim.run(interval, interval=interval, frames_per_chunk=1)
        row["compile_s"] = time.perf_counter() - t
        t = time.perf_counter()
        sim.run(2 * interval, interval=interval, frames_per_chunk=1)
        seconds, steps = time.perf_counter() - t, 2 * interval
        row.update(rebuilds=sim.rebuilds, regrowths=sim.regrowths, pair_slots=sim.spec.max_pairs)
    row.update(steps=steps, seconds=seconds, atom_steps_per_s=size * steps / seconds,
               peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return row


def run_drift(size: int, model_path: str, picoseconds: float) -> dict:
    """Float64 NVE (2 fs) of the jax engine from 300 K: drift and largest deviation."""
    import jax

    jax.config.update("jax_enable_x64", True)
    from eqx_mp.calculator import load_potential
    from eqx_mp.md import run_jax_md

    model = load_potential(model_path)
    steps = int(round(picoseconds * 500))
    out = run_jax_md(model, structure(size), temperature=300.0, timestep=2.0, steps=steps,
                     interval=50, frames_per_chunk=10, dtype="float64")
    return dict(engine="jax", atoms=size, dtype="float64", picoseconds=picoseconds, steps=steps,
                drift_mev_per_atom_ps=out["drift_mev_per_atom_ps"],
                max_deviation_mev_per_atom=out["max_deviation_mev_per_atom"],
                final_temperature=float(out["temperature"][-1]), rebuilds=out["rebuilds"],
                regrowths=out["regrowths"], atom_steps_per_s=out["atom_steps_per_second"],
                peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _model_copy(path: str, dtype: str) -> str:
    """The model saved in ``dtype`` (speed runs load it without switching JAX to float64)."""
    code = ("import jax, sys; jax.config.update('jax_enable_x64', True)\n"
            "from eqx_mp import io\nfrom eqx_mp.calculator import load_potential\n"
            "from eqx_mp.md.engine import potential_in_dtype\n"
            "m, _ = potential_in_dtype(load_potential(sys.argv[1]), sys.argv[2])\n"
            "io.save(sys.argv[3], m)\n")
    out = str(HERE / "results" / f".model_{dtype}.eqx")
    subprocess.run([sys.executable, "-W", "ignore", "-c", code, path, dtype, out], check=True)
    return out


def _child(args: list[str], model: str, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--model", model, "--child", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {timeout:.0f} s")
    if proc.returncode != 0:
        return dict(error=f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (see the module docstring) and write the JSON results.

    Arguments:
        argv: Command-line arguments.

    Returns:
        The results dict.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="training run directory or .eqx file")
    p.add_argument("--sizes", type=int, nargs="+", default=[108, 864, 4000, 32000])
    p.add_argument("--engines", nargs="+", default=["ase", "jax", "e3x"])
    p.add_argument("--steps", type=int, default=20, help="timed steps (per size: scaled down)")
    p.add_argument("--ase-sizes", type=int, nargs="+", default=[108, 864])
    p.add_argument("--dtype", default="float32", help="precision of the speed runs")
    p.add_argument("--drift-sizes", type=int, nargs="*", default=[108])
    p.add_argument("--drift-ps", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    p.add_argument("--output", default=str(HERE / "results" / "md.json"))
    p.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        kind, size, steps = args.child[0], int(args.child[1]), args.child[2]
        row = (run_drift(size, args.model, float(steps)) if kind == "drift"
               else run_case(kind, size, args.model, int(steps), args.dtype))
        print(json.dumps(row))
        return row
    import jax

    from eqx_mp import io

    file = Path(args.model) / "model.eqx" if Path(args.model).is_dir() else Path(args.model)
    results: dict[str, Any] = dict(
        model=str(args.model), model_hyperparameters=io.read_header(file)["hyperparams"],
        jax=jax.__version__, platform=platform.platform(),
        cpu=cpu_model(), cpus=os.cpu_count(), load_before=os.getloadavg(), speed=[], drift=[])
    speed_model = _model_copy(args.model, args.dtype)
    print("| atoms | engine | atom-steps/s | first chunk (compile + run) s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        steps = max(4, args.steps * 864 // max(n, 864)) if n > 864 else args.steps
        for engine in args.engines:
            if engine == "ase" and n not in args.ase_sizes:
                continue
            row = _child([engine, str(n), str(steps), "--dtype", args.dtype], speed_model,
                         args.timeout)
            row.setdefault("engine", engine)
            row.setdefault("atoms", n)
            row["load"] = os.getloadavg()[0]
            results["speed"].append(row)
            print(f"| {n} | {engine} | {row.get('atom_steps_per_s', float('nan')):.0f} | "
                  f"{row.get('compile_s', float('nan')):.1f} | "
                  f"{row.get('peak_rss_mib', float('nan')):.0f} | {row.get('error', '')}",
                  flush=True)
    for n in args.drift_sizes:
        row = _child(["drift", str(n), str(args.drift_ps)], args.model, 4 * args.timeout)
        results["drift"].append(row)
        print(f"drift {n} atoms, {args.drift_ps} ps float64: {row}", flush=True)
    results["load_after"] = os.getloadavg()
    Path(speed_model).unlink()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
