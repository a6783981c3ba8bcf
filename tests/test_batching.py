"""eqx_mp.batching: packing graphs into fixed-shape padded batches, and its errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqx_mp import batching, ops
from eqx_mp.data import load_dataset
from eqx_mp.neighbours import neighbour_list


def _graph(n: int, e: int, seed: int) -> batching.Graph:
    rng = np.random.default_rng(seed)
    dst, src, _ = neighbour_list(rng.normal(size=(n, 3)), None)
    keep = rng.permutation(len(dst))[:e]
    return batching.Graph(rng.normal(size=(n, 3)), rng.integers(1, 80, size=n), float(rng.normal()),
                          rng.normal(size=(n, 3)), dst[keep], src[keep])


def test_pack_graphs_layout_and_padding():
    g0, g1 = _graph(3, 4, 0), _graph(2, 2, 1)
    b = batching.pack_graphs([g0, g1], max_nodes=7, max_edges=9, max_graphs=3)
    assert (b.max_nodes, b.max_edges, b.max_graphs) == (7, 9, 3)
    assert b.positions.shape == (7, 3) and b.forces.shape == (7, 3) and b.numbers.shape == (7,)
    assert b.energies.shape == (3,) and b.dst_idx.shape == b.src_idx.shape == (9,)
    np.testing.assert_allclose(b.positions[:5], np.concatenate([g0.positions, g1.positions]), rtol=1e-6)
    np.testing.assert_array_equal(b.positions[5:], 0)
    np.testing.assert_array_equal(b.numbers, np.concatenate([g0.numbers, g1.numbers, [0, 0]]))
    np.testing.assert_allclose(b.forces[:5], np.concatenate([g0.forces, g1.forces]), rtol=1e-6)
    np.testing.assert_allclose(b.energies, [g0.energy, g1.energy, 0.0], rtol=1e-6)
    # Second graph's edges are offset by the first graph's 3 nodes, each graph's edges sorted by
    # destination (stable); padding edges point at N = 7.
    o0, o1 = (np.argsort(g.dst_idx, kind="stable") for g in (g0, g1))
    np.testing.assert_array_equal(b.dst_idx, np.concatenate([g0.dst_idx[o0], g1.dst_idx[o1] + 3, [7, 7, 7]]))
    np.testing.assert_array_equal(b.src_idx, np.concatenate([g0.src_idx[o0], g1.src_idx[o1] + 3, [7, 7, 7]]))
    assert np.all(np.diff(b.dst_idx) >= 0)
    np.testing.assert_array_equal(b.node_graph, [0, 0, 0, 1, 1, 3, 3])  # padding graph index G = 3
    np.testing.assert_array_equal(b.node_mask, [1, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(b.edge_mask, [1] * 6 + [0] * 3)
    np.testing.assert_array_equal(b.graph_mask, [1, 1, 0])
    assert b.dst_idx.dtype == b.src_idx.dtype == b.node_graph.dtype == np.int32
    assert b.positions.dtype == np.float32


def test_padded_sums_equal_per_graph_sums():
    """Indexed sums over a packed batch equal per-graph sums: padding contributes nothing."""
    graphs = [_graph(n, e, s) for s, (n, e) in enumerate([(4, 7), (2, 2), (5, 11), (3, 0)])]
    b = batching.pack_graphs(graphs, max_nodes=16, max_edges=24, max_graphs=5)
    # Per node: sum of the source positions of its incoming edges (e3x padding: dst = N dropped).
    gathered = ops.gather_src(jnp.asarray(b.positions), src_idx=jnp.asarray(b.src_idx))
    per_node = np.asarray(ops.indexed_sum(gathered, dst_idx=jnp.asarray(b.dst_idx), num_segments=16))
    per_graph = np.asarray(jax.ops.segment_sum(jnp.asarray(b.numbers), jnp.asarray(b.node_graph),
                                               num_segments=5))
    offset = 0
    for k, g in enumerate(graphs):
        ref = np.zeros((g.num_nodes, 3))
        np.add.at(ref, g.dst_idx, g.positions[g.src_idx])
        np.testing.assert_allclose(per_node[offset:offset + g.num_nodes], ref, rtol=1e-5, atol=1e-5)
        assert per_graph[k] == g.numbers.sum()
        offset += g.num_nodes
    np.testing.assert_array_equal(per_node[offset:], 0)
    assert per_graph[len(graphs)] == 0


def test_batch_graphs_fixed_shapes_no_recompilation():
    graphs = [_graph(n, min(e, n * (n - 1)), s)
              for s, (n, e) in enumerate(zip([2, 5, 3, 6, 4, 2, 7, 3, 5, 4], [2, 9, 6, 20, 3, 1, 30, 4, 8, 12]))]
    max_nodes, max_edges = batching.padding_limits(graphs, max_graphs=3)
    assert (max_nodes, max_edges) == (7 + 6 + 5, 30 + 20 + 12)
    order = np.random.default_rng(0).permutation(len(graphs))
    batches = list(batching.batch_graphs(graphs, max_nodes=12, max_edges=max_edges, max_graphs=3,
                                         order=order))
    # Every graph exactly once, in order; limits respected; greedy packing.
    packed = [int(n) for bt in batches for n in np.bincount(bt.node_graph[bt.node_mask], minlength=3)
              if n]
    assert packed == [graphs[i].num_nodes for i in order]
    assert sum(int(bt.graph_mask.sum()) for bt in batches) == len(graphs)
    counts = [int(bt.graph_mask.sum()) for bt in batches]
    starts = np.cumsum([0] + counts)
    for k, bt in enumerate(batches[:-1]):  # a batch closes only when the next graph cannot fit
        nxt = graphs[order[starts[k + 1]]]
        assert (counts[k] == 3 or bt.node_mask.sum() + nxt.num_nodes > 12
                or bt.edge_mask.sum() + nxt.num_edges > max_edges)
        assert bt.node_mask.sum() <= 12
    shapes = {tuple((np.shape(x), np.asarray(x).dtype) for x in jax.tree_util.tree_leaves(bt)) for bt in batches}
    assert len(shapes) == 1 and len(batches) > 2

    traces = []

    @jax.jit
    def energy_like(batch):
        traces.append(1)
        per_node = jnp.sum(batch.positions ** 2, axis=-1) * batch.node_mask
        return jax.ops.segment_sum(per_node, batch.node_graph, num_segments=batch.max_graphs)

    for bt in batches:
        out = energy_like(bt)
        np.testing.assert_allclose(
            out, np.bincount(bt.node_graph, np.sum(bt.positions.astype(np.float64) ** 2, -1),
                             minlength=4)[:3], rtol=1e-5)
    assert len(traces) == 1  # one trace (one compilation) for all batches


def test_stack_batches_and_dataset():
    ds = load_dataset()
    graphs = batching.graphs_from_dataset(ds.subset(np.arange(5)), cutoff=None)
    assert len(graphs) == 5 and graphs[0].num_nodes == 13 and graphs[0].num_edges == 156
    np.testing.assert_allclose(graphs[2].energy, ds.energies[2])
    b1 = batching.pack_graphs(graphs[:2], max_nodes=26, max_edges=312, max_graphs=2)
    b2 = batching.pack_graphs(graphs[2:3], max_nodes=26, max_edges=312, max_graphs=2)
    st = batching.stack_batches([b1, b2])
    assert st.positions.shape == (2, 26, 3) and st.dst_idx.shape == (2, 312)
    assert (st.max_nodes, st.max_edges, st.max_graphs) == (26, 312, 2)
    np.testing.assert_array_equal(st.graph_mask, [[1, 1], [1, 0]])
    with pytest.raises(ValueError, match="different"):
        batching.stack_batches([b1, batching.pack_graphs(graphs[:1], max_nodes=13, max_edges=156,
                                                         max_graphs=1)])
    with pytest.raises(ValueError, match="at least one"):
        batching.stack_batches([])


def test_batching_errors():
    g = _graph(4, 6, 0)
    with pytest.raises(ValueError, match=r"graph 1 has 4 nodes and 6 edges.*max_nodes=3"):
        list(batching.batch_graphs([_graph(2, 1, 1), g], max_nodes=3, max_edges=10, max_graphs=2))
    with pytest.raises(ValueError, match="do not fit"):
        batching.pack_graphs([g, g], max_nodes=8, max_edges=12, max_graphs=1)
    with pytest.raises(ValueError, match="max_edges must be an int >= 1"):
        batching.pack_graphs([g], max_nodes=8, max_edges=0, max_graphs=1)
    bad = batching.Graph(g.positions, g.numbers, 0.0, None, g.dst_idx, g.src_idx + 4)
    with pytest.raises(ValueError, match=r"graph 0: edge indices must be in 0..3"):
        batching.pack_graphs([bad], max_nodes=8, max_edges=12, max_graphs=1)
    with pytest.raises(ValueError, match="max_graphs must be >= 1"):
        batching.padding_limits([g], max_graphs=0)
