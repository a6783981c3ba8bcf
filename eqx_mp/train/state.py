"""What a run carries from step to step, and what a checkpoint holds.

:class:`TrainState` is the part a step changes (raw weights, their exponential moving average,
the optimiser state). :class:`Checkpoint` adds the last good state (restored after a run of
non-finite steps) and the best model so far; its constructor builds a fresh run from the
configuration, which is also how :func:`eqx_mp.io.load` rebuilds its skeleton. :class:`Progress`
is the plain-JSON rest: counters, data order, random state, clock and history.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..models import Potential
from .config import TrainConfig
from .optim import make_optimizer

__all__ = ["Counters", "TrainState", "Checkpoint", "Progress", "cast_floats", "all_finite"]


def cast_floats(tree: Any, dtype: Any) -> Any:
    """Cast every floating-point array leaf of a pytree to ``dtype``.

    Arguments:
        tree: Any pytree (a model).
        dtype: The float dtype.

    Returns:
        The same pytree with floating leaves of ``dtype``.
    """
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, tree
    )


def all_finite(tree: Any) -> jax.Array:
    """``True`` if no floating-point leaf of ``tree`` holds a NaN or an infinity.

    Arguments:
        tree: Any pytree.

    Returns:
        A scalar boolean array (traceable).
    """
    leaves = [jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(tree)
              if eqx.is_inexact_array(a)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


class Counters(eqx.Module):
    """Scalar counters the compiled step keeps (so it never waits for the host).

    Arguments:
        updates: Steps that updated the weights (the EMA warm-up counts these).
        nonfinite: Steps skipped because their loss, gradient or update was not finite.
        streak: Skipped steps in a row, now.
        restores: Times the last good state was restored (after ``nonfinite_patience`` in a row).
        lr_factor: Factor on the scheduled learning rate (halved at every restore).
    """

    updates: Any
    nonfinite: Any
    streak: Any
    restores: Any
    lr_factor: Any

    @classmethod
    def zeros(cls, dtype: Any) -> Counters:
        """Counters of a new run (``lr_factor`` 1 in ``dtype``).

        Arguments:
            dtype: Float dtype of ``lr_factor``.

        Returns:
            The counters.
        """
        zero = jnp.zeros((), jnp.int32)
        return cls(zero, zero, zero, zero, jnp.ones((), dtype))


class TrainState(eqx.Module):
    """The arrays one optimisation step updates.

    Arguments:
        model: The raw (optimised) weights.
        ema: Their exponential moving average (equal to ``model`` when EMA is off).
        opt_state: The optax state (Adam moments, step count, learning rate).
        counters: The step's :class:`Counters`.
    """

    model: Potential
    ema: Potential
    opt_state: Any
    counters: Counters


class Checkpoint(eqx.Module):
    """Everything of a run that lives in arrays: current, last good and best state.

    Arguments:
        config: The run configuration (a :class:`TrainConfig` or its dict).
        elements: Atomic numbers of the data set (the model knows these).
        key: PRNG key of the model initialisation.

    The new run has ``state.model == state.ema == good.model == best``; the training loop sets
    the reference energies on it (:func:`eqx_mp.train.e0s.with_reference_energies`).
    """

    state: TrainState
    good: TrainState
    best: Potential
    config: TrainConfig = eqx.field(static=True)
    elements: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, config: TrainConfig | dict[str, Any], elements: Any, *, key: Any):
        self.config = config if isinstance(config, TrainConfig) else TrainConfig(**config)
        self.elements = tuple(sorted({int(z) for z in elements}))
        model = Potential(self.config.model_config(self.elements), key=key)
        model = cast_floats(model, jnp.dtype(self.config.dtype))
        opt_state = make_optimizer(self.config).init(eqx.filter(model, eqx.is_inexact_array))
        self.state = self.good = TrainState(model, model, opt_state,
                                            Counters.zeros(jnp.dtype(self.config.dtype)))
        self.best = model

    def replace(self, **arrays: Any) -> Checkpoint:
        """A copy with some of ``state``, ``good``, ``best`` replaced.

        Arguments:
            **arrays: New values of the fields ``state``, ``good`` and/or ``best``.

        Returns:
            The new checkpoint (the configuration is unchanged).
        """
        names = tuple(arrays)
        return eqx.tree_at(lambda c: tuple(getattr(c, n) for n in names), self,
                           tuple(arrays[n] for n in names))

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments (JSON) that rebuild this checkpoint's structure.

        Returns:
            ``{"config": dict, "elements": list}``.
        """
        return {"config": dataclasses.asdict(self.config), "elements": list(self.elements)}


@dataclasses.dataclass
class Progress:
    """The non-array part of a run in progress (stored as JSON in the checkpoint header).

    Arguments:
        data_fingerprint: SHA-256 of the data set's arrays (a resumed run must use the same).
        steps: Optimisation steps done, skipped ones included.
        lr: The scheduled learning rate of the last step (before ``Counters.lr_factor``).
        epoch: Epochs completed.
        step_in_epoch: Steps done in the current epoch.
        order: The current epoch's order of the training frames.
        rng_state: State of the numpy generator of the data order, after drawing ``order``.
        epoch_losses: Losses of the current epoch's steps so far (NaN for skipped steps).
        elapsed: Seconds of training so far (all processes of the run together).
        compile_seconds: Seconds of the run's first step (compilation), ``None`` before it.
        best_score: Validation score of ``Checkpoint.best`` (lower is better).
        best_epoch: Its epoch (0: the initial model).
        history: One record per finished epoch (the lines of ``log.jsonl``).
        finished: Whether the epoch loop has ended.
        stage: 1, or 2 after the switch to stage two (``TrainConfig.stage_two``).
        plateau_scale: Factor on the rate of the ``plateau`` schedule (reduced on plateaus).
        plateau_wait: Epochs since the validation score last improved (``plateau`` schedule).
        plateau_best: The best validation score of the current stage (``plateau`` schedule).
    """

    data_fingerprint: str
    steps: int = 0
    lr: float = 0.0
    epoch: int = 0
    step_in_epoch: int = 0
    order: list[int] = dataclasses.field(default_factory=list)
    rng_state: dict[str, Any] | None = None
    epoch_losses: list[float] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0
    compile_seconds: float | None = None
    best_score: float = float("inf")
    best_epoch: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    finished: bool = False
    stage: int = 1
    plateau_scale: float = 1.0
    plateau_wait: int = 0
    plateau_best: float = float("inf")

    def next_epoch_order(self, num_frames: int, seed: int) -> None:
        """Draw the next epoch's order of the training frames (and keep the generator state).

        Arguments:
            num_frames: Number of training frames.
            seed: The run's seed (used when no generator state is stored yet).
        """
        rng = np.random.default_rng(seed)
        if self.rng_state is not None:
            rng.bit_generator.state = self.rng_state
        self.order = [int(i) for i in rng.permutation(num_frames)]
        self.rng_state = dict(rng.bit_generator.state)
        self.step_in_epoch = 0
        self.epoch_losses = []
