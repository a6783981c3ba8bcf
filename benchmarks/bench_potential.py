"""What users run, side by side in ONE process: an e3x-style potential in eqx_mp and in e3x.

Model (both libraries, e3x's weights carried over with ``eqx_mp.interop.from_e3x``; see
``tests/_twins.py``): Embed -> basis (reciprocal Bernstein, smooth cutoff) -> 2 x [MessagePass ->
add -> Dense -> silu] -> readout, F=32, L=2, Lb=2, K=16, cutoff 5 Å.

Systems: N atoms on a jittered cubic lattice (2.25 Å spacing, liquid-like density, no periodic
images), all pairs closer than the cutoff as a sparse neighbour list sorted by destination.

Workloads (each jitted; timings interleaved round-robin, medians):

* ``md``: one MD step's model call, energy and forces ``-dE/dR`` (parameters fixed);
* ``train``: one force-training step's gradient, ``value_and_grad`` w.r.t. the parameters of
  ``(E - E_ref)**2 + mean((F - F_ref)**2)`` with ``F = -dE/dR`` (reverse over reverse).

Reported per workload: median ms, compile time (lower + compile, s), XLA scratch
(``memory_analysis().temp_size_in_bytes``, MiB) and eqx_mp's speed-up. Energies, forces and
gradients are checked equal before timing. ``--sweep`` times eqx_mp alone up to ~1e5 pairs.

Cores (CPU): every table is measured on one core and on all cores (``--cores 1,all``). XLA sizes
its thread pool once per process, so each core setting runs in a child process of its own
(``taskset -c 0`` for one core), in which the two libraries are timed interleaved as above; the
parent reports each library's speed-up from one core to all (its core-scaling factor).
``--device gpu`` runs the same tables on the first GPU (no ``taskset``; see ``benchmarks/gpu.sh``).

e3nn-jax has no e3x-equivalent of this model (its gated nonlinearities, linear layers and irreps
layout differ), so it appears in the layer benchmark (``bench_message_pass.py``) only.

Usage::

    python benchmarks/bench_potential.py                    # 256 and 2048 atoms, 1 and all cores, + sweep
    python benchmarks/bench_potential.py --atoms 256 --repeats 3 --no-sweep --cores all
    python benchmarks/bench_potential.py --device gpu       # on a GPU (writes potential_gpu.json)

Writes ``benchmarks/results/potential.json`` (``potential_gpu.json`` with ``--device gpu``) and
the plot next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _device import select_device  # noqa: E402
from _machine import cpu_model  # noqa: E402

DEVICE = select_device()

import e3x  # noqa: E402
import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import eqx_mp  # noqa: E402
from _timing import compile_seconds, interleaved, scratch_mb  # noqa: E402
from _twins import E3xPotential, EqxPotential, Sizes, init_and_convert  # noqa: E402

SIZES = Sizes(features=32, max_degree=2, basis_max_degree=2, num_basis=16, cutoff=5.0,
              num_elements=10, iterations=2)
SPACING = 2.25


def system(num_atoms: int, seed: int = 0):
    """Positions (jittered cubic lattice), atomic numbers and the sorted sparse neighbour list."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(num_atoms ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:num_atoms]
    pos = ((grid + rng.uniform(-0.2, 0.2, size=grid.shape)) * SPACING).astype(np.float32)
    dst, src = [], []
    for start in range(0, num_atoms, 512):  # chunked: bounded memory at 1e5 pairs
        d = np.linalg.norm(pos[start:start + 512, None] - pos[None], axis=-1)
        i, j = np.nonzero((d < SIZES.cutoff) & (d > 0))
        dst.append(i + start)
        src.append(j)
    dst, src = np.concatenate(dst).astype(np.int32), np.concatenate(src).astype(np.int32)
    numbers = rng.integers(1, SIZES.num_elements, size=num_atoms).astype(np.int32)
    return (jnp.asarray(numbers), jnp.asarray(pos), jnp.asarray(dst), jnp.asarray(src))


def workloads(energy_fn):
    """``md(params, R)`` and ``train(params, R, E_ref, F_ref)`` for ``energy_fn(params, R)``."""

    def md(params, positions):
        e, g = jax.value_and_grad(energy_fn, argnums=1)(params, positions)
        return e, -g

    def loss(params, positions, e_ref, f_ref):
        e, f = md(params, positions)
        return (e - e_ref) ** 2 + jnp.mean((f - f_ref) ** 2)

    return jax.jit(md), jax.jit(jax.value_and_grad(loss))


def build(num_atoms: int):
    numbers, positions, dst, src = system(num_atoms)
    e3x_model = E3xPotential(SIZES)
    variables, ours = init_and_convert(e3x_model, 0, numbers, positions, dst, src)
    params, static = eqx.partition(ours, eqx.is_array)

    def ours_energy(p, r):
        return eqx.combine(p, static)(numbers, r, dst, src)

    def e3x_energy(v, r):
        return e3x_model.apply(v, numbers, r, dst, src)

    return (numbers, positions, dst, src), {"eqx_mp": (ours_energy, params), "e3x": (e3x_energy, variables)}


def rel(a, r) -> float:
    a, r = np.asarray(a, np.float64), np.asarray(r, np.float64)
    return float(np.linalg.norm(a - r) / max(np.linalg.norm(r), 1e-30))


def bench_size(num_atoms: int, repeats: int, libs: tuple[str, ...]) -> dict:
    (numbers, positions, dst, src), models = build(num_atoms)
    row: dict = {"atoms": num_atoms, "pairs": int(dst.shape[0])}
    print(f"{num_atoms} atoms, {row['pairs']} pairs", flush=True)
    rng = np.random.default_rng(1)
    f_ref = jnp.asarray(rng.normal(size=positions.shape).astype(np.float32))
    e_ref = jnp.float32(0.0)
    compiled: dict = {}
    for lib in libs:
        energy_fn, params = models[lib]
        md, train = workloads(energy_fn)
        for name, fn, args in (("md", md, (params, positions)),
                               ("train", train, (params, positions, e_ref, f_ref))):
            c, secs = compile_seconds(fn, args)
            compiled[(lib, name)] = (c, args)
            row[f"{lib}_{name}_compile_s"] = secs
            row[f"{lib}_{name}_scratch_mb"] = scratch_mb(c)
    if {"eqx_mp", "e3x"} <= set(libs):  # same numbers before timing
        (e1, f1), (e2, f2) = (compiled[(lib, "md")][0](*compiled[(lib, "md")][1]) for lib in ("eqx_mp", "e3x"))
        (l1, g1), (l2, g2) = (compiled[(lib, "train")][0](*compiled[(lib, "train")][1])
                              for lib in ("eqx_mp", "e3x"))
        row["rel_err_energy"], row["rel_err_forces"] = rel(e1, e2), rel(f1, f2)
        row["rel_err_loss"] = rel(l1, l2)
        for k in ("rel_err_energy", "rel_err_forces", "rel_err_loss"):
            if not row[k] < 1e-3:
                raise AssertionError(f"eqx_mp and e3x disagree: {k} = {row[k]:.2e}")
    for name in ("md", "train"):
        times = interleaved({lib: compiled[(lib, name)] for lib in libs}, repeats)
        for lib, ms in times.items():
            row[f"{lib}_{name}_ms"] = ms
        if "e3x" in libs:
            row[f"speedup_{name}"] = row[f"e3x_{name}_ms"] / row[f"eqx_mp_{name}_ms"]
            row[f"compile_ratio_{name}"] = row[f"e3x_{name}_compile_s"] / row[f"eqx_mp_{name}_compile_s"]
            row[f"scratch_ratio_{name}"] = row[f"e3x_{name}_scratch_mb"] / row[f"eqx_mp_{name}_scratch_mb"]
        for lib in libs:
            print(f"  {name:5s} {lib:7s} {row[f'{lib}_{name}_ms']:9.1f} ms  compile "
                  f"{row[f'{lib}_{name}_compile_s']:6.1f} s  scratch {row[f'{lib}_{name}_scratch_mb']:9.1f} MiB",
                  flush=True)
    return row


def print_table(rows: list[dict]) -> None:
    """Markdown table: one row per size, workload and core setting, then the core scaling."""
    print("\n| atoms | pairs | workload | cores | eqx_mp ms | e3x ms | speed-up | eqx_mp compile s | "
          "e3x compile s | eqx_mp scratch MiB | e3x scratch MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for w, label in (("md", "MD step (E + F)"), ("train", "force-training step")):
            for cores, m in r["by_cores"].items():
                if f"e3x_{w}_ms" not in m:
                    continue
                print(f"| {r['atoms']} | {r['pairs']} | {label} | {cores} | {m[f'eqx_mp_{w}_ms']:.1f} | "
                      f"{m[f'e3x_{w}_ms']:.1f} | {m[f'speedup_{w}']:.1f}x | {m[f'eqx_mp_{w}_compile_s']:.1f} | "
                      f"{m[f'e3x_{w}_compile_s']:.1f} | {m[f'eqx_mp_{w}_scratch_mb']:.1f} | "
                      f"{m[f'e3x_{w}_scratch_mb']:.1f} |")
    scaling = [(r, w) for r in rows for w in ("md", "train") if r.get(f"scaling_eqx_mp_{w}")]
    if scaling:
        print("\n| atoms | workload | eqx_mp 1 -> all cores | e3x 1 -> all cores |")
        print("|---|---|---|---|")
        for r, w in scaling:
            print(f"| {r['atoms']} | {w} | {r[f'scaling_eqx_mp_{w}']:.2f}x | "
                  f"{r.get(f'scaling_e3x_{w}', float('nan')):.2f}x |")


def plot(rows: list[dict], sweep: list[dict], path: Path) -> None:
    """Step times (all cores) per size, and the eqx_mp-only sweep of time and scratch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    labels, xs = [], []
    rows = [dict(r, **r["by_cores"][list(r["by_cores"])[-1]]) for r in rows]
    for i, r in enumerate(rows):
        for j, w in enumerate(("md", "train")):
            x = 2.5 * i + j
            for k, lib in enumerate(("eqx_mp", "e3x")):
                if f"{lib}_{w}_ms" in r:
                    axes[0].bar(x + (k - 0.5) * 0.4, r[f"{lib}_{w}_ms"], 0.4, color=f"C{k}",
                                label=lib if (i, j) == (0, 0) else None)
            labels.append(f"{r['atoms']} at.\n{'MD' if w == 'md' else 'train'}")
            xs.append(x)
    axes[0].set_xticks(xs, labels)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("time per step [ms]")
    axes[0].legend()
    if sweep:
        p = [r["pairs"] for r in sweep]
        for w in ("md", "train"):
            axes[1].loglog(p, [r[f"eqx_mp_{w}_ms"] for r in sweep], "o-", label=f"eqx_mp {w}")
            axes[2].loglog(p, [r[f"eqx_mp_{w}_scratch_mb"] for r in sweep], "o-", label=f"eqx_mp {w}")
        for r in rows:
            for w in ("md", "train"):
                if f"e3x_{w}_ms" in r:
                    axes[1].loglog([r["pairs"]], [r[f"e3x_{w}_ms"]], "x", color="k")
                    axes[2].loglog([r["pairs"]], [r[f"e3x_{w}_scratch_mb"]], "x", color="k")
        axes[1].plot([], [], "x", color="k", label="e3x")
        axes[1].set_xlabel("pairs")
        axes[1].set_ylabel("time per step [ms]")
        axes[2].set_xlabel("pairs")
        axes[2].set_ylabel("XLA scratch [MiB]")
        axes[1].legend()
        axes[2].legend()
    fig.suptitle("Potential (F=32, L=2, Lb=2, K=16, 2 iterations): MD step and force-training step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def _measure(args) -> dict:
    """This process's measurements (one core setting): the compared sizes and the sweep."""
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({platform.processor() or platform.machine()}, "
          f"{len(os.sched_getaffinity(0))} of {os.cpu_count()} cpus), e3x {e3x.__version__}, "
          f"eqx_mp {eqx_mp.__version__}, schedule {eqx_mp.Config.schedule}", flush=True)
    rows = [bench_size(int(n), args.repeats, ("eqx_mp", "e3x")) for n in args.atoms.split(",")]
    sweep = []
    if not args.no_sweep:
        sweep = [bench_size(int(n), max(1, args.repeats // 2), ("eqx_mp",)) for n in args.sweep_atoms.split(",")]
    return {"rows": rows, "sweep": sweep}


def _child(args, cores: str) -> dict:
    """Run :func:`_measure` in a child process pinned to ``cores`` (``1`` or ``all``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child.json"
        cmd = [sys.executable, __file__, "--child", str(out), "--atoms", args.atoms, "--repeats",
               str(args.repeats), "--sweep-atoms", args.sweep_atoms, "--device", args.device]
        if args.no_sweep or cores == "1":
            cmd.append("--no-sweep")
        if cores == "1":
            cmd = ["taskset", "-c", str(min(os.sched_getaffinity(0)))] + cmd
        print(f"--- {cores} core(s): {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atoms", default="256,2048", help="system sizes (atoms) compared with e3x")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions (median reported)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the eqx_mp pairs sweep")
    parser.add_argument("--sweep-atoms", default="128,512,1024,2048,3400",
                        help="system sizes of the eqx_mp-only sweep (3400 atoms ~ 1e5 pairs)")
    parser.add_argument("--cores", default="1,all",
                        help="CPU core settings, '1' and/or 'all' (ignored with --device gpu)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu"), help="where to run")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="results JSON (default results/potential[_gpu].json)")
    args = parser.parse_args(argv)
    if args.child:
        Path(args.child).write_text(json.dumps(_measure(args), default=str))
        return 0
    settings = ["all"] if args.device == "gpu" else args.cores.split(",")
    by_cores = {c: _child(args, c) for c in settings}
    rows = []
    for i, n in enumerate(args.atoms.split(",")):
        row = {"atoms": int(n), "pairs": by_cores[settings[0]]["rows"][i]["pairs"],
               "by_cores": {c: by_cores[c]["rows"][i] for c in settings}}
        if {"1", "all"} <= set(settings):
            for lib in ("eqx_mp", "e3x"):
                for w in ("md", "train"):
                    row[f"scaling_{lib}_{w}"] = (row["by_cores"]["1"][f"{lib}_{w}_ms"]
                                                 / row["by_cores"]["all"][f"{lib}_{w}_ms"])
        rows.append(row)
    sweep = by_cores[settings[-1]]["sweep"]
    print_table(rows)
    if sweep:
        print("\n| atoms | pairs | MD ms | train ms | MD scratch MiB | train scratch MiB |")
        print("|---|---|---|---|---|---|")
        for r in sweep:
            print(f"| {r['atoms']} | {r['pairs']} | {r['eqx_mp_md_ms']:.1f} | {r['eqx_mp_train_ms']:.1f} | "
                  f"{r['eqx_mp_md_scratch_mb']:.1f} | {r['eqx_mp_train_scratch_mb']:.1f} |")
    name = "potential_gpu.json" if args.device == "gpu" else "potential.json"
    out = Path(args.out or Path(__file__).parent / "results" / name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": args.device, "cpu": cpu_model(), "cpus": os.cpu_count(),
                               "rows": rows, "sweep": sweep,
                               "sizes": dataclasses_asdict(SIZES), "jax": jax.__version__,
                               "e3x": e3x.__version__, "load_avg": os.getloadavg()}, indent=1, default=str))
    print(f"results: {out}")
    plot(rows, sweep, out.with_suffix(".png"))
    return 0


def dataclasses_asdict(obj) -> dict:
    import dataclasses

    return dataclasses.asdict(obj)


if __name__ == "__main__":
    sys.exit(main())
