"""The loss and the compiled optimisation step (EMA update, non-finite steps skipped)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from .. import parallel
from ..batching import GraphBatch
from ..models import BatchPrediction, Potential, batched_energy_and_forces
from .batches import note_compilation
from .state import Counters, TrainState, all_finite

if TYPE_CHECKING:
    import optax

__all__ = ["LossWeights", "loss_fn", "ema_update", "make_step", "TrainStep"]


class LossWeights(NamedTuple):
    """The weights of the loss terms (static: part of the compiled step).

    Attributes:
        atoms: ``n``, the mean number of atoms per training structure; the energy term is
            ``n² · MSE(energy per atom)`` (= MSE of total energies for structures of one size).
        force: Weight of the force term (Å²).
        stress: Weight of the stress term (Å⁶); 0 skips computing stresses.
        energy: Factor on the energy term (MACE's stage two raises it).
    """

    atoms: float
    force: float
    stress: float
    energy: float = 1.0


def _predict(
    model: Potential, batch: GraphBatch, stress: bool, uniform_atoms: int
) -> BatchPrediction:
    """Predictions of one batch, or of a stack of batches (leading device axis)."""
    if uniform_atoms:  # full batches of isolated structures of one size (Layout.uniform_atoms)
        n, shape = uniform_atoms, batch.graph_mask.shape
        e, f = batched_energy_and_forces(model, batch.positions.reshape(-1, n, 3),
                                         batch.numbers.reshape(-1, n))
        return BatchPrediction(e.reshape(shape), f.reshape(batch.positions.shape), None, None)
    if batch.graph_mask.ndim == 2:
        return jax.vmap(lambda b: model.batch_predict(b, stress=stress))(batch)
    return model.batch_predict(batch, stress=stress)


def _atoms_per_graph(batch: GraphBatch) -> jax.Array:
    def count(b: GraphBatch) -> jax.Array:
        return jax.ops.segment_sum(b.node_mask.astype(b.positions.dtype), b.node_graph,
                                   num_segments=b.graph_mask.shape[-1])

    return jax.vmap(count)(batch) if batch.graph_mask.ndim == 2 else count(batch)


def _counts(batch: GraphBatch, stress: bool) -> jax.Array:
    """``[structures, force components, stress components]`` of the real entries of a batch."""
    dtype = batch.positions.dtype
    stresses = 6 * jnp.sum(batch.stress_mask & batch.graph_mask) if stress else 0
    return jnp.stack([jnp.sum(batch.graph_mask), 3 * jnp.sum(batch.node_mask),
                      stresses]).astype(dtype)


def _squared_errors(
    model: Potential, batch: GraphBatch, stress: bool, uniform_atoms: int
) -> jax.Array:
    """``[sum (ΔE/atom)², sum ΔF², sum Δσ²]`` over the real entries of a batch."""
    pred = _predict(model, batch, stress, uniform_atoms)
    per_atom = (pred.energies - batch.energies) / jnp.maximum(_atoms_per_graph(batch), 1)
    energy = jnp.sum(jnp.where(batch.graph_mask, per_atom**2, 0))
    force = jnp.sum(jnp.where(batch.node_mask[..., None], pred.forces - batch.forces, 0) ** 2)
    stresses = jnp.zeros_like(energy)
    if stress:
        mask = batch.stress_mask & batch.graph_mask
        stresses = jnp.sum(jnp.where(mask[..., None], pred.stresses - batch.stresses, 0) ** 2)
    return jnp.stack([energy, force, stresses])


def _weighted(sums: jax.Array, counts: jax.Array, weights: LossWeights,
              energy_factor: Any) -> jax.Array:
    """The loss from the sums of squared errors and the counts of the whole batch."""
    means = sums / jnp.maximum(counts, 1)
    loss = energy_factor * weights.energy * weights.atoms**2 * means[0] + weights.force * means[1]
    return loss + weights.stress * means[2] if weights.stress > 0 else loss


def loss_fn(
    model: Potential, batch: GraphBatch, weights: LossWeights, uniform_atoms: int = 0,
    energy_factor: Any = 1.0,
) -> jax.Array:
    """``n² MSE(E/atom) + w_F MSE(F) + w_S MSE(stress)`` over the real entries of a padded batch.

    Arguments:
        model: The potential.
        batch: A :class:`~eqx_mp.batching.GraphBatch` (or several stacked along a leading axis).
        weights: The :class:`LossWeights`.
        uniform_atoms: ``Layout.uniform_atoms`` of the batch (0: the general padded path).
        energy_factor: A further factor on the energy term (a traced scalar: stage two changes
            it without a new compilation).

    Returns:
        The scalar loss in eV².
    """
    stress = weights.stress > 0
    return _weighted(_squared_errors(model, batch, stress, uniform_atoms),
                     _counts(batch, stress), weights, energy_factor)


def _value_and_grad(weights: LossWeights, uniform_atoms: int, mesh: Any) -> Callable[..., Any]:
    """``(model, batch, energy_factor) -> (loss, grads)``; with a mesh, each device
    differentiates its share and one all-reduce adds them (the normalising counts are those of
    the global batch, so the loss and gradients equal one device's)."""
    if mesh is None:
        return eqx.filter_value_and_grad(
            lambda model, batch, factor: loss_fn(model, batch, weights, uniform_atoms, factor))
    axis, stress = mesh.axis_names[0], weights.stress > 0

    def share(model: Potential, batch: GraphBatch, factor: Any) -> jax.Array:
        counts = jax.lax.psum(_counts(batch, stress), axis)
        return _weighted(_squared_errors(model, batch, stress, uniform_atoms), counts, weights,
                         factor)

    return parallel.data_parallel_value_and_grad(share, mesh, axis)


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


def _select(cond: jax.Array, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` else ``b``, leaf by leaf (array leaves; the rest from ``a``)."""
    kept = jax.tree_util.tree_map(lambda x, y: jnp.where(cond, x, y),
                                  eqx.filter(a, eqx.is_array), eqx.filter(b, eqx.is_array))
    return eqx.combine(kept, a)


class TrainStep:
    """The compiled optimisation step, called on a :class:`~eqx_mp.train.state.TrainState` or on
    its array leaves (what the epoch loop does: no pytree flattening per step).

    ``eqx.filter_jit`` flattens and partitions every module argument on each call; for the
    three copies of the weights in a state plus the last good state, that is milliseconds per
    step, as much as the step itself for small molecules. The step is compiled once with
    ``jax.jit`` on the state's arrays concatenated into one flat vector per dtype; :meth:`pack`
    and :meth:`unpack` convert (the structure and the non-array parts are fixed by the first
    state packed). Inside the step the optimiser, the weight average and the non-finite checks
    then run as a few kernels over the whole vectors rather than a few per array (ethanol,
    batches of 2, one core: 2.8 -> 2.1 ms per step for ``small``, 6.7 -> 5.6 ms for
    ``medium``; the gradient alone takes 1.8 and 5.1 ms).

    Arguments:
        body: ``(state, good, batch, lr, energy_factor) -> (state, loss)`` on
            :class:`~eqx_mp.train.state.TrainState` objects (traced, not jitted).

    Call ``step(state, good, batch, lr, energy_factor=1.0) -> (state, loss)``, or
    ``step.flat(vectors, good_vectors, batch, lr, energy_factor) -> (vectors, loss)`` with
    ``vectors = step.pack(state)``.
    """

    def __init__(self, body: Callable[..., Any]):
        self._body = body
        self._treedef: Any = None
        self._static: Any = None
        self._layout: list[tuple[Any, list[tuple[int, int, tuple[int, ...]]]]] = []
        self._flat = jax.jit(self._run)
        self._pack = jax.jit(self._concatenate)
        self._unpack = jax.jit(self._split)

    def _run(self, vectors, good_vectors, batch, lr, energy_factor):
        state, loss = self._body(self.unpack(vectors), self.unpack(good_vectors), batch, lr,
                                 energy_factor)
        return self.pack(state), loss

    def _leaves(self, state: TrainState) -> list[Any]:
        arrays, static = eqx.partition(state, eqx.is_array)
        leaves, treedef = jax.tree_util.tree_flatten(arrays)
        if self._treedef is None:
            self._treedef, self._static = treedef, static
            groups: dict[Any, list[tuple[int, int, tuple[int, ...]]]] = {}
            offsets: dict[Any, int] = {}
            for i, leaf in enumerate(leaves):
                dtype = jnp.dtype(leaf.dtype)
                groups.setdefault(dtype, []).append((i, offsets.get(dtype, 0), tuple(leaf.shape)))
                offsets[dtype] = offsets.get(dtype, 0) + int(np.prod(leaf.shape, dtype=int))
            self._layout = list(groups.items())
        elif treedef != self._treedef or eqx.tree_equal(static, self._static) is not True:
            raise ValueError("TrainStep.pack: the state's structure differs from the first one "
                             "packed (another model or optimiser)")
        return leaves

    def _concatenate(self, leaves: Sequence[Any]) -> list[jax.Array]:
        return [jnp.concatenate([jnp.ravel(leaves[i]) for i, _, _ in group])
                for _, group in self._layout]

    def _split(self, vectors: Sequence[Any]) -> list[Any]:
        leaves: list[Any] = [None] * sum(len(group) for _, group in self._layout)
        for (_, group), vector in zip(self._layout, vectors):
            for i, offset, shape in group:
                size = int(np.prod(shape, dtype=int))
                leaves[i] = vector[offset:offset + size].reshape(shape)
        return leaves

    def pack(self, state: TrainState) -> list[jax.Array]:
        """The state's arrays as a few flat vectors, one per dtype (the first call fixes the
        structure and the layout).

        Arguments:
            state: A :class:`~eqx_mp.train.state.TrainState`.

        Returns:
            One 1-D array per dtype of the state's array leaves, each the concatenation of the
            raveled leaves of that dtype in ``jax.tree_util`` order.

        Raises:
            ValueError: for a state of another structure, or other non-array parts (e.g. another
                model configuration), than the first one packed.
        """
        return self._pack(self._leaves(state))  # jitted (inlined when traced in the step)

    def unpack(self, vectors: Sequence[Any]) -> TrainState:
        """The :class:`~eqx_mp.train.state.TrainState` of vectors from :meth:`pack` or
        :meth:`flat`.

        Arguments:
            vectors: The flat vectors.

        Returns:
            The state.

        Raises:
            ValueError: before any state was packed (the structure is not known yet).
        """
        if self._treedef is None:
            raise ValueError("TrainStep.unpack: pack a state first (it fixes the structure)")
        leaves = self._unpack(list(vectors))
        return eqx.combine(jax.tree_util.tree_unflatten(self._treedef, list(leaves)), self._static)

    def flat(self, vectors: Sequence[Any], good_vectors: Sequence[Any], batch: GraphBatch,
             lr: ArrayLike, energy_factor: ArrayLike) -> tuple[list[Any], jax.Array]:
        """One step on packed states (from :meth:`pack`).

        Arguments:
            vectors: The state's vectors.
            good_vectors: The last good state's vectors (restored after too many non-finite
                steps).
            batch: The batch.
            lr: Scalar learning rate (a NumPy scalar does not wait for the previous step).
            energy_factor: Scalar factor on the energy term.

        Returns:
            ``(vectors, loss)``: the new state's vectors and the loss (NaN for a skipped step).
        """
        return self._flat(list(vectors), list(good_vectors), batch, lr, energy_factor)

    def __call__(self, state: TrainState, good: TrainState, batch: GraphBatch, lr: jax.Array,
                 energy_factor: float = 1.0) -> tuple[TrainState, jax.Array]:
        """One step on :class:`~eqx_mp.train.state.TrainState` objects (packs and unpacks them:
        convenient, but slower per call than :meth:`flat`); returns ``(state, loss)``."""
        leaves, loss = self.flat(self.pack(state), self.pack(good), batch, lr,
                                 jnp.asarray(energy_factor, lr.dtype))
        return self.unpack(leaves), loss


def make_step(
    optimizer: optax.GradientTransformation, weights: LossWeights, ema_decay: float,
    nonfinite_patience: int, uniform_atoms: int = 0, mesh: Any = None,
) -> TrainStep:
    """One compiled Adam step on a batch, with the EMA update and the non-finite guard.

    A step whose loss, gradient or updated weights hold a NaN or an infinity keeps the state it
    was given and is counted; after ``nonfinite_patience`` such steps in a row, the weights,
    EMA and optimiser state of ``good`` are restored and the learning-rate factor is halved.
    All of it happens in the compiled function (:class:`~eqx_mp.train.state.Counters`), so the
    host never waits for a step.

    Arguments:
        optimizer: From :func:`~eqx_mp.train.optim.make_optimizer` (``inject_hyperparams``).
        weights: The loss weights.
        ema_decay: The EMA decay (0: off).
        nonfinite_patience: Non-finite steps in a row that trigger a restore.
        uniform_atoms: ``Layout.uniform_atoms`` of the batches (0: the general padded path).
        mesh: The device mesh of data-parallel training (batches stacked along a leading axis
            split over its first axis), or ``None`` (one device).

    Returns:
        A :class:`TrainStep`, ``step(state, good, batch, lr, energy_factor=1.0) -> (state,
        loss)`` (or ``step.flat`` on packed vectors): ``energy_factor`` multiplies the energy term
        (stage two), ``lr`` is the scheduled rate (times ``state.counters.lr_factor`` inside),
        ``batch`` a :class:`~eqx_mp.batching.GraphBatch` (stacked along a leading axis for
        several devices), ``loss`` NaN for a skipped step. Each compilation is counted in
        :func:`~eqx_mp.train.batches.compilations`.
    """

    value_and_grad = _value_and_grad(weights, uniform_atoms, mesh)

    def body(state: TrainState, good: TrainState, batch: GraphBatch, lr: jax.Array,
             energy_factor: jax.Array):
        note_compilation("train_step")
        c = state.counters
        params = eqx.filter(state.model, eqx.is_inexact_array)
        loss, grads = value_and_grad(state.model, batch, energy_factor)
        grads: Any = _frozen_e0s(grads)  # a Potential of gradients (optax: any pytree)
        opt_state = state.opt_state
        opt_state.hyperparams["learning_rate"] = (lr * c.lr_factor).astype(lr.dtype)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        model = eqx.apply_updates(state.model, updates)
        ema = ema_update(state.ema, model, ema_decay, c.updates)
        ok = jnp.isfinite(loss) & all_finite(grads) & all_finite(model) & all_finite(ema)
        streak = jnp.where(ok, 0, c.streak + 1)
        restore = streak >= nonfinite_patience
        counters = Counters(
            updates=c.updates + ok, nonfinite=c.nonfinite + ~ok,
            streak=jnp.where(restore, 0, streak), restores=c.restores + restore,
            lr_factor=jnp.where(restore, c.lr_factor / 2, c.lr_factor),
        )
        arrays = (model, ema, opt_state)
        kept = _select(ok, arrays, _select(restore, (good.model, good.ema, good.opt_state),
                                           (state.model, state.ema, state.opt_state)))
        new_model, new_ema, new_opt_state = kept
        return TrainState(new_model, new_ema, new_opt_state, counters), jnp.where(ok, loss, jnp.nan)

    return TrainStep(body)
