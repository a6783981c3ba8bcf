"""MD speed of eqx_mp's Potential next to the same model in e3x, on the same neighbour list.

For each system size (fcc Cu supercells of 108, 864 and 4000 atoms, thermally rattled):

* ``eqx_mp force call``: one jitted energy + forces evaluation of
  :class:`eqx_mp.models.Potential` (the work of one MD step), on a fixed periodic neighbour list;
* ``e3x force call``: the same model written in e3x (``eqx_mp.interop.potential_to_e3x``, weights
  carried over) on the same neighbour list and displacement vectors; energies and forces are
  checked equal to eqx_mp's before anything is timed;
* ``eqx_mp ASE MD``: velocity-Verlet steps through ASE with :class:`eqx_mp.calculator.Calculator`
  (host neighbour list rebuilt every step, padding, transfers and ASE's own work included).

Reported: atom-steps per second (atoms x steps / s; median over repeats) and the ratio. Usage::

    python benchmarks/bench_md.py                                 # 108, 864, 4000 atoms
    python benchmarks/bench_md.py --sizes 108 --repeats 3 --md-steps 10   # quick check
    python benchmarks/bench_md.py --model runs/latest             # a trained model

Writes ``benchmarks/results/md_latest.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import ase.build
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from ase.md.velocitydistribution import Stationary, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.units import fs

from eqx_mp.calculator import Calculator, load_potential
from eqx_mp.interop import potential_to_e3x
from eqx_mp.models import Potential
from eqx_mp.neighbours import Neighbours, neighbour_list

REPEATS_PER_SIZE = {108: 3, 864: 6, 4000: 10}  # fcc cubic cells per axis (4 atoms each)


def structure(num_atoms: int, seed: int = 0):
    """A rattled fcc Cu supercell with ``num_atoms`` = 4 n³ atoms."""
    n = round((num_atoms / 4) ** (1 / 3))
    if 4 * n**3 != num_atoms:
        raise ValueError(f"num_atoms must be 4 n^3 (108, 864, 4000, ...), got {num_atoms}")
    atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True).repeat(n)
    atoms.rattle(0.05, seed=seed)
    return atoms


def _median_time(fn, repeats: int) -> float:
    fn()  # compile / warm up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def force_calls(model: Potential, atoms, repeats: int) -> dict:
    """Time jitted energy+forces of eqx_mp and of its e3x twin on one neighbour list."""
    nl = neighbour_list(atoms.positions, model.cutoff, atoms.cell.array, atoms.pbc)
    pos = jnp.asarray(atoms.positions, jnp.float32)
    num = jnp.asarray(atoms.numbers)
    cell = jnp.asarray(atoms.cell.array, jnp.float32)
    dst, src = jnp.asarray(nl.dst), jnp.asarray(nl.src)
    shifts = jnp.asarray(nl.shifts, jnp.float32)
    twin, variables = potential_to_e3x(model)

    @eqx.filter_jit
    def ours(m, p):
        return m.energy_and_forces(p, num, cell=cell, neighbours=Neighbours(dst, src, shifts))

    @jax.jit
    def theirs(v, p):
        def energy(p):
            r = p[src] - p[dst] + shifts @ cell
            return jnp.sum(twin.apply(v, num, r, dst, src))
        e, g = jax.value_and_grad(energy)(p)
        return e, -g

    e1, f1 = ours(model, pos)
    e2, f2 = theirs(variables, pos)
    scale = float(jnp.abs(f2).max())
    if not (abs(float(e1 - e2)) <= 1e-4 * max(1.0, abs(float(e2)))
            and float(jnp.abs(f1 - f2).max()) <= 1e-4 * max(scale, 1e-3)):
        raise AssertionError(f"eqx_mp and e3x disagree: E {float(e1)} vs {float(e2)}, "
                             f"max |dF| {float(jnp.abs(f1 - f2).max())}")
    n = len(atoms)
    t_ours = _median_time(lambda: ours(model, pos), repeats)
    t_theirs = _median_time(lambda: theirs(variables, pos), repeats)
    return dict(pairs=len(nl.dst), eqx_mp_s=t_ours, e3x_s=t_theirs,
                eqx_mp_atom_steps_per_s=n / t_ours, e3x_atom_steps_per_s=n / t_theirs,
                speedup=t_theirs / t_ours)


def ase_md(model: Potential, atoms, steps: int) -> dict:
    """Velocity-Verlet steps through ASE with the eqx_mp calculator (after 2 warm-up steps)."""
    a = atoms.copy()
    a.calc = Calculator(model)
    thermalize_momenta(a, temperature_K=300, rng=np.random.default_rng(0))
    Stationary(a)
    dyn = VelocityVerlet(a, timestep=2.0 * fs)
    dyn.run(2)
    t = time.perf_counter()
    dyn.run(steps)
    seconds = time.perf_counter() - t
    return dict(md_steps=steps, md_s_per_step=seconds / steps,
                md_atom_steps_per_s=len(a) * steps / seconds)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (see the module docstring) and write the JSON results.

    Arguments:
        argv: Command-line arguments.

    Returns:
        The results dict.
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[108, 864, 4000])
    p.add_argument("--repeats", type=int, default=5, help="timed force calls per library")
    p.add_argument("--md-steps", type=int, default=20, help="timed ASE MD steps (0: skip)")
    p.add_argument("--model", default=None, help="run directory; default: a random Potential")
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--max-degree", type=int, default=1)
    p.add_argument("--cutoff", type=float, default=5.0)
    p.add_argument("--output", default=str(Path(__file__).parent / "results" / "md_latest.json"))
    args = p.parse_args(argv)
    if args.model:
        model = load_potential(args.model)
    else:
        model = Potential(features=args.features, max_degree=args.max_degree, cutoff=args.cutoff,
                          max_atomic_number=29, key=jax.random.key(0))
    results = dict(
        model=model.hyperparameters(), device=str(jax.devices()[0]), jax=jax.__version__,
        platform=platform.platform(), sizes={},
    )
    print(f"model {model.hyperparameters()} on {results['device']}")
    print("| atoms | pairs | eqx_mp atom-steps/s | e3x atom-steps/s | speed-up | eqx_mp ASE MD atom-steps/s |")
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        atoms = structure(n)
        row = force_calls(model, atoms, args.repeats)
        if args.md_steps:
            row.update(ase_md(model, atoms, args.md_steps))
        results["sizes"][n] = row
        md = f"{row['md_atom_steps_per_s']:.0f}" if args.md_steps else "-"
        print(f"| {n} | {row['pairs']} | {row['eqx_mp_atom_steps_per_s']:.0f} | "
              f"{row['e3x_atom_steps_per_s']:.0f} | {row['speedup']:.1f}x | {md} |", flush=True)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
