"""The command line: ``python -m eqx_mp.train`` (``eqx-mp-train``) and its ``predict`` subcommand.

The training flags are generated from the fields of :class:`~eqx_mp.train.TrainConfig` (name,
type, default and help text), so they are written in one place.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .. import io
from ..data import load_dataset
from .checkpoint import MODEL_FILE, load_model, model_file, read_checkpoint_config
from .config import CHOICES, MODEL_FIELDS, TrainConfig, flag_name
from .e0s import e0_frames
from .evaluate import (baseline_metrics, baseline_predictor, evaluate, format_config_types,
                       format_metrics, metrics_by_config_type)
from .report import LOG_FILE, PLOT_FILE, RUN_FILE
from .run import RESUMABLE_CHANGES, train

__all__ = ["build_parser", "build_predict_parser", "main"]


def _plain(text: str) -> str:
    """Docstring markup (``code``, :role:`target`) as plain text for ``--help``."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def _add_config_flag(parser: Any, field: dataclasses.Field) -> None:
    """One flag for a :class:`TrainConfig` field; unset flags stay absent from the namespace."""
    help_text = _plain(field.metadata["help"])
    options: dict[str, Any] = dict(dest=field.name, default=argparse.SUPPRESS)
    if isinstance(field.default, bool):
        options["action"] = "store_false" if field.default else "store_true"
        if field.default:
            help_text = f"turn off (on by default): {help_text}"
    else:
        options["type"] = str if field.default is None else type(field.default)
        options["metavar"] = field.metadata.get("metavar")
        if field.name in CHOICES:
            options["choices"] = CHOICES[field.name]
            options["metavar"] = "{" + ",".join(CHOICES[field.name]) + "}"
        if field.default is not None:
            help_text += f" (default: {field.default})"
    parser.add_argument(flag_name(field), *field.metadata.get("aliases", ()), help=help_text,
                        **options)


def build_parser() -> argparse.ArgumentParser:
    """The ``train`` argument parser.

    Returns:
        An ``argparse.ArgumentParser`` with one flag per :class:`TrainConfig` field (on/off
        switches that default to on as ``--no-NAME``) plus ``--no-progress``. Flags that are not
        given are absent from the parsed namespace (the defaults are :class:`TrainConfig`'s).
    """
    p = argparse.ArgumentParser(
        prog="eqx-mp-train",
        description=(
            "Train an equivariant message-passing potential (energies + forces = -dE/dx) on the "
            "embedded Cu/Pt icosahedron data set or your own file, report test MAEs against the "
            "mean-energy / zero-force baseline, and save the model and a parity plot."
        ),
        epilog=(
            "Evaluate a saved model: eqx-mp-train predict --model DIR [--data FILE] "
            "(see 'eqx-mp-train predict --help'). Units: Å, eV, eV/Å."
        ),
    )
    model = p.add_argument_group("model (the keyword arguments of eqx_mp.models.Potential)")
    training = p.add_argument_group("training")
    for field in dataclasses.fields(TrainConfig):
        _add_config_flag(model if field.name in MODEL_FIELDS else training, field)
    training.add_argument("--no-progress", dest="progress", action="store_false",
                          help="hide the progress bar")
    training.add_argument("--resume", metavar="OUTPUT", default=None,
                          help="continue the run in OUTPUT from its checkpoint.eqx (or, if that "
                          "does not verify, checkpoint.prev.eqx) with its saved configuration; "
                          "only " + ", ".join(flag_name(f) for f in dataclasses.fields(TrainConfig)
                                              if f.name in RESUMABLE_CHANGES)
                          + " may be given with it")
    return p


def build_predict_parser() -> argparse.ArgumentParser:
    """The ``predict`` argument parser.

    Returns:
        An ``argparse.ArgumentParser`` with ``--model``, ``--data`` and ``--batch-size``.
    """
    p = argparse.ArgumentParser(
        prog="eqx-mp-train predict",
        description=(
            "Reload a saved model and print its energy and force MAEs (and the mean-energy / "
            "zero-force baseline). Without --data, the run's own test split is evaluated, "
            "reproducing the numbers printed after training."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", default="runs/latest", metavar="DIR",
                   help="run directory (with model.eqx and run.json) or a .eqx file")
    p.add_argument("--data", default=None, metavar="FILE",
                   help="evaluate on every frame of this file instead of the run's test split")
    p.add_argument("--batch-size", type=int, default=50, help="frames per compiled call")
    return p


def _predict_main(argv: list[str]) -> dict[str, float]:
    args = build_predict_parser().parse_args(argv)
    model_path = Path(args.model)
    path = model_file(model_path)
    if path.is_file() and io.read_header(path).get("float_dtype") == "float64":
        jax.config.update("jax_enable_x64", True)  # before anything is computed
    model = load_model(model_path)
    run_file = (model_path if model_path.is_dir() else model_path.parent) / RUN_FILE
    run = json.loads(run_file.read_text()) if run_file.is_file() else None
    if args.data is not None:
        dataset = load_dataset(args.data)
        if model.config.elements is not None:  # E0 frames of elements the model never saw
            first = dataset.atom_numbers[dataset.offsets[:-1]]
            skip = (dataset.atom_counts == 1) & ~np.isin(first, model.config.elements)
            if skip.any():
                print(f"skipping {int(skip.sum())} isolated-atom frame(s) of elements the model "
                      f"does not know: {sorted(set(first[skip].tolist()))}")
                dataset = dataset.subset(~skip)
        label = f"{args.data} ({dataset.num_frames} frames)"
        baseline = run["baseline"] if run else baseline_predictor(dataset)
    else:
        if run is None:
            raise FileNotFoundError(
                f"{run_file} not found: pass --data FILE to evaluate a bare model file"
            )
        dataset = load_dataset(run["data"])
        # With isolated-atom E0s the splits index the other frames.
        dataset = e0_frames(run["config"].get("e0s", "average"), dataset)[2]
        test = np.asarray(run["splits"]["test"], np.int64)
        if not len(test):
            raise SystemExit(f"{run_file}: the run has no test split (--num-test 0); pass "
                             f"--data FILE to evaluate the model")
        dataset = dataset.subset(test)
        label = "test"
        baseline = run["baseline"]
    res = evaluate(model, dataset, batch_size=args.batch_size)
    metrics = {k: v for k, v in res.items() if isinstance(v, float)}
    metrics.update(baseline_metrics(baseline, dataset))
    print(format_metrics(metrics, label))
    by_type = metrics_by_config_type(dataset, res)
    if by_type:
        print(f"{label} errors per config_type:\n{format_config_types(by_type)}")
    return metrics


def _config(args: dict[str, Any]) -> tuple[TrainConfig, bool]:
    """The run's configuration: from the flags, or from the checkpoint of ``--resume``."""
    resume = args.pop("resume", None)
    if resume is None:
        # Flags given explicitly win over the preset's model fields.
        return TrainConfig.from_preset(args.pop("preset", TrainConfig.preset), **args), False
    fixed = sorted(set(args) - set(RESUMABLE_CHANGES))
    if fixed:
        flags = {f.name: flag_name(f) for f in dataclasses.fields(TrainConfig)}
        raise SystemExit(f"eqx-mp-train: --resume continues a run with its saved configuration; "
                         f"{', '.join(flags[k] for k in fixed)} cannot be changed")
    config = read_checkpoint_config(resume)
    return dataclasses.replace(config, output=resume, **args), True


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m eqx_mp.train``, ``eqx-mp-train``).

    Arguments:
        argv: Arguments without the program name (default: ``sys.argv[1:]``). A first
            argument ``predict`` selects evaluation of a saved model; ``train`` (optional)
            selects training.

    Returns:
        The process exit status (0 on success).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"]:
        _predict_main(argv[1:])
        return 0
    if argv[:1] == ["train"]:
        argv = argv[1:]
    args = vars(build_parser().parse_args(argv))
    progress = args.pop("progress", True)
    config, resume = _config(args)
    if config.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dataset = load_dataset(config.data)  # validated before anything is compiled
    _, isolated, rest = e0_frames(config.e0s, dataset)
    if isolated is not None:
        print(f"e0s: {isolated.num_frames} isolated-atom frames (left out of training)",
              flush=True)
    sizes = sorted({int(dataset.atom_counts.min()), int(dataset.atom_counts.max())})
    periodic = int(dataset.is_periodic.sum())
    print(
        f"data: {dataset.source} ({dataset.num_frames} frames, {'-'.join(map(str, sizes))} atoms"
        + (f", {periodic} periodic" if periodic else "") + "); "
        f"train/valid/test = "
        f"{rest.num_frames - config.num_valid - config.num_test}/"
        f"{config.num_valid}/{config.num_test}; time budget {config.time_budget:g} s"
        + (f"; resuming {config.output}" if resume else ""),
        flush=True,
    )
    result = train(config, dataset, progress=progress, resume=resume)
    m = result.metrics
    print(f"trained {m['epochs']} epochs ({m['steps']} steps, {m['nonfinite_steps']} skipped as "
          f"non-finite) in {m['train_seconds']:.1f} s; best validation epoch {m['best_epoch']}")
    if "force_mae" in m:
        print(format_metrics(m, "test"))
        if "config_types" in m:
            print(f"test errors per config_type:\n{format_config_types(m['config_types'])}")
    else:
        print("no test frames (--num-test 0): evaluate with predict --data FILE")
    print(f"saved {Path(config.output) / MODEL_FILE}, {RUN_FILE}, {LOG_FILE}"
          + (f", {PLOT_FILE}" if config.plot and "force_mae" in m else ""))
    return 0
