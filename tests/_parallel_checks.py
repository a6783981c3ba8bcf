"""Multi-device checks run by tests/test_parallel.py in a subprocess with 4 simulated CPU devices.

XLA_FLAGS=--xla_force_host_platform_device_count=4 must be set before JAX initialises, hence a
separate process. Each check prints one ``OK <name> <max difference>`` line; any failure raises.
References are the same computations on one device (the unsharded layer / an unsharded step).
"""

from __future__ import annotations

import functools
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from eqx_mp import batching, nn, parallel
from eqx_mp.neighbours import neighbour_list

NDEV = 4


def max_diff(a, b) -> float:
    la = jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_inexact_array))
    lb = jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_inexact_array))
    assert len(la) == len(lb) and la, (len(la), len(lb))
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(la, lb))


def assert_close(name: str, a, b, tol: float) -> None:
    d = max_diff(a, b)
    scale = max(float(jnp.max(jnp.abs(x))) for x in jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_inexact_array)))
    if not d <= tol * max(scale, 1.0):
        raise AssertionError(f"{name}: max difference {d:.3g} > {tol:g} * {max(scale, 1.0):.3g}")
    print(f"OK {name} {d:.3g}", flush=True)


# --------------------------------------------------------------------------- edge sharding


def check_edge_sharded() -> None:
    # Test data from numpy: every eager jax.random call would be one more compilation.
    mp = nn.MessagePass(4, 3, in_max_degree=1, basis_max_degree=1, in_parity=1,
                        include_pseudotensors=False, key=jax.random.key(0))
    n, e = 9, 43  # 43 edges: not a multiple of 4, exercises the padding path
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(n, 1, 4, 4)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(e, 1, 4, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(e, 1, 1, 4)), jnp.float32)
    dst_np = rng.integers(0, n + 1, size=e)  # includes padding edges (dst = n)
    dst, src = jnp.asarray(dst_np, jnp.int32), jnp.asarray(rng.integers(0, n, size=e), jnp.int32)
    mesh = parallel.make_mesh(axis_name="edges")
    assert mesh.shape["edges"] == NDEV

    def unsharded(m, x, b, w):
        return m(x, b, w, dst_idx=dst, src_idx=src, num_segments=n)

    def sharded(m, x, b, w):
        return parallel.edge_sharded_message_pass(
            m, x, b, w, dst_idx=dst, src_idx=src, num_segments=n, mesh=mesh, axis_name="edges"
        )

    weight = jnp.arange(1.0, 1.0 + n)[:, None, None, None]

    def value_and_grads(f):
        # One compilation per variant: the output and the gradients w.r.t. the layer's
        # parameters, the inputs, the basis and the weights.
        @eqx.filter_jit
        def run(args):
            def loss(args):
                out = f(*args)
                return jnp.sum(jnp.sin(out) * weight), out
            (_, out), grads = eqx.filter_value_and_grad(loss, has_aux=True)(args)
            return out, grads
        return run((mp, x, b, w))

    ref, g_ref = value_and_grads(unsharded)
    out, g_sh = value_and_grads(sharded)
    assert out.shape == ref.shape == (n, 1, 4, 4), (out.shape, ref.shape)
    assert len(out.sharding.device_set) == NDEV, out.sharding
    assert_close("edge_sharded_forward", out, ref, 1e-5)
    for name, a, r in zip(("params", "inputs", "basis", "weights"), g_sh, g_ref):
        assert float(jnp.max(jnp.abs(jax.tree_util.tree_leaves(eqx.filter(r, eqx.is_inexact_array))[0]))) > 0
        assert_close(f"edge_sharded_grad_{name}", a, r, 1e-5)

    # No padding needed (E a multiple of 4), no weights, sorted indices, eager (outside jit).
    order = np.argsort(dst_np, kind="stable")[:40]
    ds, ss, bs = dst[order], src[order], b[order]
    assert_close(
        "edge_sharded_forward_sorted_eager",
        parallel.edge_sharded_message_pass(mp, x, bs, dst_idx=ds, src_idx=ss, mesh=mesh,
                                           indices_are_sorted=True),
        jax.jit(lambda: mp(x, bs, dst_idx=ds, src_idx=ss, indices_are_sorted=True))(),
        1e-5,
    )


# --------------------------------------------------------------------------- data parallel


class ToyPotential(eqx.Module):
    """Embed -> MessagePass -> linear readout, on a packed GraphBatch (one packed batch)."""

    embed: nn.Embed
    mp: nn.MessagePass
    readout: jax.Array

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.embed = nn.Embed(80, 4, key=k1)
        self.mp = nn.MessagePass(4, 4, 0, 1, in_parity=1, max_degree=0,
                                 include_pseudotensors=False, key=k2)
        self.readout = jnp.asarray([0.5, -0.3, 0.2, 0.4])

    def energies(self, positions, batch: batching.GraphBatch):
        n = batch.max_nodes
        disp = positions[jnp.minimum(batch.src_idx, n - 1)] - positions[jnp.minimum(batch.dst_idx, n - 1)]
        basis = nn.basis(disp, max_degree=1, num=4, radial_fn=functools.partial(nn.basic_gaussian, limit=5.0),
                         cutoff_fn=functools.partial(nn.smooth_cutoff, cutoff=5.0))
        x = self.embed(batch.numbers)
        y = self.mp(x, basis, dst_idx=batch.dst_idx, src_idx=batch.src_idx, num_segments=n)
        atomic = jnp.tanh(x[:, 0, 0, :] + y[:, 0, 0, :]) @ self.readout
        return jax.ops.segment_sum(jnp.where(batch.node_mask, atomic, 0.0), batch.node_graph,
                                   num_segments=batch.max_graphs)


def squared_errors(model: ToyPotential, batch: batching.GraphBatch):
    """Sums of squared energy and force errors over a stacked (B, ...) batch's real entries."""

    def one(b):
        def total(p):
            e = model.energies(p, b)
            return jnp.sum(e), e

        (_, energies), grad = jax.value_and_grad(total, has_aux=True)(b.positions)
        forces = -grad
        de = jnp.where(b.graph_mask, energies - b.energies, 0.0)
        df = jnp.where(b.node_mask[:, None], forces - b.forces, 0.0)
        return jnp.sum(de ** 2), jnp.sum(df ** 2)

    se, sf = jax.vmap(one)(batch)
    return jnp.sum(se), jnp.sum(sf)


def counts(batch: batching.GraphBatch):
    return jnp.sum(batch.graph_mask), 3 * jnp.sum(batch.node_mask)


def loss_fn(model: ToyPotential, batch: batching.GraphBatch):
    """Masked energy + force MSE over a stacked (B, ...) batch: a mean over the *global* batch."""
    (se, sf), (n_graphs, n_comp) = squared_errors(model, batch), counts(batch)
    return se / n_graphs + sf / n_comp


def device_share(model: ToyPotential, batch: batching.GraphBatch):
    """One device's share of ``loss_fn`` (normalised by the global counts)."""
    (se, sf) = squared_errors(model, batch)
    n_graphs, n_comp = jax.lax.psum(jnp.stack(counts(batch)), "batch")
    return se / n_graphs + sf / n_comp


@eqx.filter_jit
def sgd_step(model, batch, lr):
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, batch)
    return eqx.apply_updates(model, jax.tree_util.tree_map(lambda g: -lr * g, grads)), loss


def make_graphs(num: int, seed: int) -> list[batching.Graph]:
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(num):
        n = int(rng.integers(3, 7))
        pos = rng.normal(size=(n, 3)) * 1.5
        dst, src, _ = neighbour_list(pos, 4.0)
        graphs.append(batching.Graph(pos, rng.choice([29, 78], size=n), float(rng.normal()),
                                     rng.normal(size=(n, 3)) * 0.3, dst, src))
    return graphs


def check_data_parallel(steps: int = 3) -> None:
    graphs = make_graphs(40, seed=0)
    max_nodes, max_edges = batching.padding_limits(graphs, max_graphs=3)
    packed = list(batching.batch_graphs(graphs, max_nodes=max_nodes, max_edges=max_edges, max_graphs=3))
    assert len(packed) >= NDEV * steps, (len(packed), max_nodes, max_edges)
    step_batches = [batching.stack_batches(packed[s * NDEV:(s + 1) * NDEV]) for s in range(steps)]
    model0 = ToyPotential(jax.random.key(3))
    lr = 0.05

    single = model0
    single_losses = []
    for b in step_batches:
        single, loss = sgd_step(single, jax.tree_util.tree_map(jnp.asarray, b), lr)
        single_losses.append(float(loss))

    mesh = parallel.make_mesh()  # all 4 devices, axis "batch"
    multi = parallel.replicate(model0, mesh)
    multi_losses = []
    for b in step_batches:
        sb = parallel.shard_batch(b, mesh)
        assert sb.positions.sharding.spec == jax.sharding.PartitionSpec("batch"), sb.positions.sharding
        assert len(sb.positions.addressable_shards) == NDEV
        assert sb.positions.addressable_shards[0].data.shape[0] == 1  # one packed batch per device
        multi, loss = sgd_step(multi, sb, lr)
        multi_losses.append(float(loss))
    leaf = jax.tree_util.tree_leaves(eqx.filter(multi, eqx.is_inexact_array))[0]
    assert len(leaf.sharding.device_set) == NDEV and leaf.sharding.is_fully_replicated, leaf.sharding
    assert single_losses[-1] < single_losses[0], single_losses  # it trains
    assert np.allclose(single_losses, multi_losses, rtol=1e-5), (single_losses, multi_losses)
    print(f"OK data_parallel_losses {single_losses} {multi_losses}", flush=True)
    assert max_diff(single, model0) > 1e-4  # parameters moved
    assert_close("data_parallel_params", multi, single, 1e-5)


def all_reduces(fn, model, batch) -> int:
    """All-reduce instructions of ``fn(model, batch)`` compiled."""
    params, static = eqx.partition(model, eqx.is_array)
    text = jax.jit(lambda p, b: fn(eqx.combine(p, static), b)).lower(params, batch).compile().as_text()
    return sum(" all-reduce(" in line or " all-reduce-start(" in line for line in text.splitlines())


def check_value_and_grad() -> None:
    """``data_parallel_value_and_grad`` = one device's value and gradient, with 2 all-reduces
    (the counts, then losses and gradients as one vector) where plain jit needs one per array."""
    graphs = make_graphs(40, seed=0)
    max_nodes, max_edges = batching.padding_limits(graphs, max_graphs=3)
    packed = list(batching.batch_graphs(graphs, max_nodes=max_nodes, max_edges=max_edges, max_graphs=3))
    batch = batching.stack_batches(packed[:2 * NDEV])  # two packed batches per device
    model = ToyPotential(jax.random.key(3))
    loss1, grads1 = eqx.filter_jit(eqx.filter_value_and_grad(loss_fn))(
        model, jax.tree_util.tree_map(jnp.asarray, batch))
    mesh = parallel.make_mesh()
    vg = parallel.data_parallel_value_and_grad(device_share, mesh)
    rep, sharded = parallel.replicate(model, mesh), parallel.shard_batch(batch, mesh)
    loss4, grads4 = eqx.filter_jit(vg)(rep, sharded)
    assert abs(float(loss4) - float(loss1)) <= 1e-5 * abs(float(loss1)), (loss4, loss1)
    assert max_diff(grads1, model) > 1e-3  # a real gradient
    assert_close("value_and_grad_grads", grads4, grads1, 1e-5)
    assert eqx.tree_equal(jax.tree_util.tree_structure(grads4),
                          jax.tree_util.tree_structure(grads1)) is True
    ours = all_reduces(vg, rep, sharded)
    plain = all_reduces(eqx.filter_value_and_grad(loss_fn), rep, sharded)
    assert ours == 2, ours
    print(f"OK value_and_grad_all_reduces {ours} (plain jit: {plain})", flush=True)


# --------------------------------------------------------------------------- training entry point


def check_train_devices() -> None:
    """``python -m eqx_mp.train --devices 0`` (all 4) trains to the same model as 1 device."""
    import tempfile

    from eqx_mp.data import load_dataset
    from eqx_mp.train import TrainConfig, load_model, main, train

    ds = load_dataset().subset(np.arange(24))
    flags = {"epochs": 1, "time_budget": 0, "batch_size": 8, "features": 4, "max_degree": 0,
             "num_basis": 4, "num_iterations": 1, "num_valid": 4, "num_test": 4, "plot": False}
    expect(ValueError, "multiple of the 3 devices", train, TrainConfig(**flags, devices=3), ds,
           progress=False, save=False)
    expect(ValueError, "between 0 (all) and the 4 visible", train, TrainConfig(**flags, devices=5),
           ds, progress=False, save=False)
    single = train(TrainConfig(**flags, devices=1), ds, progress=False, save=False)
    with tempfile.TemporaryDirectory() as tmp:
        data = f"{tmp}/small.npz"
        np.savez(data, positions=ds.positions, numbers=ds.numbers, energies=ds.energies,
                 forces=ds.forces)
        argv = ["--data", data, "--output", f"{tmp}/run", "--devices", "0", "--no-progress"]
        for k, v in flags.items():
            if k != "plot":
                argv += [f"--{k.replace('_', '-')}", str(v)]
        assert main(argv + ["--no-plot"]) == 0
        multi = load_model(f"{tmp}/run")
        import json
        from pathlib import Path

        run = json.loads(Path(f"{tmp}/run/run.json").read_text())
    assert run["config"]["devices"] == 0 and run["metrics"]["steps"] == 2, run["config"]
    assert abs(run["metrics"]["force_mae"] - single.metrics["force_mae"]) < 1e-5, (run["metrics"], single.metrics)
    assert_close("train_devices_params", multi, single.model, 1e-5)


# --------------------------------------------------------------------------- documented errors


def expect(exc: type, match: str, fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except exc as err:
        assert match in str(err), (match, str(err))
    else:
        raise AssertionError(f"{fn.__name__} did not raise {exc.__name__} ({match})")


def check_errors() -> None:
    from eqx_mp import ShapeError

    mesh = parallel.make_mesh()
    expect(ValueError, "between 1 and the 4 available", parallel.make_mesh, 5)
    expect(ValueError, "multiple of the 4 devices", parallel.shard_batch, np.zeros((6, 2)), mesh)
    expect(ShapeError, "leading (batch) axes differ", parallel.shard_batch,
           (np.zeros((4, 2)), np.zeros((8,))), mesh)
    expect(ValueError, "not an axis of the mesh", parallel.shard_batch, np.zeros((4,)), mesh, "edges")
    mp = nn.MessagePass(2, 2, 0, 0, in_parity=1, key=jax.random.key(0))
    x, b = jnp.zeros((3, 1, 1, 2)), jnp.zeros((4, 1, 1, 2))
    d, s = jnp.array([0, 1, 2, 3]), jnp.array([1, 2, 0, 0])
    call = parallel.edge_sharded_message_pass
    expect(ShapeError, "one graph's node features", call, mp, x[None], b, dst_idx=d, src_idx=s, mesh=mesh)
    expect(ShapeError, "E=4", call, mp, x, b[:3], dst_idx=d, src_idx=s, mesh=mesh)
    expect(ValueError, "dst_idx contains index 4", call, mp, x, b, dst_idx=d + 1, src_idx=s,
           num_segments=3, mesh=mesh)
    expect(ValueError, "not an axis of the mesh", call, mp, x, b, dst_idx=d, src_idx=s, mesh=mesh,
           axis_name="edges")
    expect(ValueError, "not an axis of the mesh", parallel.data_parallel_value_and_grad,
           device_share, mesh, "edges")
    print("OK errors", flush=True)


if __name__ == "__main__":
    assert jax.device_count() == NDEV, f"expected {NDEV} simulated devices, got {jax.devices()}"
    which = sys.argv[1:] or ["errors", "edge", "data", "train"]
    if "errors" in which:
        check_errors()
    if "edge" in which:
        check_edge_sharded()
    if "data" in which:
        check_data_parallel()
        check_value_and_grad()
    if "train" in which:
        check_train_devices()
    print("ALL OK", flush=True)
