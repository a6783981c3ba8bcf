"""Training features: fitted reference energies, EMA weights, non-finite steps, configuration."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import TINY_MODEL

from eqx_mp.data import Dataset, load_dataset
from eqx_mp.train import TrainConfig, load_model, save_model, train
from eqx_mp.train.batches import dataset_graphs, layout_for, make_batches
from eqx_mp.train.checkpoint import read_checkpoint
from eqx_mp.train.e0s import fit_e0s, with_reference_energies
from eqx_mp.train.optim import make_optimizer, make_schedule
from eqx_mp.train.state import Checkpoint
from eqx_mp.train.step import LossWeights, ema_update, loss_fn, make_step


@pytest.fixture(scope="module")
def small() -> Dataset:
    return load_dataset().subset(np.arange(0, 2000, 50))  # 40 frames, all 8 trajectories


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))]


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_leaves(a), _leaves(b), strict=True))


def test_e0_fit_recovers_known_energies():
    """Energies built as a sum of known per-element energies (+ small noise) are fitted back."""
    rng = np.random.default_rng(0)
    e0 = {1: -13.6, 6: -1029.5, 8: -2041.2}
    numbers = rng.choice(list(e0), size=(60, 7))
    energies = np.vectorize(e0.get)(numbers).sum(1) + rng.normal(scale=1e-3, size=60)
    data = Dataset(energies=energies, atom_counts=np.full(60, 7), atom_positions=np.zeros((420, 3)),
                   atom_numbers=numbers.reshape(-1), atom_forces=np.zeros((420, 3)))
    fitted = fit_e0s(data, max_atomic_number=10)
    assert fitted.shape == (11,)
    for z, value in e0.items():
        assert fitted[z] == pytest.approx(value, abs=2e-3)
    assert np.all(fitted[[0, 2, 3, 4, 5, 7, 9, 10]] == 0)


def test_reference_energies_modes(small: Dataset):
    ckpt = Checkpoint(TrainConfig(**TINY_MODEL), [29, 78], key=jax.random.PRNGKey(0))
    fitted = with_reference_energies(ckpt.state.model, small, "average")
    np.testing.assert_array_equal(fitted.element_energies,
                                  fit_e0s(small, 78).astype(np.float32))
    zero = with_reference_energies(ckpt.state.model, small, "none")
    assert np.all(np.asarray(zero.element_energies) == 0)
    assert float(zero.energy_scale) == float(fitted.energy_scale) > 0
    with pytest.raises(ValueError, match=r"e0s must be one of \('average', 'isolated', 'none'\), got 'mean'"):
        with_reference_energies(ckpt.state.model, small, "mean")


def test_ema_update_matches_closed_form():
    """Three updates with decay 0.99: the warm-up decays are 1/10, 2/11, 3/12."""
    ckpt = Checkpoint(TrainConfig(**TINY_MODEL), [29, 78], key=jax.random.PRNGKey(0))
    model = ckpt.state.model
    shifted = [jax.tree_util.tree_map(lambda a, k=k: a + k if eqx.is_inexact_array(a) else a, model)
               for k in (1.0, 2.0, 3.0)]
    ema = model
    for n, m in enumerate(shifted):
        ema = ema_update(ema, m, 0.99, jnp.asarray(n))
    expected = 0.0
    for n, k in enumerate((1.0, 2.0, 3.0)):
        d = min(0.99, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * k
    for e, p in zip(_leaves(ema), _leaves(model), strict=True):
        np.testing.assert_allclose(e - p, expected, rtol=1e-5)
    assert ema_update(model, shifted[0], 0.0, jnp.asarray(5)) is shifted[0]


@pytest.fixture(scope="module")
def ema_run(small: Dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("ema")
    config = TrainConfig(output=str(out), time_budget=0, epochs=1, batch_size=8, num_valid=5,
                         num_test=5, plot=False, **TINY_MODEL)
    return config, train(config, small, progress=False), out


def test_saved_model_is_the_ema(ema_run):
    config, result, out = ema_run
    ckpt, progress, _ = read_checkpoint(out)
    saved = load_model(out)
    assert progress.best_epoch == 1 and int(ckpt.state.counters.updates) == 3  # 3 full batches
    assert _same(saved, ckpt.state.ema) and _same(saved, result.model)
    assert not _same(saved, ckpt.state.model)  # the raw weights differ from the average


def test_e0s_fixed_during_training(ema_run, small: Dataset):
    config, result, out = ema_run
    train_set = small.subset(result.splits["train"])
    np.testing.assert_array_equal(load_model(out).element_energies,
                                  fit_e0s(train_set, 78).astype(np.float32))


def test_nonfinite_step_changes_nothing_then_restores(small: Dataset):
    """A NaN batch: the step keeps its state and counts; the 2nd in a row restores ``good``."""
    config = TrainConfig(**TINY_MODEL)
    ckpt = Checkpoint(config, [29, 78], key=jax.random.PRNGKey(0))
    step = make_step(make_optimizer(config), LossWeights(13.0, 10.0, 0.0), 0.99,
                     nonfinite_patience=2)
    graphs = dataset_graphs(small.subset(range(4)), config.cutoff)
    batch = make_batches(graphs, range(4), layout_for(graphs, 4), np.float32)[0]
    bad = dataclasses.replace(batch, positions=batch.positions.copy())
    bad.positions[30, 1] = np.nan
    lr = jnp.asarray(1e-2, jnp.float32)
    trained, loss = step(ckpt.state, ckpt.good, batch, lr)
    assert np.isfinite(float(loss)) and not _same(trained.model, ckpt.state.model)
    assert int(trained.counters.updates) == 1 and int(trained.opt_state.count) == 1
    skipped, loss = step(trained, ckpt.good, bad, lr)
    assert np.isnan(float(loss))
    assert _same((skipped.model, skipped.ema, skipped.opt_state),
                 (trained.model, trained.ema, trained.opt_state))
    c = jax.device_get(skipped.counters)
    assert (int(c.updates), int(c.nonfinite), int(c.streak), int(c.restores)) == (1, 1, 1, 0)
    restored, _ = step(skipped, ckpt.good, bad, lr)  # 2 in a row: back to `good`, half the rate
    assert _same((restored.model, restored.ema, restored.opt_state),
                 (ckpt.good.model, ckpt.good.ema, ckpt.good.opt_state))
    c = jax.device_get(restored.counters)
    assert (int(c.nonfinite), int(c.streak), int(c.restores), float(c.lr_factor)) == (2, 0, 1, 0.5)


def test_flat_step_equals_the_step_on_states_and_checks_structure(small: Dataset):
    """``pack`` puts a state's arrays into one flat vector per dtype and ``unpack`` gives the
    state back exactly; the epoch loop's ``step.flat`` on packed states gives the same state as
    ``step`` on TrainState objects; packing a state of another model is refused."""
    config = TrainConfig(**TINY_MODEL)
    ckpt = Checkpoint(config, [29, 78], key=jax.random.PRNGKey(0))
    step = make_step(make_optimizer(config), LossWeights(13.0, 10.0, 0.0), 0.99, 3)
    graphs = dataset_graphs(small.subset(range(4)), config.cutoff)
    batches = make_batches(graphs, range(4), layout_for(graphs, 2), np.float32)
    lr = jnp.asarray(1e-2, jnp.float32)
    state, leaves, good = ckpt.state, step.pack(ckpt.state), step.pack(ckpt.good)
    arrays = jax.tree_util.tree_leaves(eqx.filter(state, eqx.is_array))
    dtypes = {jnp.dtype(a.dtype) for a in arrays}
    assert len(leaves) == len(dtypes) >= 2 and all(v.ndim == 1 for v in leaves)
    assert {jnp.dtype(v.dtype) for v in leaves} == dtypes
    assert sum(v.size for v in leaves) == sum(a.size for a in arrays)
    back = jax.tree_util.tree_leaves(eqx.filter(step.unpack(leaves), eqx.is_array))
    assert all(b.dtype == a.dtype and b.shape == a.shape and np.array_equal(b, a)
               for a, b in zip(arrays, back, strict=True))
    for batch in batches:
        state, loss = step(state, ckpt.good, batch, lr)
        leaves, flat_loss = step.flat(leaves, good, batch, np.asarray(1e-2, np.float32),
                                      np.asarray(1.0, np.float32))
        assert float(flat_loss) == float(loss)
    assert _same(step.unpack(leaves), state) and int(step.unpack(leaves).counters.updates) == 2
    other = Checkpoint(TrainConfig(**{**TINY_MODEL, "features": 8}), [29, 78],
                       key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="structure differs"):
        step.pack(other.state)


def test_learning_rate_schedule_equals_optax_exponential_decay():
    """The host-side schedule gives optax.exponential_decay's rates (decay and growth, clipped
    at both ends)."""
    import optax

    for lr, final in ((1e-2, 5e-4), (1e-3, 4e-3)):
        ours = make_schedule(TrainConfig(lr=lr, lr_final=final), 250.0)
        ref = optax.exponential_decay(lr, 250.0, final / lr, end_value=final)
        for progress in (0.0, 0.3, 17.0, 124.9, 249.99, 250.0, 1e4):
            assert ours(progress) == pytest.approx(float(ref(progress)), rel=2e-7)


def test_uniform_fast_path_equals_padded_path(small: Dataset):
    """Full batches of one-size clusters: the loss and its gradient computed as structures of 13
    atoms (constant pair indices) equal those of the general padded-batch path."""
    ckpt = Checkpoint(TrainConfig(**TINY_MODEL), [29, 78], key=jax.random.PRNGKey(0))
    model = with_reference_energies(ckpt.state.model, small, "average")
    graphs = dataset_graphs(small.subset(range(12)), 6.0)
    layout = layout_for(graphs, 4, full_batches=True)
    assert layout.uniform_atoms == 13 and layout.max_nodes == 4 * 13
    batches = make_batches(graphs, range(12), layout, np.float32)
    assert len(batches) == 3 and all(int(b.graph_mask.sum()) == 4 for b in batches)
    weights = LossWeights(13.0, 10.0, 0.0)
    grad = eqx.filter_jit(eqx.filter_value_and_grad(loss_fn))
    for batch in batches[:2]:
        (fast, g_fast), (padded, g_padded) = (grad(model, batch, weights, n) for n in (13, 0))
        np.testing.assert_allclose(float(fast), float(padded), rtol=1e-5)
        for a, b in zip(_leaves(g_fast), _leaves(g_padded), strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5 * np.abs(b).max())


@pytest.mark.parametrize("patience, restores", [(5, 0), (1, 2)])
def test_nan_batch_is_skipped_and_saved_model_finite(small, tmp_path, monkeypatch, patience, restores):
    """Every epoch, the training step is fed one batch with a NaN position (fault injection)."""
    from eqx_mp.train import loop

    def poisoned(*args, **kwargs):
        batches = make_batches(*args, **kwargs)
        positions = batches[2].positions.copy()
        positions[3, 0] = np.nan
        batches[2] = dataclasses.replace(batches[2], positions=positions)
        return batches

    monkeypatch.setattr(loop, "make_batches", poisoned)
    config = TrainConfig(output=str(tmp_path), time_budget=0, epochs=2, batch_size=5, num_valid=5,
                         num_test=5, plot=False, nonfinite_patience=patience, **TINY_MODEL)
    result = train(config, small, progress=False)
    assert result.metrics["nonfinite_steps"] == 2 and result.metrics["steps"] == 12
    assert result.metrics["restores"] == restores
    saved = load_model(tmp_path)
    assert all(np.all(np.isfinite(x)) for x in _leaves(saved))
    assert np.isfinite(result.metrics["force_mae"])
    assert result.history["nonfinite_steps"] == [1, 2]
    if restores:  # each restore halves the learning rate
        lr = np.asarray(result.history["lr"])
        assert lr[1] < 0.5 * lr[0]


def test_nan_weights_are_never_saved(small: Dataset, tmp_path):
    ckpt = Checkpoint(TrainConfig(**TINY_MODEL), [29, 78], key=jax.random.PRNGKey(0))
    broken = eqx.tree_at(lambda m: m.energy_scale, ckpt.state.model, jnp.asarray(jnp.nan))
    with pytest.raises(FloatingPointError, match=r"refusing to save the model: it holds NaN"):
        save_model(tmp_path, broken)
    assert not (tmp_path / "model.eqx").exists()


CONFIG_ERRORS = {
    "epochs": (dict(epochs=0), ValueError, r"epochs must be >= 1, got 0"),
    "batch_size": (dict(batch_size=0), ValueError, r"batch_size must be >= 1, got 0"),
    "num_valid": (dict(num_valid=-1), ValueError, r"num_valid must be >= 0, got -1"),
    "int type": (dict(epochs=2.5), TypeError, r"epochs must be an int, got float 2\.5"),
    "bool type": (dict(plot=1), TypeError, r"plot must be a bool, got 1"),
    "time_budget": (dict(time_budget=-1), ValueError, r"time_budget must be >= 0 seconds"),
    "lr": (dict(lr=0), ValueError, r"lr and lr_final must be > 0, got 0 and 0\.0005"),
    "force_weight": (dict(force_weight=-1), ValueError, r"force_weight must be >= 0, got -1"),
    "ema_decay": (dict(ema_decay=1.0), ValueError, r"ema_decay must be in \[0, 1\) \(0 = off\), got 1\.0"),
    "e0s": (dict(e0s="mean"), ValueError, r"e0s must be one of \['auto', 'average', 'isolated', 'none'\], got 'mean'"),
    "clip_grad": (dict(clip_grad=-1.0), ValueError, r"clip_grad must be >= 0 \(0 = no clipping\), got -1.0"),
    "dtype": (dict(dtype="float16"), ValueError, r"dtype must be one of \['float32', 'float64'\]"),
    "checkpoint_every": (dict(checkpoint_every=0), ValueError, r"checkpoint_every must be > 0"),
    "patience": (dict(nonfinite_patience=0), ValueError, r"nonfinite_patience must be >= 1, got 0"),
    "model features": (dict(features=0), ValueError, r"features must be >= 1, got 0"),
    "model cutoff": (dict(cutoff=-1.0), ValueError, r"cutoff must be > 0 \(Å\), got -1\.0"),
    "model radial basis": (dict(radial_basis="x"), ValueError, r"radial_basis must be one of"),
}


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_config_validates_itself(case):
    kwargs, exc, pattern = CONFIG_ERRORS[case]
    with pytest.raises(exc, match=pattern):
        TrainConfig(**kwargs)


def test_float64_needs_x64(small: Dataset):
    with pytest.raises(ValueError, match=r"dtype='float64' needs double precision enabled"):
        train(TrainConfig(dtype="float64", num_valid=5, num_test=5, **TINY_MODEL), small,
              progress=False, save=False)


def test_gradients_are_clipped_to_the_global_norm_before_adam():
    import optax

    params = {"a": jnp.zeros(3), "b": jnp.zeros(2)}
    grads = {"a": jnp.asarray([30.0, 40.0, 0.0]), "b": jnp.asarray([0.0, 0.0])}  # norm 50
    for clip, scale in ((10.0, 10.0 / 50.0), (0.0, 1.0), (100.0, 1.0)):
        opt = make_optimizer(TrainConfig(lr=0.1, clip_grad=clip, **TINY_MODEL))
        state = opt.init(params)
        assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.1)
        updates, _ = opt.update(grads, state, params)
        ref = optax.adam(0.1)
        want, _ = ref.update(jax.tree.map(lambda g: g * scale, grads), ref.init(params), params)
        for k in params:
            np.testing.assert_allclose(updates[k], want[k], rtol=1e-6)
    # Adam's first step is lr * sign(g): clipping shows in the moments, not the first update.
    opt = make_optimizer(TrainConfig(lr=0.1, clip_grad=10.0, **TINY_MODEL))
    state = opt.init(params)
    _, state = opt.update(grads, state, params)
    mu = state.inner_state[1][0].mu["a"]
    np.testing.assert_allclose(mu, 0.1 * np.asarray([6.0, 8.0, 0.0]), rtol=1e-6)  # (1-b1) g/5
