"""The data side of a run (split, graphs, layouts) and its padded batches of one shape.

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
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from .. import parallel
from ..batching import (
    Graph,
    GraphBatch,
    batch_graphs,
    graphs_from_dataset,
    pack_graphs,
    stack_batches,
)
from ..data import Dataset, split_indices
from .config import TrainConfig

__all__ = ["Layout", "layout_for", "dataset_graphs", "make_batches", "RunData", "prepare",
           "fingerprint", "compilations", "note_compilation", "EVAL_BATCH_SIZE"]

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
        uniform_atoms: ``n`` if every frame is isolated with ``n`` atoms and only full batches
            are made (the last, partial one of an epoch is left out); then a batch is also
            ``max_graphs`` structures of ``n`` atoms, which the training step computes as such
            (:func:`~eqx_mp.models.batched_energy_and_forces`, constant pair indices: faster
            than the general padded path). 0 otherwise.
    """

    max_graphs: int
    max_nodes: int
    max_edges: int
    devices: int = 1
    uniform_atoms: int = 0


def _capacity(sizes: np.ndarray, slots: int) -> int:
    """Room for ``slots`` frames of average size plus the spread of one frame."""
    spread = int(sizes.max() - sizes.min())
    return max(int(sizes.max()), math.ceil(slots * float(sizes.mean()) - 1e-9) + spread, 1)


def layout_for(
    graphs: Sequence[Graph], batch_size: int, devices: int = 1, *, full_batches: bool = False
) -> Layout:
    """The layout of batches of ``batch_size`` frames split over ``devices``.

    Arguments:
        graphs: The frames the batches are packed from (every one must fit).
        batch_size: Frames per step (a multiple of ``devices``).
        devices: Devices the step is split over.
        full_batches: For training: if every frame is isolated and of one size, make only full
            batches (``Layout.uniform_atoms``), as the training loop did before padded batches.

    Returns:
        A :class:`Layout` with ``max_graphs = batch_size / devices``.
    """
    slots = batch_size // devices
    nodes = np.asarray([g.num_nodes for g in graphs])
    edges = np.asarray([g.num_edges for g in graphs])
    uniform = full_batches and len(set(nodes.tolist())) == 1 and all(g.cell is None for g in graphs)
    return Layout(slots, _capacity(nodes, slots), _capacity(edges, slots), devices,
                  int(nodes[0]) if uniform else 0)


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
    if layout.uniform_atoms:  # only full batches (and full groups of them)
        full = len(singles) - (int(singles[-1].graph_mask.sum()) < layout.max_graphs)
        singles = singles[:full - full % layout.devices]
    if layout.devices == 1:
        return singles
    empty = pack_graphs([], dtype=dtype, **limits)
    groups = [singles[i:i + layout.devices] for i in range(0, len(singles), layout.devices)]
    return [stack_batches(g + [empty] * (layout.devices - len(g))) for g in groups]


def _num_devices(config: TrainConfig) -> int:
    num = jax.device_count() if config.devices == 0 else config.devices
    if not 1 <= num <= jax.device_count():
        raise ValueError(
            f"devices must be between 0 (all) and the {jax.device_count()} visible device(s), "
            f"got {config.devices}"
        )
    if config.batch_size % num:
        raise ValueError(
            f"batch_size ({config.batch_size}) must be a multiple of the {num} devices "
            f"used for data-parallel training"
        )
    return num


def fingerprint(dataset: Dataset) -> str:
    """SHA-256 of a data set's arrays (a resumed run must train on the same data).

    Arguments:
        dataset: The data set.

    Returns:
        A hex digest.
    """
    h = hashlib.sha256()
    for a in (dataset.energies, dataset.atom_counts, dataset.atom_positions, dataset.atom_numbers,
              dataset.atom_forces, dataset.cells, dataset.pbc, dataset.stresses):
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


#: Frames per compiled call of the validation and test predictions.
EVAL_BATCH_SIZE = 50


@dataclasses.dataclass
class RunData:
    """The data side of a run: splits, their graphs, batch layouts, device mesh (:func:`prepare`).

    Arguments:
        splits: ``train``/``valid``/``test`` frame indices.
        sets: The three data sets.
        graphs: Their frames as graphs.
        train_layout: Capacities of the training batches.
        eval_layout: Capacities of the validation and test batches (one shape for both).
        mean_atoms: Mean atoms per training frame (the loss's energy scale).
        elements: Atomic numbers in the data set.
        mesh: The device mesh for data parallelism, or ``None``.
        fingerprint: :func:`fingerprint` of the data set.
    """

    splits: dict[str, np.ndarray]
    sets: dict[str, Dataset]
    graphs: dict[str, list[Graph]]
    train_layout: Layout
    eval_layout: Layout
    mean_atoms: float
    elements: tuple[int, ...]
    mesh: Any
    fingerprint: str


def prepare(config: TrainConfig, dataset: Dataset) -> RunData:
    """Split the data, build the graphs and the batch layouts (before anything is compiled).

    Arguments:
        config: The run configuration.
        dataset: The whole data set.

    Returns:
        The :class:`RunData`.

    Raises:
        ValueError: for a split larger than the data set, more devices than visible, a batch
            size that is not a multiple of the devices, or float64 without ``jax_enable_x64``.
    """
    if config.dtype == "float64" and not jax.config.read("jax_enable_x64"):
        raise ValueError("dtype='float64' needs double precision enabled before anything else: "
                         "jax.config.update('jax_enable_x64', True) (the command line does this)")
    num_devices = _num_devices(config)
    tr, va, te = split_indices(
        dataset.num_frames, num_valid=config.num_valid, num_test=config.num_test, seed=config.seed
    )
    if len(tr) < num_devices:
        raise ValueError(f"{len(tr)} training frames are fewer than the {num_devices} devices")
    splits = {"train": tr, "valid": va, "test": te}
    graphs = dataset_graphs(dataset, config.cutoff)
    # A batch of at most the training frames; a multiple of the devices (at most config's).
    batch_size = min(config.batch_size, len(tr))
    batch_size -= batch_size % num_devices
    train_graphs = [graphs[i] for i in tr]
    return RunData(
        splits=splits,
        sets={k: dataset.subset(v) for k, v in splits.items()},
        graphs={k: [graphs[i] for i in v] for k, v in splits.items()},
        train_layout=layout_for(train_graphs, batch_size, num_devices, full_batches=True),
        eval_layout=layout_for(graphs, min(EVAL_BATCH_SIZE, dataset.num_frames)),
        mean_atoms=float(np.mean(dataset.atom_counts[tr])),
        elements=tuple(int(z) for z in np.unique(dataset.atom_numbers)),
        mesh=parallel.make_mesh(num_devices) if num_devices > 1 else None,
        fingerprint=fingerprint(dataset),
    )
