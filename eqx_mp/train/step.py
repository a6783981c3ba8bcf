"""The loss and the compiled optimisation step (EMA update, non-finite steps skipped)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ..models import Potential, batched_energy_and_forces
from .config import TrainConfig
from .state import TrainState, all_finite

__all__ = ["loss_fn", "ema_update", "make_step"]


def loss_fn(
    model: Potential,
    positions: jax.Array,
    numbers: jax.Array,
    energies: jax.Array,
    forces: jax.Array,
    force_weight: float,
) -> jax.Array:
    """``mean((E - E_ref)**2) + force_weight * mean((F - F_ref)**2)`` over a batch.

    Arguments:
        model: The potential.
        positions: ``(B, N, 3)`` positions in Å.
        numbers: ``(B, N)`` atomic numbers.
        energies: ``(B,)`` reference energies in eV.
        forces: ``(B, N, 3)`` reference forces in eV/Å.
        force_weight: Weight of the force term (Å²).

    Returns:
        The scalar loss in eV².
    """
    e, f = batched_energy_and_forces(model, positions, numbers)
    return jnp.mean((e - energies) ** 2) + force_weight * jnp.mean((f - forces) ** 2)


def ema_update(ema: Potential, model: Potential, decay: float, num_updates: jax.Array) -> Potential:
    """One step of the exponential moving average of the weights, with a warm-up.

    The effective decay is ``min(decay, (1 + n) / (10 + n))`` after ``n`` earlier updates (as
    in ``torch_ema``, which MACE uses), so early weights are not over-weighted.

    Arguments:
        ema: The average so far.
        model: The new weights.
        decay: The EMA decay in ``[0, 1)``; ``0`` returns ``model``.
        num_updates: ``n``, a scalar integer array.

    Returns:
        The new average.
    """
    if decay == 0:
        return model
    n = num_updates.astype(model.energy_scale.dtype)
    d = jnp.minimum(decay, (1 + n) / (10 + n))
    params = eqx.filter(model, eqx.is_inexact_array)
    averaged = jax.tree_util.tree_map(lambda e, p: e + (1 - d) * (p - e),  # exact if p == e
                                      eqx.filter(ema, eqx.is_inexact_array), params)
    return eqx.combine(averaged, model)


def _frozen_e0s(grads: Potential) -> Potential:
    """The per-element reference energies are fixed: zero their gradient."""
    return eqx.tree_at(lambda m: m.element_energies, grads, replace_fn=jnp.zeros_like)


def make_step(optimizer: optax.GradientTransformation, config: TrainConfig) -> Callable[..., Any]:
    """One compiled Adam step on a batch, with the EMA update; non-finite steps change nothing.

    A step whose loss, gradient or updated weights hold a NaN or an infinity returns the state
    it was given (and ``ok = False``), so a bad batch cannot poison the weights.

    Arguments:
        optimizer: From :func:`~eqx_mp.train.optim.make_optimizer` (``inject_hyperparams``).
        config: The run configuration (loss weights, EMA decay).

    Returns:
        ``step(state, batch, lr, num_updates) -> (state, loss, ok)``, jitted with
        ``eqx.filter_jit``; ``batch = (positions, numbers, energies, forces)``.
    """
    force_weight, decay = float(config.force_weight), float(config.ema_decay)

    @eqx.filter_jit
    def step(state: TrainState, batch: tuple[jax.Array, ...], lr: jax.Array, num_updates: jax.Array):
        params = eqx.filter(state.model, eqx.is_inexact_array)
        loss, grads = eqx.filter_value_and_grad(loss_fn)(state.model, *batch, force_weight)
        grads = _frozen_e0s(grads)
        opt_state = state.opt_state
        opt_state.hyperparams["learning_rate"] = lr
        updates, opt_state = optimizer.update(grads, opt_state, params)
        model = eqx.apply_updates(state.model, updates)
        new = TrainState(model, ema_update(state.ema, model, decay, num_updates), opt_state)
        ok = jnp.isfinite(loss) & all_finite(grads) & all_finite(model)
        new_arrays, old_arrays = eqx.filter(new, eqx.is_array), eqx.filter(state, eqx.is_array)
        kept = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new_arrays, old_arrays)
        return eqx.combine(kept, new), loss, ok

    return step
