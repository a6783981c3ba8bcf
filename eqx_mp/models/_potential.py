"""The :class:`Potential` model: one computation for single structures and padded batches."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Integer

from .. import nn, ops
from .._checks import is_concrete, typecheck
from ..batching import GraphBatch, one_graph_batch
from ..data import voigt
from ..neighbours import Neighbours, check_structure, neighbour_list
from ._blocks import RadialMLP, SelfProducts, filtered, zeros_like_arrays
from ._config import PotentialConfig

__all__ = ["BatchPrediction", "Potential", "batched_energy_and_forces"]


class BatchPrediction(NamedTuple):
    """What :meth:`Potential.batch_predict` returns (``G`` graphs, ``N`` node slots).

    Attributes:
        energies: ``(G,)`` total energies, eV (zero for padding graphs).
        forces: ``(N, 3)`` forces ``-dE/dx``, eV/Å (zero for padding nodes).
        stresses: ``(G, 6)`` stress ``(1/V) dE/dstrain``, eV/Å³, ASE sign and Voigt order
            ``xx yy zz yz xz xy``; zero for graphs without a cell (or ``None`` if not computed).
        atomic_energies: ``(N,)`` per-atom energies, eV (zero for padding nodes).
    """

    energies: Array
    forces: Array
    stresses: Array | None
    atomic_energies: Array | None


class Potential(eqx.Module):
    """An equivariant message-passing potential (e3x's MD17 example architecture).

    ``Embed`` turns atomic numbers into scalar features; ``basis`` (spherical harmonics times
    radial functions, smoothly cut off) encodes each pair's displacement; ``num_iterations``
    blocks of ``MessagePass`` + residual ``Dense -> silu -> Dense`` update the features (the last
    block outputs scalars only); a linear readout gives atomic energies, which are scaled,
    shifted per element and summed. Features carry no pseudotensors (parity axis of size 1).

    Arguments:
        config: A :class:`PotentialConfig`; or give its fields as keyword arguments
            (``Potential(features=16, cutoff=5.0, key=key)``), which override ``config``'s.
        zero_init_residual: Initialise the last ``Dense`` of each residual block to zero, as in
            e3x's example (then the initial energy does not depend on the positions). Only
            affects initialisation, so it is not a saved hyper-parameter.
        key: A JAX PRNG key for the initialisation.

    The fields ``element_energies`` (per-element energy shift, eV) and ``energy_scale`` (eV) are
    trainable arrays; training code typically initialises them from the data set statistics
    (``eqx.tree_at``) so that the network only learns the remainder.

    Example::

        >>> model = Potential(features=8, cutoff=4.0, key=jax.random.key(0))
        >>> atoms = ase.build.bulk("Cu", "fcc", a=3.61, cubic=True)
        >>> e, f, s = model.energy_forces_stress(jnp.asarray(atoms.positions),
        ...     jnp.asarray(atoms.numbers), jnp.asarray(atoms.cell.array))
    """

    embed: nn.Embed
    message_passes: tuple[nn.MessagePass, ...]
    dense_in: tuple[nn.Dense, ...]
    dense_out: tuple[nn.Dense, ...]
    readout: nn.Dense
    products: tuple[SelfProducts, ...]
    radial: RadialMLP | None
    element_energies: Float[Array, " Z"]
    energy_scale: Float[Array, ""]
    config: PotentialConfig = eqx.field(static=True)

    def __init__(
        self,
        config: PotentialConfig | None = None,
        *,
        key: Array,
        zero_init_residual: bool = False,
        **hyperparameters: Any,
    ):
        base = PotentialConfig() if config is None else config
        if "elements" in hyperparameters and hyperparameters["elements"] is not None:
            hyperparameters["elements"] = tuple(hyperparameters["elements"])
        try:
            cfg = dataclasses.replace(base, **hyperparameters)
        except TypeError as err:
            names = [f.name for f in dataclasses.fields(PotentialConfig)]
            raise TypeError(f"Potential: {err}; hyper-parameters are {names}") from err
        self.config = cfg
        t, f, lmax = cfg.num_iterations, cfg.features, cfg.max_degree
        keys = jax.random.split(key, 3 * t + 2)
        extra = jax.random.split(jax.random.fold_in(key, 1), t + 1)  # e3x preset: keys unchanged
        self.embed = nn.Embed(cfg.max_atomic_number + 1, f, key=keys[0])
        mps, d_in, d_out, prods = [], [], [], []
        in_degree = 0
        for i in range(t):
            out_degree = 0 if i == t - 1 else lmax
            # With products, the scalars of the last block also come from products of degree L.
            mp_degree = out_degree if cfg.correlation == 1 else lmax
            mps.append(nn.MessagePass(f, cfg.num_basis, in_degree, lmax, in_parity=1,
                                      max_degree=mp_degree, include_pseudotensors=False,
                                      key=keys[3 * i + 1]))
            if cfg.correlation > 1:
                prods.append(SelfProducts(f, lmax, cfg.correlation, cfg.max_atomic_number + 1,
                                          key=extra[i]))
            d_in.append(nn.Dense(f, f, out_degree, parity=1, key=keys[3 * i + 2]))
            dense = nn.Dense(f, f, out_degree, parity=1, key=keys[3 * i + 3])
            if zero_init_residual:  # start each residual block as the identity (e3x example)
                dense = zeros_like_arrays(dense)
            d_out.append(dense)
            in_degree = out_degree
        self.message_passes, self.dense_in, self.dense_out = tuple(mps), tuple(d_in), tuple(d_out)
        self.products = tuple(prods)
        self.radial = (RadialMLP(cfg.num_basis, cfg.radial_mlp, key=extra[-1])
                       if cfg.radial_mlp else None)
        self.readout = nn.Dense(f, 1, 0, parity=1, use_bias=False, key=keys[-1])
        self.element_energies = jnp.zeros((cfg.max_atomic_number + 1,), jnp.float32)
        self.energy_scale = jnp.ones((), jnp.float32)

    # ------------------------------------------------------------------ configuration
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable) that rebuild this model's structure.

        Returns:
            A dict for ``Potential(**hyperparameters, key=...)`` (``elements`` as a list).
        """
        hp = dataclasses.asdict(self.config)
        if hp["elements"] is not None:
            hp["elements"] = list(hp["elements"])
        return hp

    features = property(lambda self: self.config.features, doc="Feature channels ``F``.")
    max_degree = property(lambda self: self.config.max_degree, doc="Maximum degree ``L``.")
    num_basis = property(lambda self: self.config.num_basis, doc="Radial functions ``K``.")
    cutoff = property(lambda self: self.config.cutoff, doc="Cutoff radius (Å).")
    num_iterations = property(lambda self: self.config.num_iterations, doc="Blocks ``T``.")
    max_atomic_number = property(lambda self: self.config.max_atomic_number,
                                 doc="Largest atomic number the embedding accepts.")
    radial_basis = property(lambda self: self.config.radial_basis, doc="Radial functions.")
    correlation = property(lambda self: self.config.correlation, doc="Body order per block.")

    def check_numbers(self, numbers: Any) -> None:
        """Raise if a structure has an element the model does not know (host side).

        Arguments:
            numbers: ``(n,)`` atomic numbers (concrete values).

        Raises:
            ValueError: naming the unknown atomic number(s) and the known ones.
        """
        z = np.unique(np.asarray(numbers))
        known = self.config.elements
        bad = z[(z < 1) | (z > self.max_atomic_number)] if known is None else z[~np.isin(z, known)]
        if len(bad):
            what = (f"elements {list(known)}" if known is not None
                    else f"atomic numbers 1..{self.max_atomic_number}")
            raise ValueError(f"atomic number(s) {bad.tolist()} unknown to the model; it knows {what}")

    # ------------------------------------------------------------------ the network
    def _radial_fn(self) -> Any:
        fn = getattr(nn, self.radial_basis)
        if self.radial_basis.startswith("basic_") or self.radial_basis == "sinc":
            return functools.partial(fn, limit=self.cutoff)
        return fn

    def node_energies(
        self, numbers: Integer[Array, " N"], vectors: Float[Array, "E 3"],
        dst_idx: Integer[Array, " E"], src_idx: Integer[Array, " E"],
    ) -> Float[Array, " N"]:
        """Atomic energies from pair displacement vectors (the network itself).

        Arguments:
            numbers: ``(N,)`` atomic numbers.
            vectors: ``(E, 3)`` displacements ``x[src] - x[dst] (+ shifts @ cell)``, Å.
            dst_idx: ``(E,)`` destination atoms, sorted; ``N`` marks padding pairs.
            src_idx: ``(E,)`` source atoms; ``N`` marks padding pairs.

        Returns:
            ``(N,)`` atomic energies, eV.
        """
        basis = nn.basis(vectors, max_degree=self.max_degree, num=self.num_basis,
                         radial_fn=filtered(self._radial_fn(), self.radial),
                         cutoff_fn=functools.partial(nn.smooth_cutoff, cutoff=self.cutoff))
        x = self.embed(numbers)
        products = self.products or (None,) * len(self.message_passes)
        for mp, prod, d_in, d_out in zip(self.message_passes, products, self.dense_in,
                                         self.dense_out):
            y = mp(x, basis, dst_idx=dst_idx, src_idx=src_idx, num_segments=numbers.shape[0],
                   indices_are_sorted=True)
            if prod is not None:
                y = nn.change_max_degree_or_type(prod(y, numbers), max_degree=d_in.max_degree)
            x = nn.change_max_degree_or_type(x, max_degree=d_in.max_degree)
            x = x + d_out(nn.silu(d_in(x + y)))
        return self.energy_scale * self.readout(x)[..., 0, 0, 0] + self.element_energies[numbers]

    def _batch_energies(self, positions: Array, strain: Array | None, batch: GraphBatch):
        """``(atomic (N,), per-graph (G,))`` energies; ``strain`` ``(G, 3, 3)`` deforms graphs."""
        num_graphs = batch.graph_mask.shape[-1]
        dst, src = batch.dst_idx, batch.src_idx
        edge_graph = batch.node_graph.at[dst].get(mode="fill", fill_value=num_graphs)
        cell = batch.cells.at[edge_graph].get(mode="fill", fill_value=0)
        r = (positions.at[src].get(mode="fill", fill_value=0)
             - positions.at[dst].get(mode="fill", fill_value=0)
             + jnp.einsum("ek,ekl->el", batch.shifts.astype(positions.dtype), cell))
        if strain is not None:
            eps = strain.at[edge_graph].get(mode="fill", fill_value=0)
            r = r + jnp.einsum("ek,ekl->el", r, eps)
        # Padding pairs (dropped by MessagePass) get a finite vector beyond the cutoff.
        far = jnp.asarray([2.0 * self.cutoff, 0.0, 0.0], r.dtype)
        r = jnp.where(batch.edge_mask[:, None], r, far)
        atomic = jnp.where(batch.node_mask, self.node_energies(batch.numbers, r, dst, src), 0.0)
        energies = jax.ops.segment_sum(atomic, batch.node_graph, num_segments=num_graphs)
        return atomic, energies

    def batch_predict(self, batch: GraphBatch, *, stress: bool = True) -> BatchPrediction:
        """Energies, forces, stresses and atomic energies of a padded batch (jittable).

        The stress of graph ``g`` is ``(1/V_g) dE_g/d(strain_g)`` (symmetrised), where the
        strain deforms the graph's positions and cell together; forces and stresses come from
        one reverse pass. Usable inside a jitted, differentiated training step.

        Arguments:
            batch: A :class:`~eqx_mp.batching.GraphBatch` (numpy or JAX arrays, one batch, no
                leading axes; ``jax.vmap`` over stacked batches).
            stress: Whether to compute stresses (``False``: ``stresses`` is ``None``).

        Returns:
            A :class:`BatchPrediction` ``(energies (G,), forces (N, 3), stresses (G, 6),
            atomic_energies (N,))``.
        """
        batch = jax.tree_util.tree_map(jnp.asarray, batch)
        positions = batch.positions
        num_graphs = batch.graph_mask.shape[-1]
        strain = jnp.zeros((num_graphs, 3, 3), positions.dtype) if stress else None

        def total(pos, eps):
            atomic, energies = self._batch_energies(pos, eps, batch)
            return jnp.sum(jnp.where(batch.graph_mask, energies, 0.0)), (atomic, energies)

        argnums = (0, 1) if stress else 0
        (_, (atomic, energies)), grads = jax.value_and_grad(total, argnums, has_aux=True)(
            positions, strain)
        if not stress:
            return BatchPrediction(energies, -grads, None, atomic)
        volume = jnp.abs(jnp.linalg.det(batch.cells))
        safe = jnp.where(volume > 0, volume, 1.0)
        stresses = jnp.where((volume > 0)[:, None], voigt(grads[1]) / safe[:, None], 0.0)
        return BatchPrediction(energies, -grads[0], stresses, atomic)

    # ------------------------------------------------------------------ single structures
    def _structure_batch(self, positions: Array, numbers: Array, cell: Array | None, pbc: Any,
                         neighbours: Neighbours | None) -> GraphBatch:
        if cell is None and neighbours is None:  # isolated: all pairs (as e3x's examples)
            dst, src = ops.sparse_pairwise_indices(positions.shape[0])
            shifts = jnp.zeros((dst.shape[0], 3), jnp.int32)  # JAX arrays: traceable pairs
            neighbours = Neighbours(dst, src, shifts)  # pyright: ignore[reportArgumentType]
        elif neighbours is None:
            if not (is_concrete(positions) and is_concrete(cell)):
                raise ValueError(
                    "a periodic structure under jit/grad/vmap needs neighbours=... (build them "
                    "with eqx_mp.neighbours.neighbour_list or fixed_neighbour_list)")
            pos, c, p = check_structure(positions, cell, pbc, what="Potential")
            self.check_numbers(numbers)
            neighbours = neighbour_list(pos, self.cutoff, c, p)
        return one_graph_batch(positions, numbers, neighbours.dst, neighbours.src,
                               neighbours.shifts, cell)

    @typecheck
    def atomic_energies(
        self, positions: Float[Array, "N 3"], numbers: Integer[Array, " N"], *,
        cell: Float[Array, "3 3"] | None = None, pbc: Any = None,
        neighbours: Neighbours | None = None,
    ) -> Float[Array, " N"]:
        """Per-atom energy contributions of one structure (eV).

        Arguments:
            positions: ``(N, 3)`` Cartesian positions in Å.
            numbers: ``(N,)`` integer atomic numbers (``1..max_atomic_number``).
            cell: ``(3, 3)`` lattice vectors as rows (Å) of a periodic structure, or ``None``
                (isolated: all pairs of atoms are neighbours).
            pbc: Periodic directions, one bool or ``(3,)`` (default: all, with a cell).
            neighbours: A precomputed :class:`~eqx_mp.neighbours.Neighbours` list (needed under
                ``jit``/``grad`` for periodic structures; default: built on the host).

        Returns:
            ``(N,)`` atomic energies in eV; their sum is the total energy.
        """
        batch = self._structure_batch(positions, numbers, cell, pbc, neighbours)
        return self._batch_energies(positions, None, batch)[0]

    @typecheck
    def __call__(
        self, positions: Float[Array, "N 3"], numbers: Integer[Array, " N"], *,
        cell: Float[Array, "3 3"] | None = None, pbc: Any = None,
        neighbours: Neighbours | None = None,
    ) -> Float[Array, ""]:
        """Total energy of one structure (arguments as :meth:`atomic_energies`).

        Returns:
            Scalar total energy in eV.
        """
        return jnp.sum(self.atomic_energies(positions, numbers, cell=cell, pbc=pbc,
                                            neighbours=neighbours))

    energy = __call__

    @typecheck
    def energy_and_forces(
        self, positions: Float[Array, "N 3"], numbers: Integer[Array, " N"], *,
        cell: Float[Array, "3 3"] | None = None, pbc: Any = None,
        neighbours: Neighbours | None = None,
    ) -> tuple[Float[Array, ""], Float[Array, "N 3"]]:
        """Total energy and forces ``-dE/dpositions`` of one structure (as :meth:`atomic_energies`).

        Returns:
            ``(energy, forces)``: a scalar in eV and an ``(N, 3)`` array in eV/Å.
        """
        batch = self._structure_batch(positions, numbers, cell, pbc, neighbours)
        pred = self.batch_predict(batch, stress=False)
        return pred.energies[0], pred.forces

    @typecheck
    def energy_forces_stress(
        self, positions: Float[Array, "N 3"], numbers: Integer[Array, " N"],
        cell: Float[Array, "3 3"], pbc: Any = None, *, neighbours: Neighbours | None = None,
    ) -> tuple[Float[Array, ""], Float[Array, "N 3"], Float[Array, "6"]]:
        """Energy, forces and stress of one periodic structure (as :meth:`atomic_energies`).

        Returns:
            ``(energy, forces, stress)``: eV, ``(N, 3)`` eV/Å and ``(6,)`` eV/Å³ (ASE's sign
            and Voigt order ``xx yy zz yz xz xy``).
        """
        pred = self.batch_predict(self._structure_batch(positions, numbers, cell, pbc, neighbours))
        assert pred.stresses is not None  # batch_predict(stress=True)
        return pred.energies[0], pred.forces, pred.stresses[0]


def batched_energy_and_forces(
    model: Potential, positions: Float[Array, "B N 3"], numbers: Integer[Array, "B N"]
) -> tuple[Float[Array, " B"], Float[Array, "B N 3"]]:
    """:meth:`Potential.energy_and_forces` over a batch of isolated structures with the same ``N``.

    Arguments:
        model: The potential.
        positions: ``(B, N, 3)`` positions in Å.
        numbers: ``(B, N)`` integer atomic numbers.

    Returns:
        ``(energies, forces)`` of shapes ``(B,)`` (eV) and ``(B, N, 3)`` (eV/Å).
    """
    return jax.vmap(model.energy_and_forces)(jnp.asarray(positions), jnp.asarray(numbers))
