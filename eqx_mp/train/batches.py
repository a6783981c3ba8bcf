"""The padded batches of a run: one fixed capacity per run, so each compiled function has one shape.

Frames of any size (and periodic frames) become :class:`~eqx_mp.batching.Graph` objects with
their neighbour lists, and are packed greedily, in the epoch's order, into
:class:`~eqx_mp.batching.GraphBatch` objects of one :class:`Layout`: at most ``max_graphs``
graphs, ``max_nodes`` atoms and ``max_edges`` pairs. The capacities are the mean batch plus the
spread of single frames (``k · mean + (max - min)``), so almost every batch holds ``max_graphs``
frames, with little padding; for frames of one size they are exact (no padding at all). Every
batch of a run has the same shapes, so the training step compiles once and the evaluation once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..batching import Graph, GraphBatch, batch_graphs, graphs_from_dataset, pack_graphs, stack_batches
from ..data import Dataset

__all__ = ["Layout", "layout_for", "dataset_graphs", "make_batches", "compilations",
           "note_compilation"]

#: Times each compiled function of the training package was traced (= compiled), by name.
_TRACES: dict[str, int] = {}


def note_compilation(name: str) -> None:
    """Count one tracing (= compilation) of the jitted function ``name``; call it while tracing.

    Arguments:
        name: ``"train_step"`` or ``"predict"``.
    """
    _TRACES[name] = _TRACES.get(name, 0) + 1


def compilations() -> dict[str, int]:
    """How many times the training step and the prediction function were compiled so far.

    Returns:
        ``{"train_step": n, "predict": m}`` (counted while tracing, in this process).
    """
    return {"train_step": _TRACES.get("train_step", 0), "predict": _TRACES.get("predict", 0)}


@dataclasses.dataclass(frozen=True)
class Layout:
    """Capacities of the padded batches of one compiled function.

    Arguments:
        max_graphs: Graph slots per batch (per device).
        max_nodes: Atom slots per batch (per device).
        max_edges: Pair slots per batch (per device).
        devices: Batches per step, stacked along a leading axis (data parallelism); 1: none.
    """

    max_graphs: int
    max_nodes: int
    max_edges: int
    devices: int = 1


def _capacity(sizes: np.ndarray, slots: int) -> int:
    """Room for ``slots`` frames of average size plus the spread of one frame."""
    spread = int(sizes.max() - sizes.min())
    return max(int(sizes.max()), math.ceil(slots * float(sizes.mean()) - 1e-9) + spread, 1)


def layout_for(graphs: Sequence[Graph], batch_size: int, devices: int = 1) -> Layout:
    """The layout of batches of ``batch_size`` frames split over ``devices``.

    Arguments:
        graphs: The frames the batches are packed from (every one must fit).
        batch_size: Frames per step (a multiple of ``devices``).
        devices: Devices the step is split over.

    Returns:
        A :class:`Layout` with ``max_graphs = batch_size / devices``.
    """
    slots = batch_size // devices
    nodes = np.asarray([g.num_nodes for g in graphs])
    edges = np.asarray([g.num_edges for g in graphs])
    return Layout(slots, _capacity(nodes, slots), _capacity(edges, slots), devices)


def dataset_graphs(dataset: Dataset, cutoff: float) -> list[Graph]:
    """The frames of a data set as graphs with their neighbour lists.

    Periodic frames get the pairs within ``cutoff`` (periodic images included); isolated frames
    get all pairs, as :class:`~eqx_mp.models.Potential` uses for an isolated structure (pairs
    beyond the cutoff contribute zero through the smooth cutoff, and no neighbour-list library
    is needed).

    Arguments:
        dataset: Frames of any size, isolated or periodic.
        cutoff: The model's cutoff (Å).

    Returns:
        One :class:`~eqx_mp.batching.Graph` per frame, in order.
    """
    periodic = dataset.is_periodic
    if not periodic.any():
        return graphs_from_dataset(dataset, None)
    graphs: list[Graph | None] = [None] * dataset.num_frames
    for select, frame_cutoff in ((periodic, cutoff), (~periodic, None)):
        idx = np.flatnonzero(select)
        for i, g in zip(idx, graphs_from_dataset(dataset.subset(idx), frame_cutoff)):
            graphs[i] = g
    return graphs  # type: ignore[return-value]


def make_batches(
    graphs: Sequence[Graph], order: Sequence[int], layout: Layout, dtype: Any
) -> list[GraphBatch]:
    """Pack the frames, in ``order``, into batches of ``layout`` (numpy arrays).

    Arguments:
        graphs: The frames.
        order: Indices into ``graphs``; each is packed once.
        layout: The capacities.
        dtype: Float dtype of positions, forces, energies, cells and stresses.

    Returns:
        The batches; with ``layout.devices > 1`` each is ``devices`` batches stacked along a
        leading axis (the last one filled up with empty batches).
    """
    limits = dict(max_nodes=layout.max_nodes, max_edges=layout.max_edges,
                  max_graphs=layout.max_graphs)
    singles = list(batch_graphs(graphs, order=order, dtype=dtype, **limits))
    if layout.devices == 1:
        return singles
    empty = pack_graphs([], dtype=dtype, **limits)
    groups = [singles[i:i + layout.devices] for i in range(0, len(singles), layout.devices)]
    return [stack_batches(g + [empty] * (layout.devices - len(g))) for g in groups]
