"""The epoch loop: compiled steps, validation, model selection, checkpoints, non-finite steps.

:class:`EpochLoop` runs the epochs of one process, a fresh run or a resumed one; everything it
changes lives in its :class:`~eqx_mp.train.state.Checkpoint` (arrays) and
:class:`~eqx_mp.train.state.Progress` (counters, data order, clock, history), which it writes
after every epoch and every ``checkpoint_every`` seconds.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import parallel
from ..batching import GraphBatch
from ..models import Potential
from .batches import RunData, make_batches
from .checkpoint import write_checkpoint
from .config import TrainConfig
from .evaluate import evaluate
from .optim import make_optimizer, make_schedule, plateau_update, schedule_count, stage_rate
from .report import append_log, progress_bar, rewrite_log, update_bar
from .state import Checkpoint, Progress
from .step import LossWeights, make_step

__all__ = ["EpochLoop", "selection_score"]

#: Restores of the last good state after which a run gives up (learning rate / 2**10).
_MAX_RESTORES = 10


def selection_score(metrics: dict[str, Any], weights: LossWeights) -> float:
    """The model selection score: the loss's form with MAEs in place of RMSEs (lower is better).

    Arguments:
        metrics: Validation metrics (:func:`~eqx_mp.train.evaluate.error_metrics`).
        weights: The loss weights.

    Returns:
        ``(n MAE_E/atom)² + w_F MAE_F² (+ w_S MAE_S²)``.
    """
    score = (weights.atoms * metrics["energy_per_atom_mae"]) ** 2
    score += weights.force * metrics["force_mae"] ** 2
    if weights.stress and "stress_mae" in metrics:
        score += weights.stress * metrics["stress_mae"] ** 2
    return float(score)


class EpochLoop:
    """The epoch loop of one process (a fresh run or a resumed one).

    Arguments:
        config: The run configuration.
        data: The run's data (:func:`~eqx_mp.train.batches.prepare`).
        ckpt: The arrays to start from.
        progress: The counters to start from.
        show_progress: Show a tqdm bar.
        save: Write checkpoints and ``log.jsonl``.

    :meth:`run` returns the final ``(checkpoint, progress)``.
    """

    def __init__(self, config: TrainConfig, data: RunData, ckpt: Checkpoint, progress: Progress,
                 *, show_progress: bool, save: bool):
        self.config, self.data, self.progress, self.save = config, data, progress, save
        self.weights = LossWeights(data.mean_atoms, float(config.force_weight),
                                   float(config.stress_weight)
                                   if data.sets["train"].stresses is not None else 0.0)
        self.step_fn = make_step(make_optimizer(config), self.weights, float(config.ema_decay),
                                 config.nonfinite_patience, data.train_layout.uniform_atoms,
                                 data.mesh)
        self.schedule = make_schedule(config, config.epochs)  # counted in epochs
        self.dtype = jnp.dtype(config.dtype)
        self.ckpt = ckpt
        if data.mesh is not None:
            # Data parallelism: replicated parameters, a stack of per-device batches split over
            # the devices; each differentiates its share, one all-reduce adds the gradients.
            self.ckpt = parallel.replicate(ckpt, data.mesh)
        # Several CPU devices: wait for each step. Without the wait, training on two simulated
        # CPU devices (ethanol, batches of 2) died in XLA's CPU all-reduce in 3 runs of 3
        # (a rendezvous timeout: one device never arrived); with it, 3 of 3 finished.
        self.sync = data.mesh is not None and data.mesh.devices.flat[0].platform == "cpu"
        # The part every step changes, as the flat vectors the compiled step takes and returns
        # (TrainStep.pack; self.ckpt.state is stale); self.good_vectors: self.ckpt.good's.
        self.vectors = self.step_fn.pack(self.ckpt.state)
        self.good_vectors = self.step_fn.pack(self.ckpt.good)
        self.lr_dtype = self.ckpt.state.opt_state.hyperparams["learning_rate"].dtype
        self.t0 = time.perf_counter() - progress.elapsed
        self.compiled_here = False
        self.pending: list[Any] = []  # losses of steps not yet read back from the device
        self.last_checkpoint = time.perf_counter()
        self.bar = progress_bar(config, show_progress, progress.epoch)
        if save:
            rewrite_log(Path(config.output), progress.history)

    @property
    def state(self):
        """The current :class:`~eqx_mp.train.state.TrainState` (built from the vectors)."""
        return self.step_fn.unpack(self.vectors)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def out_of_time(self) -> bool:
        return bool(self.config.time_budget) and self.elapsed() > self.config.time_budget

    def run(self) -> tuple[Checkpoint, Progress]:
        p = self.progress
        while p.epoch < self.config.epochs:
            batches = make_batches(self.data.graphs["train"], p.order, self.data.train_layout,
                                   self.dtype)
            while p.step_in_epoch < len(batches):
                if self.out_of_time() and p.epoch_losses:
                    break  # out of time: finish this (partial) epoch with a validation pass
                self.step(batches[p.step_in_epoch], p.epoch + p.step_in_epoch / len(batches))
                since = time.perf_counter() - self.last_checkpoint
                if self.save and since >= self.config.checkpoint_every:
                    self.checkpoint()
            self.end_epoch()
            if self.out_of_time():
                break
        self.bar.close()
        p.finished = True
        if self.save:
            self.checkpoint()
        return self.ckpt.replace(state=self.state), p

    def step(self, batch: GraphBatch, epochs_done: float) -> None:
        p, c = self.progress, self.config
        count = schedule_count(epochs_done, c.epochs, budget=float(c.time_budget),
                               elapsed=self.elapsed(), compile_seconds=p.compile_seconds)
        if c.stage_two and p.stage == 1 and count >= c.stage_two * c.epochs:
            p.stage, p.plateau_scale, p.plateau_wait, p.plateau_best = 2, 1.0, 0, float("inf")
            print(f"stage two from epoch {p.epoch}: energy weight x{c.stage_two_energy_factor:g}, "
                  f"learning rate {c.stage_two_lr:g}", flush=True)
        p.lr = stage_rate(c, self.schedule(count), p.stage, p.plateau_scale)
        if self.data.mesh is not None:
            batch = parallel.shard_batch(batch, self.data.mesh)
        factor = float(c.stage_two_energy_factor) if p.stage == 2 else 1.0
        # NumPy scalars: a jnp conversion would wait for the previous step to finish.
        self.vectors, loss = self.step_fn.flat(self.vectors, self.good_vectors, batch,
                                              np.asarray(p.lr, self.lr_dtype),
                                              np.asarray(factor, self.lr_dtype))
        self.pending.append(loss)
        if self.sync:
            loss.block_until_ready()
        if not self.compiled_here:
            self.compiled_here = True
            if p.compile_seconds is None:
                loss.block_until_ready()
                p.compile_seconds = self.elapsed()
        p.steps += 1
        p.step_in_epoch += 1

    def read_losses(self) -> None:
        """Move the pending step losses from the device into the progress record."""
        self.progress.epoch_losses.extend(float(x) for x in jax.device_get(self.pending))
        self.pending = []

    def end_epoch(self) -> None:
        p, c = self.progress, self.config
        self.read_losses()
        state = self.state
        counters = jax.device_get(state.counters)
        p.epoch += 1
        losses = np.asarray(p.epoch_losses)
        finite = losses[np.isfinite(losses)]
        record: dict[str, Any] = {
            "epoch": p.epoch, "steps": p.steps, "lr": p.lr * float(counters.lr_factor),
            "train_loss": float(np.mean(finite)) if len(finite) else math.nan,
        }
        if len(self.data.splits["valid"]):
            val = self.evaluate(state.ema, "valid")
            record.update({f"valid_{k}": v for k, v in val.items() if isinstance(v, float)})
            score = selection_score(val, self.weights)
        else:
            score = record["train_loss"]
        if c.schedule == "plateau" and math.isfinite(score):
            p.plateau_best, p.plateau_wait, p.plateau_scale = plateau_update(
                score, p.plateau_best, p.plateau_wait, p.plateau_scale,
                patience=c.plateau_patience, factor=float(c.plateau_factor))
        record["stage"] = p.stage
        record["best"] = bool(score < p.best_score)  # False for NaN
        if record["best"]:
            p.best_score, p.best_epoch = float(score), p.epoch
            self.ckpt = self.ckpt.replace(best=state.ema)
        self.ckpt, self.good_vectors = self.ckpt.replace(good=state), self.vectors
        record.update(seconds=self.elapsed(), nonfinite_steps=int(counters.nonfinite),
                      restores=int(counters.restores))
        self.check_restores(record)
        p.history.append(record)
        # The next epoch's order before the checkpoint: a run resumed from it starts that epoch.
        p.next_epoch_order(len(self.data.splits["train"]), c.seed)
        if self.save:
            append_log(Path(c.output), record)
            self.checkpoint()
        update_bar(self.bar, c, record, self.elapsed())

    def check_restores(self, record: dict[str, Any]) -> None:
        """Report restores of this epoch; give up after too many."""
        before = self.progress.history[-1]["restores"] if self.progress.history else 0
        if record["restores"] > before:
            print(f"warning: epoch {record['epoch']}: {record['restores'] - before} time(s) "
                  f"{self.config.nonfinite_patience} non-finite steps in a row; restored the last "
                  f"good state and halved the learning rate (now {record['lr']:.3g})", flush=True)
        if record["restores"] > _MAX_RESTORES:
            raise FloatingPointError(
                f"{record['nonfinite_steps']} non-finite steps; the learning rate was halved "
                f"{record['restores']} times and the last good state restored, and the steps are "
                f"still not finite: check the data, lower --lr (now {self.config.lr}) or "
                f"--force-weight (now {self.config.force_weight})"
            )

    def evaluate(self, model: Potential, split: str) -> dict[str, Any]:
        return evaluate(model, self.data.sets[split], graphs=self.data.graphs[split],
                        layout=self.data.eval_layout)

    def checkpoint(self) -> None:
        self.read_losses()
        self.progress.elapsed = self.elapsed()
        self.ckpt = self.ckpt.replace(state=self.state)
        write_checkpoint(self.config.output, self.ckpt, self.progress)
        self.last_checkpoint = time.perf_counter()
