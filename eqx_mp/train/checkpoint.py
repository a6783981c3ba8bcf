"""Files of a run, all in the one eqx_mp format (:mod:`eqx_mp.io`): the model and checkpoints.

``model.eqx`` is the trained :class:`~eqx_mp.models.Potential`: one JSON header line (class,
hyper-parameters, float dtype, size and SHA-256), then the leaves written by
``eqx.tree_serialise_leaves``. ``checkpoint.eqx`` is a :class:`~eqx_mp.train.state.Checkpoint`
(current, last good and best weights, optimiser state) with the run's
:class:`~eqx_mp.train.state.Progress` as JSON metadata in the same header. Every write is atomic
(temporary file, then rename) and every load verifies the checksum, so a half-written or damaged
file is refused with a clear error; a refused checkpoint falls back to ``checkpoint.prev.eqx``,
the one it replaced.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import equinox as eqx

from .. import io
from ..models import Potential
from .config import TrainConfig
from .state import Checkpoint, Progress, all_finite

__all__ = [
    "MODEL_FILE",
    "model_file",
    "CHECKPOINT_FILE",
    "PREVIOUS_CHECKPOINT_FILE",
    "save_model",
    "load_model",
    "write_checkpoint",
    "read_checkpoint",
    "read_checkpoint_config",
]

MODEL_FILE = "model.eqx"
CHECKPOINT_FILE = "checkpoint.eqx"
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.eqx"


def _check_finite(tree: eqx.Module, what: str) -> None:
    if not bool(all_finite(tree)):
        raise FloatingPointError(f"refusing to save {what}: it holds NaN or infinite weights")


def model_file(path: str | os.PathLike[str]) -> Path:
    """The model file of a run directory (``DIR/model.eqx``), or ``path`` itself if a ``.eqx`` file.

    Arguments:
        path: A run directory or a ``.eqx`` file.

    Returns:
        The file path.
    """
    p = Path(path)
    return p / MODEL_FILE if p.suffix != ".eqx" else p


def save_model(path: str | os.PathLike[str], model: Potential) -> Path:
    """Save a potential with :func:`eqx_mp.io.save` (atomic write, checksummed).

    Arguments:
        path: A directory (the file ``model.eqx`` is written inside it) or a ``.eqx`` file path.
        model: The :class:`~eqx_mp.models.Potential` to save.

    Returns:
        The path of the written file.

    Raises:
        FloatingPointError: if a weight is NaN or infinite (nothing is written).
    """
    _check_finite(model, "the model")
    return io.save(model_file(path), model)


def load_model(path: str | os.PathLike[str]) -> Potential:
    """Load a potential written by :func:`save_model` (or by a training run).

    The skeleton is built with ``eqx.filter_eval_shape`` (no parameters are initialised), then
    the saved leaves are read into it.

    Arguments:
        path: A run directory containing ``model.eqx``, or the ``.eqx`` file itself.

    Returns:
        The :class:`~eqx_mp.models.Potential`, bit-identical to the saved one.

    Raises:
        FileNotFoundError: if there is no model file at ``path``.
        ValueError: if the file is not an eqx_mp file, is truncated or corrupt, or holds another
            class than a ``Potential``.
    """
    p = model_file(path)
    if not p.is_file():
        raise FileNotFoundError(f"no saved model at {p} (expected a run directory or a .eqx file)")
    model = io.load(p)
    if not isinstance(model, Potential):
        raise ValueError(f"{p} holds a {type(model).__name__}, not a Potential")
    return model


def _checkpoint_paths(output: str | os.PathLike[str]) -> tuple[Path, Path]:
    out = Path(output)
    return out / CHECKPOINT_FILE, out / PREVIOUS_CHECKPOINT_FILE


def write_checkpoint(output: str | os.PathLike[str], ckpt: Checkpoint, progress: Progress) -> Path:
    """Write ``OUTPUT/checkpoint.eqx`` atomically; the one it replaces becomes the previous one.

    Arguments:
        output: The run directory.
        ckpt: The arrays of the run.
        progress: The rest of the run's state (stored as JSON in the header).

    Returns:
        The path of the new checkpoint.

    Raises:
        FloatingPointError: if a weight is NaN or infinite (nothing is written).
    """
    _check_finite(ckpt, "a checkpoint")
    path, previous = _checkpoint_paths(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.replace(path, previous)
    return io.save(path, ckpt, metadata=dataclasses.asdict(progress))


def read_checkpoint(output: str | os.PathLike[str]) -> tuple[Checkpoint, Progress, list[str]]:
    """Load the newest checkpoint of a run that verifies; fall back to the previous one.

    Temporary files of interrupted writes are removed.

    Arguments:
        output: The run directory.

    Returns:
        ``(checkpoint, progress, problems)``; ``problems`` describes each newer file that was
        refused (missing, truncated, corrupt), empty if the newest one loaded.

    Raises:
        FileNotFoundError: if ``output`` holds neither ``checkpoint.eqx`` nor
            ``checkpoint.prev.eqx``.
        ValueError: if no checkpoint verifies (the message lists each file's problem).
    """
    for partial in Path(output).glob(f".{CHECKPOINT_FILE}.*.tmp"):
        partial.unlink()  # a write that was interrupted (io.save's temporary file)
    problems = []
    for path in _checkpoint_paths(output):
        if not path.exists():
            problems.append(f"{path}: missing")
            continue
        try:
            header = io.read_header(path)
            ckpt = io.load(path, cls=Checkpoint)
        except ValueError as err:
            problems.append(str(err))
            continue
        return ckpt, Progress(**header["metadata"]), problems
    if all(p.endswith(": missing") for p in problems):
        raise FileNotFoundError(f"{output}: no checkpoint to resume from ({CHECKPOINT_FILE})")
    raise ValueError("no checkpoint of the run verifies:\n  " + "\n  ".join(problems))


def read_checkpoint_config(output: str | os.PathLike[str]) -> TrainConfig:
    """The configuration a run was started with, from its newest verifying checkpoint header.

    Arguments:
        output: The run directory.

    Returns:
        The :class:`TrainConfig` (its ``output`` is the run directory as saved).

    Raises:
        FileNotFoundError, ValueError: as :func:`read_checkpoint`.
    """
    problems = []
    for path in _checkpoint_paths(output):
        try:
            return TrainConfig(**io.read_header(path)["hyperparams"]["config"])
        except (FileNotFoundError, ValueError) as err:
            problems.append(str(err))
    if all("no saved module" in p for p in problems):
        raise FileNotFoundError(f"{output}: no checkpoint to resume from ({CHECKPOINT_FILE})")
    raise ValueError("no checkpoint of the run verifies:\n  " + "\n  ".join(problems))
