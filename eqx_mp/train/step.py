"""The loss and the compiled optimisation step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from ..models import Potential, batched_energy_and_forces

__all__ = ["loss_fn", "make_step"]


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


def make_step(optimizer: optax.GradientTransformation, force_weight: float) -> Callable[..., Any]:
    """One compiled Adam step on a batch.

    Arguments:
        optimizer: From :func:`~eqx_mp.train.optim.make_optimizer` (``inject_hyperparams``).
        force_weight: Weight of the force term of the loss.

    Returns:
        ``step(model, opt_state, positions, numbers, energies, forces, lr) -> (model,
        opt_state, loss)``, jitted with ``eqx.filter_jit``.
    """

    @eqx.filter_jit
    def step(model, opt_state, positions, numbers, energies, forces, lr):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(
            model, positions, numbers, energies, forces, force_weight
        )
        opt_state.hyperparams["learning_rate"] = lr
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step
