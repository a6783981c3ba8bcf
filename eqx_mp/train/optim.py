"""The optimiser and the learning-rate schedule of a run (optax, imported when first used, so
that loading and evaluating a saved model needs only the core dependencies)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optax

from .config import TrainConfig

__all__ = ["make_optimizer", "make_schedule", "schedule_count", "plateau_update", "stage_rate"]


def _clipped_adam(learning_rate: Any, max_norm: float) -> optax.GradientTransformation:
    import optax

    adam = optax.adam(learning_rate)
    return optax.chain(optax.clip_by_global_norm(max_norm), adam) if max_norm > 0 else adam


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Adam, after clipping the gradient to a global norm, whose learning rate is set before
    every step (``optax.inject_hyperparams``).

    Arguments:
        config: The run configuration (``lr`` is the initial rate, ``clip_grad`` the largest
            global norm of a gradient; 0 = no clipping).

    Returns:
        An optax transformation; its state's ``hyperparams["learning_rate"]`` is the rate.
    """
    import optax

    return optax.inject_hyperparams(_clipped_adam, static_args=("max_norm",))(
        learning_rate=config.lr, max_norm=float(config.clip_grad))


def make_schedule(config: TrainConfig, total: float) -> Callable[[float], float]:
    """Exponential decay from ``config.lr`` to ``config.lr_final`` over ``total`` units of progress.

    The values of ``optax.exponential_decay`` with ``end_value=lr_final``, computed on the host in
    Python floats: the epoch loop evaluates it before every step, and a JAX computation there
    would make the host wait for the previous step instead of queueing the next one.

    Arguments:
        config: The run configuration.
        total: Length of the run in the unit the schedule is evaluated in (epochs).

    Returns:
        ``progress -> learning rate``: ``lr * (lr_final / lr) ** (progress / total)``, held at
        ``lr_final`` past ``total`` (and at ``lr`` before 0).
    """
    lr, final = float(config.lr), float(config.lr_final)
    low, high = min(lr, final), max(lr, final)

    def schedule(progress: float) -> float:
        return min(max(lr * (final / lr) ** (max(progress, 0.0) / total), low), high)

    return schedule


def schedule_count(
    done: float, total: float, *, budget: float, elapsed: float, compile_seconds: float | None
) -> float:
    """Where the run is on its schedule: ``done``, or further on if the time budget runs out first.

    With a time budget, the fraction of the time left after the first step's compilation that
    has passed counts as the same fraction of ``total``, so the rate reaches ``lr_final`` when
    the budget ends even if the epochs would take longer.

    Arguments:
        done: Progress so far (epochs, fractional within an epoch).
        total: Length of the run (epochs).
        budget: The time budget in seconds (0: none; then this is ``done``).
        elapsed: Seconds of training so far.
        compile_seconds: Seconds the first step took (compilation), ``None`` before it ran.

    Returns:
        The progress to evaluate the schedule at.
    """
    if budget and compile_seconds is not None:
        frac = (elapsed - compile_seconds) / max(budget - compile_seconds, 1e-9)
        return max(done, frac * total)
    return done


def stage_rate(config: TrainConfig, scheduled: float, stage: int, plateau_scale: float) -> float:
    """The learning rate of a step, from the schedule, the stage and the plateau factor.

    Arguments:
        config: The run configuration.
        scheduled: The exponential schedule's rate at this point of the run.
        stage: 1, or 2 in stage two (``config.stage_two``).
        plateau_scale: The factor of the ``plateau`` schedule so far.

    Returns:
        Stage one: ``scheduled`` (``exponential``) or ``max(lr * plateau_scale, lr_final)``
        (``plateau``). Stage two: ``stage_two_lr``, times ``plateau_scale`` with ``plateau``
        (not below ``min(lr_final, stage_two_lr)``).
    """
    base = config.lr if stage == 1 else config.stage_two_lr
    if config.schedule == "plateau":
        return max(base * plateau_scale, min(config.lr_final, base))
    return scheduled if stage == 1 else base


def plateau_update(score: float, best: float, wait: int, scale: float, *, patience: int,
                   factor: float) -> tuple[float, int, float]:
    """One epoch of reduce-on-plateau bookkeeping.

    Arguments:
        score: This epoch's validation score (lower is better).
        best: The best score so far.
        wait: Epochs since it last improved.
        scale: The rate factor so far.
        patience: Epochs without improvement that trigger a reduction.
        factor: The factor of a reduction.

    Returns:
        The new ``(best, wait, scale)``.
    """
    if score < best:
        return score, 0, scale
    wait += 1
    if wait >= patience:
        return best, 0, scale * factor
    return best, wait, scale
