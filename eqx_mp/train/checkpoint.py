"""Saving and loading trained models (``model.eqx``) in the one eqx_mp file format.

A trained model is written by :func:`eqx_mp.io.save`: one JSON header line (the class
``eqx_mp.models:Potential``, its hyper-parameters, the float dtype, a SHA-256), then the leaves
written by ``eqx.tree_serialise_leaves``. The write is atomic and the checksum is verified on
loading, so a half-written or damaged file is refused with a clear error.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import io
from ..models import Potential

__all__ = ["MODEL_FILE", "save_model", "load_model"]

MODEL_FILE = "model.eqx"


def _model_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p / MODEL_FILE if p.suffix != ".eqx" else p


def save_model(path: str | os.PathLike[str], model: Potential) -> Path:
    """Save a potential with :func:`eqx_mp.io.save` (atomic write, checksummed).

    Arguments:
        path: A directory (the file ``model.eqx`` is written inside it) or a ``.eqx`` file path.
        model: The :class:`~eqx_mp.models.Potential` to save.

    Returns:
        The path of the written file.
    """
    return io.save(_model_path(path), model)


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
    p = _model_path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no saved model at {p} (expected a run directory or a .eqx file)")
    model = io.load(p)
    if not isinstance(model, Potential):
        raise ValueError(f"{p} holds a {type(model).__name__}, not a Potential")
    return model
