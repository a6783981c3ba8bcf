"""Accuracy on published DFT data: eqx_mp next to MACE after the same wall-clock training budget.

Data (embedded, ``eqx_mp/data/dft/``, from github.com/davkovacs/BOTNet-datasets, MIT):

* ``ethanol``: rMD17 ethanol recomputed with PBE, 1,000 training frames + 4 isolated atoms; the
  separate file ``ethanol-test`` (1,000 other frames) is used **only** for the test numbers.
  Published MACE (Batatia et al., NeurIPS 2022, rMD17 ethanol, 1,000 training frames): energy MAE
  0.4 meV, force MAE 2.1 meV/Å, after days of GPU training.
* ``3bpa``: 500 frames of 300 K MD + 4 isolated atoms, split once (seed 0) into training,
  validation and held-out test frames; the same split for both codes.

Both codes train on the same frames, validate on the same ``--num-valid`` frames of the training
file (model selection, learning-rate schedule) and take their E0s from the isolated atoms. The
test predictions of both are scored by the same code (:func:`eqx_mp.train.error_metrics`).

* eqx_mp: the default command, ``python -m eqx_mp.train --data ethanol --time-budget B`` (the
  ``small`` preset, batches of 2, force weight 100, E0s from the isolated atoms: ``--e0s auto``),
  plus ``EQX_ARGS`` below.
* MACE (mace-torch 0.3.16): ``benchmarks/bench_mace.py``'s worker (``32x0e + 32x1o``, L_max 3,
  correlation 3, 2 layers, EMA, amsgrad, stage two over the last quarter of the budget), float32,
  r_max 5 Å, E0s from the isolated atoms of the training file.

The runs of one invocation are sequential. To give both codes the same share of the machine, the
committed results come from two invocations at once, each pinned to one core of its own
(``taskset -c 0 ... --tools eqx_mp`` and ``OMP_NUM_THREADS=1 taskset -c 1 ... --tools MACE``); each
run records the cores it was allowed (``cores``) and the load averages before and after it, since
the machine may be shared. Usage::

    python benchmarks/bench_dft.py --dataset ethanol --budget 600 \\
        --mace-python /path/to/mace-env/bin/python
    python benchmarks/bench_dft.py --dataset 3bpa --budget 600 ...
    python benchmarks/bench_dft.py --dataset ethanol --budget 7200 ...   # the long run

Outputs in ``--out`` (default ``benchmarks/results/dft``): ``<dataset>.json`` (all runs so far,
merged by dataset, tool and budget; eqx_mp runs with ``--eqx-args`` are named by them, e.g.
``eqx_mp --preset medium``), ``dft.md`` and ``dft.png`` (test error against training time).
Run directories (checkpoints) go to ``--work`` (default ``/tmp/eqx_mp_bench_dft``), not git,
one per dataset, budget and ``--eqx-args`` (``eqx_mp_ethanol_7200s_preset_medium``).
Running the same command again after an interruption resumes the run from its last checkpoint
(``python -m eqx_mp.train --resume``; the budget counts the time trained before), so a long run
may span several sittings.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_mace  # noqa: E402  (the MACE worker and its settings)
from _machine import cpu_model  # noqa: E402

#: Extra eqx_mp.train flags: none, the benchmark runs the default command (``--data FILE``
#: plus the budget and the split); more can be added on the command line (``--eqx-args``).
EQX_ARGS: list[str] = []

#: MACE settings on top of bench_mace.MACE_ARGS (later flags win).
MACE_EXTRA = ["--default_dtype", "float32", "--E0s", "average"]

#: Published numbers (MACE paper, Table 1, rMD17 ethanol, 1,000 training configurations).
PUBLISHED = {"ethanol": dict(tool="MACE (published)", energy_mae=0.4e-3, force_mae=2.1e-3)}

#: Frames of the training file for validation / for the held-out test (3BPA only).
SPLITS = {"ethanol": dict(num_valid=50, num_test=0), "3bpa": dict(num_valid=50, num_test=100)}


def _load() -> tuple[float, float, float]:
    return os.getloadavg()


def prepare(dataset: str, work: Path, seed: int) -> tuple[Any, Any, dict[str, Path]]:
    """The training and test frames (eqx_mp's split) and the extxyz files for MACE."""
    from eqx_mp.data import load_dataset, split_indices
    from eqx_mp.train.e0s import split_isolated

    isolated, rest = split_isolated(load_dataset(dataset))
    tr, va, te = split_indices(rest.num_frames, seed=seed, **SPLITS[dataset])
    test = load_dataset("ethanol-test") if dataset == "ethanol" else rest.subset(te)
    work.mkdir(parents=True, exist_ok=True)
    files = {name: work / f"{name}.xyz" for name in ("iso", "train", "valid", "test")}
    # MACE wants E0s of exactly the training elements (the ethanol file also has N).
    isolated = isolated.subset(np.isin(isolated.atom_numbers, rest.atom_numbers))
    write = bench_mace.write_extxyz
    write(files["iso"], (isolated, "IsolatedAtom"))
    write(files["train"], (isolated, "IsolatedAtom"), (rest.subset(tr), None))  # E0s first
    write(files["valid"], (rest.subset(va), None))
    write(files["test"], (test, None))
    return rest.subset(tr), test, files


def run_eqx(args: argparse.Namespace, budget: float, train: Any, test: Any) -> dict[str, Any]:
    """``python -m eqx_mp.train`` (the default command); the saved model scored on the test frames."""
    from eqx_mp.train import baseline_metrics, baseline_predictor, evaluate, load_model

    # One directory per dataset, budget and extra flags: runs that differ only in their flags
    # must not resume each other's checkpoints.
    flags = re.sub(r"[^A-Za-z0-9.]+", "_", "_".join(args.eqx_args)).strip("_")
    out = args.work / "_".join(filter(None, ["eqx_mp", args.dataset, f"{budget:g}s", flags]))
    split = SPLITS[args.dataset]
    cmd = [sys.executable, "-m", "eqx_mp.train", "--data", args.dataset, "--time-budget",
           str(budget), "--num-valid", str(split["num_valid"]), "--num-test",
           str(split["num_test"]), "--seed", str(args.seed), "--output", str(out),
           "--no-progress", "--no-plot", "--epochs", "100000", *EQX_ARGS, *args.eqx_args]
    loads = out / "bench_loads.json"
    if args.reuse and loads.is_file():  # score an earlier run of this script again
        before, after = json.loads(loads.read_text())
    else:
        started = out / "bench_started.json"  # the load before the first start of this run
        run_cmd = cmd
        if (out / "checkpoint.eqx").is_file() and not (out / "run.json").is_file():
            # An interrupted run (a stopped machine or session) continues from its last
            # checkpoint with its own configuration; the time budget counts the earlier part.
            run_cmd = [sys.executable, "-m", "eqx_mp.train", "--resume", str(out),
                       "--no-progress", "--no-plot"]
        else:
            out.mkdir(parents=True, exist_ok=True)
            started.write_text(json.dumps(_load()))
        print("+", " ".join(run_cmd), flush=True)
        subprocess.run(run_cmd, check=True, stdin=subprocess.DEVNULL)
        before, after = json.loads(started.read_text()), _load()
        loads.write_text(json.dumps([before, after]))
    run = json.loads((out / "run.json").read_text())
    metrics = {k: v for k, v in evaluate(load_model(out), test).items() if isinstance(v, float)}
    metrics.update(baseline_metrics(baseline_predictor(train), test))
    m = run["metrics"]
    # Runs with extra flags (e.g. ``--preset medium``) are kept apart from the default command's.
    tool = " ".join(["eqx_mp", *EQX_ARGS, *args.eqx_args])
    return dict(tool=tool, budget=budget, train_seconds=m["train_seconds"],
                cores=sorted(os.sched_getaffinity(0)), cpu=cpu_model(),
                epochs=m["epochs"], best_epoch=m["best_epoch"], command=" ".join(cmd[1:]),
                load_before=before, load_after=after, metrics=metrics,
                valid_curve=[(r["seconds"], r.get("valid_force_rmse")) for r in run["history"]])


def run_mace(args: argparse.Namespace, budget: float, files: dict[str, Path], train: Any,
             test: Any) -> dict[str, Any]:
    """bench_mace's MACE worker on the same files; its test predictions scored here."""
    ns = argparse.Namespace(out=args.work / args.dataset, mace_python=args.mace_python,
                            seed=args.seed, mace_args=MACE_EXTRA)
    before = _load()
    res = bench_mace.run_mace(ns, files, budget, train, test)
    res.update(load_before=before, load_after=_load(), cores=sorted(os.sched_getaffinity(0)),
               cpu=cpu_model(),
               command="mace_run_train " + " ".join(bench_mace.MACE_ARGS + MACE_EXTRA))
    res["metrics"] = {k: v for k, v in res["metrics"].items() if isinstance(v, float)}
    return res


def _merge(path: Path, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    old = json.loads(path.read_text())["runs"] if path.is_file() else []
    keep = [r for r in old if (r["tool"], r["budget"]) not in {(n["tool"], n["budget"]) for n in new}]
    return sorted(keep + new, key=lambda r: (r["budget"], r["tool"]))


def report(out: Path) -> str:
    """``dft.md`` (table of every dataset's runs) and ``dft.png`` (test error vs time)."""
    lines = ["| data | tool | budget (s) | trained (s) | epochs | load (1 min, before/after) | "
             "cpu | E MAE | E RMSE | F MAE | F RMSE |", "|---" * 11 + "|"]
    data = {}
    for path in sorted(out.glob("*.json")):
        d = json.loads(path.read_text())
        data[d["dataset"]] = d
        for r in d["runs"] + d.get("published", []):
            m = r.get("metrics", r)
            cells = [f"{1e3 * m[k]:.2f}" if k in m else "–"
                     for k in ("energy_mae", "energy_rmse", "force_mae", "force_rmse")]
            load = (f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f}"
                    if "load_before" in r else "")
            lines.append(f"| {d['dataset']} | {r['tool']} | {r.get('budget', '')} | "
                         f"{r.get('train_seconds', 0):.0f} | {r.get('epochs', '')} | {load} | "
                         f"{r.get('cpu', 'not recorded' if 'load_before' in r else '')} | "
                         + " | ".join(cells) + " |")
    table = ("Test errors (meV, meV/Å) after the same wall-clock training budget\n\n"
             + "\n".join(lines) + "\n")
    (out / "dft.md").write_text(table)
    _plot(data, out / "dft.png")
    _plot(data, out.parent / "dft.png")  # the docs serve benchmarks/results/*.png
    return table


def _plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(data), figsize=(5.5 * len(data), 6.5), squeeze=False)
    for ax, (name, d) in zip(axes[0], data.items()):
        tools = sorted({r["tool"] for r in d["runs"]}, key=lambda t: (t != "eqx_mp", t))
        for i, tool in enumerate(tools):
            rs = sorted((r for r in d["runs"] if r["tool"] == tool), key=lambda r: r["budget"])
            color = "C1" if tool == "MACE" else f"C{2 * i}"
            ax.plot([r["train_seconds"] for r in rs],
                    [1e3 * r["metrics"]["force_rmse"] for r in rs],
                    "s--" if tool == "MACE" else "o-", color=color,
                    label=f"{tool} test force RMSE")
            for r in rs:
                if r.get("valid_curve"):
                    t, v = zip(*[(s, e) for s, e in r["valid_curve"] if e is not None])
                    ax.plot(t, 1e3 * np.asarray(v), color=color, alpha=0.3, lw=1,
                            label=f"{tool} validation ({r['budget']:g} s run)")
        for p in d.get("published", []):
            ax.axhline(1e3 * p["force_mae"], color="0.4", ls=":",
                       label="MACE published force MAE")
        ax.set(title=name, xlabel="training wall time (s)", ylabel="force error (meV/Å)",
               yscale="log")
        # Below the axes: the legend of many runs would hide the curves.
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", choices=sorted(SPLITS), default="ethanol")
    p.add_argument("--budget", type=float, nargs="+", default=[600.0],
                   help="wall-clock training budgets in seconds (e.g. 600 and 7200)")
    p.add_argument("--tools", nargs="+", default=["eqx_mp", "MACE"], choices=["eqx_mp", "MACE"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "dft")
    p.add_argument("--work", type=Path, default=Path("/tmp/eqx_mp_bench_dft"))
    p.add_argument("--mace-python", default=sys.executable,
                   help="python of an environment with mace-torch 0.3.16 (the 'mace' extra)")
    p.add_argument("--reuse", action="store_true",
                   help="eqx_mp: score the model of an earlier run in --work instead of training")
    p.add_argument("--eqx-args", nargs=argparse.REMAINDER, default=[],
                   help="more eqx_mp.train flags (the rest of the command line)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    train, test, files = prepare(args.dataset, args.work / args.dataset, args.seed)
    path = args.out / f"{args.dataset}.json"
    for budget, tool in [(b, t) for b in args.budget for t in args.tools]:
        if tool == "eqx_mp":
            runs = [run_eqx(args, budget, train, test)]
        else:
            runs = [run_mace(args, budget, files, train, test)]
        doc = dict(dataset=args.dataset, test_frames=test.num_frames,
                   train_frames=train.num_frames, split=SPLITS[args.dataset], seed=args.seed,
                   date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   machine=f"{os.cpu_count()} CPU cores (shared: see each run's load and cpu)",
                   runs=_merge(path, runs), published=[PUBLISHED[args.dataset]]
                   if args.dataset in PUBLISHED else [])
        path.write_text(json.dumps(doc, indent=1))
    print(report(args.out))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
