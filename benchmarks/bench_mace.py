"""Side by side with MACE: test MAEs of eqx_mp and MACE after the same wall-clock training budgets.

Both tools train on the same train/validation/test split of the same data (eqx_mp's
``split_indices`` with its seed and sizes), written as extxyz for MACE, for each budget (default
150 s and 600 s), from scratch. The test predictions of both are scored by the same code
(:func:`eqx_mp.train.error_metrics`). Outputs in ``--out``: ``results.json``, ``results.md`` (the
table) and ``results.png`` (test MAE against training wall time).

* eqx_mp: ``python -m eqx_mp.train`` with its defaults and ``--time-budget B`` (compilation
  included; the epoch running when the budget ends is cut and validated).
* MACE (mace-torch 0.3.16, ``pip install 'eqx_mp[mace]'``, in this or another environment given by
  ``--mace-python``): ``mace_run_train`` with ``32x0e + 32x1o`` hidden irreps, ``max_ell`` 3,
  correlation 3, ``r_max`` 5, 2 interactions, EMA 0.99, amsgrad, E0s ``average``, float64, and
  its two-stage loss (stage two from 75% of the budget, as its default starts it at 75% of the
  epochs). MACE has no time budget: this script stops it at the first epoch start past the
  budget (so its last epoch can overrun it; the table shows the measured training time), then
  MACE evaluates and saves its best model as usual and the script scores it on the test frames.

Usage (on an otherwise idle machine; timings of a shared one are meaningless)::

    python benchmarks/bench_mace.py                       # cluster data, 150 s and 600 s
    python benchmarks/bench_mace.py --data bulk           # periodic bulk set (+ stress)
    python benchmarks/bench_mace.py --budgets 20 --max-frames 80 --num-valid 10 --num-test 10 \\
        --out /tmp/smoke                                  # a quick smoke test

The worker mode (``--mace-worker``) runs inside the MACE environment and imports only MACE,
torch, ASE and numpy.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent

#: MACE settings of the comparison (issue 16); more can be added with ``--mace-args``.
MACE_ARGS = [
    "--model", "MACE", "--hidden_irreps", "32x0e + 32x1o", "--max_ell", "3",
    "--correlation", "3", "--r_max", "5.0", "--num_interactions", "2", "--ema",
    "--ema_decay", "0.99", "--amsgrad", "--default_dtype", "float64", "--E0s", "average",
    "--batch_size", "16", "--valid_batch_size", "50", "--max_num_epochs", "100000",
    "--device", "cpu", "--swa", "--energy_key", "REF_energy", "--forces_key", "REF_forces",
    "--stress_key", "REF_stress",
]


# ----------------------------------------------------------------------------- data


def write_extxyz(path: Path, *parts: tuple[Any, str | None]) -> None:
    """Frames with REF_energy/REF_forces(/REF_stress) (keys no ASE calculator overwrites).

    Each part is ``(dataset, config_type or None)``; the parts are written in order, to a
    temporary file first and renamed, so that no reader ever sees a half-written file.
    """
    import ase.io

    frames = []
    for dataset, config_type in parts:
        for i in range(dataset.num_frames):
            atoms = dataset.to_atoms(i)
            fr = dataset.frame(i)
            atoms.calc = None
            atoms.info["REF_energy"] = float(fr.energy)
            atoms.arrays["REF_forces"] = np.asarray(fr.forces, np.float64)
            if fr.stress is not None:
                atoms.info["REF_stress"] = np.asarray(fr.stress, np.float64)
            if config_type:
                atoms.info["config_type"] = config_type
            frames.append(atoms)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    ase.io.write(tmp, frames, format="extxyz")
    tmp.replace(path)


def prepare_data(args: argparse.Namespace) -> tuple[Any, Any, str, dict[str, Path]]:
    """The training and test frames, the ``--data`` value for eqx_mp and the extxyz files."""
    from eqx_mp.data import load_dataset, split_indices

    data = load_dataset(args.data)
    source = args.data or "cluster"
    if args.max_frames and args.max_frames < data.num_frames:
        data = data.subset(np.linspace(0, data.num_frames - 1, args.max_frames).astype(int))
        source = str(args.out / "data.npz")
        arrays = dict(positions=data.atom_positions, numbers=data.atom_numbers,
                      energies=data.energies, forces=data.atom_forces, atom_counts=data.atom_counts)
        if data.cells is not None:
            arrays.update(cells=data.cells, pbc=data.pbc)
        if data.stresses is not None:
            arrays.update(stresses=data.stresses, stress_mask=data.stress_mask)
        np.savez(source, **arrays)
    split = dict(zip(("train", "valid", "test"), split_indices(
        data.num_frames, num_valid=args.num_valid, num_test=args.num_test, seed=args.seed)))
    files = {}
    for name, idx in split.items():
        files[name] = args.out / f"{name}.xyz"
        write_extxyz(files[name], (data.subset(idx), None))
    return data.subset(split["train"]), data.subset(split["test"]), source, files


# ----------------------------------------------------------------------------- the two tools


def run_eqx_mp(args: argparse.Namespace, source: str, budget: float) -> dict[str, Any]:
    """``python -m eqx_mp.train`` with its defaults; returns its run.json metrics."""
    out = args.out / f"eqx_mp_{budget:g}s"
    cmd = [sys.executable, "-m", "eqx_mp.train", "--data", source, "--time-budget", str(budget),
           "--num-valid", str(args.num_valid), "--num-test", str(args.num_test),
           "--seed", str(args.seed), "--output", str(out), "--no-progress", "--no-plot",
           *args.eqx_args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    m = json.loads((out / "run.json").read_text())["metrics"]
    return dict(tool="eqx_mp", budget=budget, train_seconds=m["train_seconds"],
                epochs=m["epochs"], metrics=m)


def run_mace(args: argparse.Namespace, files: dict[str, Path], budget: float, train: Any,
             test: Any) -> dict[str, Any]:
    """MACE in its environment (worker mode); its test predictions scored here."""
    from eqx_mp.train import baseline_metrics, baseline_predictor, error_metrics

    work = args.out / f"mace_{budget:g}s"
    cmd = [args.mace_python, str(Path(__file__).resolve()), "--mace-worker", "--budget",
           str(budget), "--work-dir", str(work), "--train", str(files["train"]), "--valid",
           str(files["valid"]), "--test", str(files["test"]), "--seed", str(args.seed),
           "--mace-args=" + json.dumps(args.mace_args)]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    res = json.loads((work / "worker.json").read_text())
    pred = np.load(work / "test_predictions.npz")
    stresses = pred["stresses"] if "stresses" in pred.files else None
    metrics = error_metrics(test, pred["energies"], pred["forces"], stresses)
    metrics.update(baseline_metrics(baseline_predictor(train), test))
    return dict(tool="MACE", budget=budget, train_seconds=res["train_seconds"],
                epochs=res["epochs"], metrics=metrics)


# ----------------------------------------------------------------------------- MACE worker


class _Budget(Exception):
    """Raised at an epoch start past the wall-clock budget."""


def mace_worker(args: argparse.Namespace) -> None:
    """Run ``mace_run_train`` with a wall-clock budget, then predict the test frames."""
    import ase.io
    import mace.tools
    from mace.cli import run_train

    mace_train = sys.modules["mace.tools.train"]  # the module (the attribute is the function)

    original_train, original_epoch = mace.tools.train, mace_train.train_one_epoch
    state: dict[str, Any] = dict(start=None, epochs=0, swa=None, stage_two_done=False)

    def train_one_epoch(*a: Any, epoch: int, **kw: Any) -> Any:
        elapsed = time.perf_counter() - state["start"]
        swa = state["swa"]
        stage_two = swa is not None and epoch >= swa.start
        if elapsed > args.budget and (swa is None or state["stage_two_done"]):
            raise _Budget
        if swa is not None and not stage_two and elapsed > 0.75 * args.budget:
            # The two-stage loss's second stage: the last quarter (its checkpoints get "_swa").
            swa.start = state["checkpoints"].io.swa_start = epoch + 1
        out = original_epoch(*a, epoch=epoch, **kw)
        state["epochs"] += 1
        state["stage_two_done"] |= stage_two
        return out

    def train(**kw: Any) -> None:
        state["start"], state["swa"] = time.perf_counter(), kw.get("swa")
        state["checkpoints"] = kw["checkpoint_handler"]
        try:
            original_train(**kw)
        except _Budget:
            logging.info("eqx_mp benchmark: wall-clock budget reached")
        state["seconds"] = time.perf_counter() - state["start"]

    mace.tools.train, mace_train.train_one_epoch = train, train_one_epoch
    args.work_dir.mkdir(parents=True, exist_ok=True)
    mace_args = MACE_ARGS + list(args.mace_args)
    if any("REF_stress" in a.info for a in ase.io.read(args.train, index=":3")):
        mace_args += ["--loss", "stress", "--compute_stress", "True"]
    sys.argv = ["mace_run_train", "--name", "mace", "--seed", str(args.seed), "--work_dir",
                str(args.work_dir), "--train_file", str(args.train), "--valid_file",
                str(args.valid), "--test_file", str(args.test), *mace_args]
    run_train.main()
    models = sorted(args.work_dir.glob("*.model"))
    model = next((m for m in models if m.name.endswith("_stagetwo.model")),
                 next(m for m in models if "compiled" not in m.name))
    _mace_predict(model, args.test, args.work_dir / "test_predictions.npz")
    (args.work_dir / "worker.json").write_text(json.dumps(
        dict(train_seconds=state["seconds"], epochs=state["epochs"], model=str(model))))


def _mace_predict(model: Path, test: Path, out: Path) -> None:
    import ase.io
    from mace.calculators import MACECalculator

    calc = MACECalculator(model_paths=str(model), device="cpu", default_dtype="float64")
    energies, forces, stresses = [], [], []
    frames = ase.io.read(test, index=":")
    for atoms in frames:
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
        forces.append(atoms.get_forces())
        stresses.append(atoms.get_stress() if atoms.pbc.any() else np.zeros(6))
    arrays = dict(energies=np.asarray(energies), forces=np.concatenate(forces))
    if any(a.pbc.any() for a in frames):
        arrays["stresses"] = np.asarray(stresses)
    np.savez(out, **arrays)


# ----------------------------------------------------------------------------- report


_COLUMNS = (("energy_mae", "E MAE (meV)"), ("energy_per_atom_mae", "E/atom MAE (meV)"),
            ("force_mae", "F MAE (meV/Å)"), ("stress_mae", "stress MAE (meV/Å³)"))


def write_report(results: list[dict[str, Any]], out: Path, data: str) -> str:
    """``results.json``, ``results.md`` (the table) and ``results.png``; returns the table."""
    (out / "results.json").write_text(json.dumps(results, indent=1))
    cols = [(k, name) for k, name in _COLUMNS if all(k in r["metrics"] for r in results)]
    lines = [f"Test errors after the same wall-clock training budget ({data} data)", "",
             "| budget | tool | training time (s) | epochs | "
             + " | ".join(n for _, n in cols) + " |",
             "|---" * (4 + len(cols)) + "|"]
    for r in results:
        vals = " | ".join(f"{1e3 * r['metrics'][k]:.2f}" for k, _ in cols)
        lines.append(f"| {r['budget']:g} s | {r['tool']} | {r['train_seconds']:.0f} | "
                     f"{r['epochs']} | {vals} |")
    base = results[0]["metrics"]
    lines.append("| | baseline | | | " + " | ".join(
        f"{1e3 * base['baseline_' + k]:.2f}" for k, _ in cols) + " |")
    table = "\n".join(lines) + "\n"
    (out / "results.md").write_text(table)
    _plot(results, cols, out / "results.png")
    return table


def _plot(results: list[dict[str, Any]], cols: list[tuple[str, str]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [c for c in cols if c[0] != "energy_per_atom_mae"]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.8))
    for ax, (key, name) in zip(np.atleast_1d(axes), keys):
        for tool, marker in (("eqx_mp", "o-"), ("MACE", "s--")):
            rs = sorted((r for r in results if r["tool"] == tool), key=lambda r: r["train_seconds"])
            if rs:
                ax.plot([r["train_seconds"] for r in rs], [1e3 * r["metrics"][key] for r in rs],
                        marker, label=tool)
        ax.axhline(1e3 * results[0]["metrics"]["baseline_" + key], color="0.5", ls=":",
                   label="trivial baseline")
        ax.set_xlabel("training wall time (s)")
        ax.set_ylabel(f"test {name}")
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=None, help="cluster (default), bulk or a data file")
    p.add_argument("--budgets", type=float, nargs="+", default=[150.0, 600.0],
                   help="wall-clock training budgets in seconds")
    p.add_argument("--tools", nargs="+", default=["eqx_mp", "MACE"], choices=["eqx_mp", "MACE"])
    p.add_argument("--num-valid", type=int, default=200)
    p.add_argument("--num-test", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-frames", type=int, default=0,
                   help="use this many evenly spaced frames (0: all; for smoke tests)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "mace")
    p.add_argument("--mace-python", default=sys.executable,
                   help="python of the environment with mace-torch (the 'mace' extra)")
    p.add_argument("--eqx-args", nargs=argparse.REMAINDER, default=[],
                   help="more eqx_mp.train flags (the rest of the command line)")
    p.add_argument("--mace-args", type=json.loads, default=[],
                   help='more mace_run_train flags, as a JSON list, e.g. \'["--batch_size", "8"]\'')
    # worker mode (inside the MACE environment)
    p.add_argument("--mace-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    p.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    for name in ("--train", "--valid", "--test"):
        p.add_argument(name, type=Path, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.mace_worker:
        mace_worker(args)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    train, test, source, files = prepare_data(args)
    results = []
    for budget in args.budgets:
        if "eqx_mp" in args.tools:
            results.append(run_eqx_mp(args, source, budget))
        if "MACE" in args.tools:
            results.append(run_mace(args, files, budget, train, test))
        write_report(results, args.out, args.data or "cluster")  # after every run
    print(write_report(results, args.out, args.data or "cluster"))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
