"""Ready-made models built from eqx_mp layers: an equivariant machine-learned potential.

:class:`Potential` maps atomic positions and numbers of one structure to its total energy; forces
are minus the gradient with respect to the positions (:meth:`Potential.energy_and_forces`), so
they are exactly conservative. All pairs of distinct atoms are neighbours (smoothly cut off at
``cutoff``), which suits small clusters and molecules such as the embedded demo data set.
"""

from __future__ import annotations

import functools
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from . import nn
from ._typing import Array, Float, Integer, ShapeError, typecheck

__all__ = ["Potential", "all_pairs", "batched_energy_and_forces"]


#: Radial basis functions :class:`Potential` accepts (names in :mod:`eqx_mp.nn`). The
#: ``basic_*`` and ``sinc`` functions are spread over ``[0, cutoff]``.
RADIAL_BASES = (
    "reciprocal_bernstein",
    "reciprocal_gaussian",
    "reciprocal_chebyshev",
    "basic_bernstein",
    "basic_gaussian",
    "basic_chebyshev",
    "basic_fourier",
    "sinc",
)


def all_pairs(num_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of all ordered pairs of distinct atoms.

    Arguments:
        num_atoms: ``N``.

    Returns:
        ``(dst_idx, src_idx)``, two int32 numpy arrays of shape ``(N * (N - 1),)``, sorted by
        ``dst_idx``.
    """
    dst, src = np.nonzero(~np.eye(num_atoms, dtype=bool))
    return dst.astype(np.int32), src.astype(np.int32)


def _pad_degrees(x: Array, max_degree: int) -> Array:
    """Zero-pad (or truncate) the degree axis ``-2`` of ``... 1 D F`` features to ``(L+1)**2``."""
    size = (max_degree + 1) ** 2
    if x.shape[-2] >= size:
        return x[..., :size, :]
    pad = [(0, 0)] * x.ndim
    pad[-2] = (0, size - x.shape[-2])
    return jnp.pad(x, pad)


class Potential(eqx.Module):
    """An equivariant message-passing potential (e3x's MD17 example architecture).

    ``Embed`` turns atomic numbers into scalar features; ``basis`` (spherical harmonics times
    radial functions, smoothly cut off) encodes each pair's displacement; ``num_iterations``
    blocks of ``MessagePass`` + residual ``Dense -> silu -> Dense`` update the features (the last
    block outputs scalars only); a linear readout gives atomic energies, which are scaled,
    shifted per element and summed. Features carry no pseudotensors (parity axis of size 1).

    Arguments:
        features: Number of feature channels ``F``.
        max_degree: Maximum degree ``L`` of the features and of the pair basis.
        num_basis: Number of radial functions ``K``.
        cutoff: Cutoff radius in Å (pairs further apart do not interact).
        num_iterations: Number of message-passing blocks ``T`` (>= 1).
        max_atomic_number: Largest atomic number the embedding accepts.
        radial_basis: Name of the radial functions in :mod:`eqx_mp.nn` (one of
            :data:`RADIAL_BASES`); ``basic_*`` and ``sinc`` are spread over ``[0, cutoff]``. The
            default ``basic_gaussian`` learned the demo data set several times faster than e3x's
            usual ``reciprocal_bernstein`` (its distances, 2-6 Å, span only a small part of the
            reciprocal mapping's range).
        zero_init_residual: Initialise the last ``Dense`` of each residual block to zero, as in
            e3x's example (then the initial energy does not depend on the positions). Only
            affects initialisation, so it is not a saved hyper-parameter.
        key: A JAX PRNG key for the initialisation.

    The fields ``element_energies`` (per-element energy shift, eV) and ``energy_scale`` (eV) are
    trainable arrays; training code typically initialises them from the data set statistics
    (``eqx.tree_at``) so that the network only learns the remainder.
    """

    embed: nn.Embed
    message_passes: tuple[nn.MessagePass, ...]
    dense_in: tuple[nn.Dense, ...]
    dense_out: tuple[nn.Dense, ...]
    readout: nn.Dense
    element_energies: Float[Array, " Z"]
    energy_scale: Float[Array, ""]
    features: int = eqx.field(static=True)
    max_degree: int = eqx.field(static=True)
    num_basis: int = eqx.field(static=True)
    cutoff: float = eqx.field(static=True)
    num_iterations: int = eqx.field(static=True)
    max_atomic_number: int = eqx.field(static=True)
    radial_basis: str = eqx.field(static=True)

    def __init__(
        self,
        features: int = 32,
        max_degree: int = 1,
        num_basis: int = 16,
        cutoff: float | int = 6.0,
        num_iterations: int = 2,
        max_atomic_number: int = 118,
        radial_basis: str = "basic_gaussian",
        zero_init_residual: bool = False,
        *,
        key: Array,
    ):
        for name, value, minimum in (
            ("features", features, 1),
            ("max_degree", max_degree, 0),
            ("num_basis", num_basis, 1),
            ("num_iterations", num_iterations, 1),
            ("max_atomic_number", max_atomic_number, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
            if value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value}")
        if radial_basis not in RADIAL_BASES:
            raise ValueError(
                f"radial_basis must be one of {sorted(RADIAL_BASES)}, got {radial_basis!r}"
            )
        if not cutoff > 0:
            raise ValueError(f"cutoff must be > 0 (Å), got {cutoff}")
        self.features = int(features)
        self.max_degree = int(max_degree)
        self.num_basis = int(num_basis)
        self.cutoff = float(cutoff)
        self.num_iterations = int(num_iterations)
        self.max_atomic_number = int(max_atomic_number)
        self.radial_basis = radial_basis

        keys = jax.random.split(key, 3 * num_iterations + 2)
        self.embed = nn.Embed(max_atomic_number + 1, features, key=keys[0])
        mps, d_in, d_out = [], [], []
        in_degree, in_parity = 0, 1
        for i in range(num_iterations):
            last = i == num_iterations - 1
            out_degree = 0 if last else max_degree
            mp = nn.MessagePass(
                features,
                num_basis,
                in_degree,
                max_degree,
                in_parity=in_parity,
                max_degree=out_degree,
                include_pseudotensors=False,
                key=keys[3 * i + 1],
            )
            mps.append(mp)
            d_in.append(
                nn.Dense(features, features, out_degree, parity=1, key=keys[3 * i + 2])
            )
            dense = nn.Dense(features, features, out_degree, parity=1, key=keys[3 * i + 3])
            if zero_init_residual:
                # Start each residual block as the identity (e3x example: kernel_init=zeros).
                dense = jax.tree_util.tree_map(
                    lambda a: jnp.zeros_like(a) if eqx.is_inexact_array(a) else a, dense
                )
            d_out.append(dense)
            in_degree, in_parity = out_degree, 1
        self.message_passes = tuple(mps)
        self.dense_in = tuple(d_in)
        self.dense_out = tuple(d_out)
        self.readout = nn.Dense(features, 1, 0, parity=1, use_bias=False, key=keys[-1])
        self.element_energies = jnp.zeros((max_atomic_number + 1,), jnp.float32)
        self.energy_scale = jnp.ones((), jnp.float32)

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable) that rebuild this model's structure.

        Returns:
            A dict for ``Potential(**hyperparameters, key=...)``.
        """
        return dict(
            features=self.features,
            max_degree=self.max_degree,
            num_basis=self.num_basis,
            cutoff=self.cutoff,
            num_iterations=self.num_iterations,
            max_atomic_number=self.max_atomic_number,
            radial_basis=self.radial_basis,
        )

    def _radial_fn(self) -> Any:
        fn = getattr(nn, self.radial_basis)
        if self.radial_basis.startswith("basic_") or self.radial_basis == "sinc":
            return functools.partial(fn, limit=self.cutoff)
        return fn

    def _check(self, positions: Array, numbers: Array) -> None:
        if positions.ndim != 2 or positions.shape[-1] != 3:
            raise ShapeError(f"positions must have shape (N, 3), got {tuple(positions.shape)}")
        if numbers.shape != positions.shape[:1]:
            raise ShapeError(
                f"numbers must have shape (N,) = ({positions.shape[0]},) like positions, "
                f"got {tuple(numbers.shape)}"
            )

    @typecheck
    def atomic_energies(
        self, positions: Float[Array, "N 3"], numbers: Integer[Array, " N"]
    ) -> Float[Array, " N"]:
        """Per-atom energy contributions (eV).

        Arguments:
            positions: ``(N, 3)`` Cartesian positions in Å.
            numbers: ``(N,)`` integer atomic numbers (``1..max_atomic_number``).

        Returns:
            ``(N,)`` atomic energies in eV; their sum is the total energy.
        """
        self._check(positions, numbers)
        dst_np, src_np = all_pairs(positions.shape[0])
        dst_idx, src_idx = jnp.asarray(dst_np), jnp.asarray(src_np)
        displacements = positions[src_idx] - positions[dst_idx]
        basis = nn.basis(
            displacements,
            max_degree=self.max_degree,
            num=self.num_basis,
            radial_fn=self._radial_fn(),
            cutoff_fn=functools.partial(nn.smooth_cutoff, cutoff=self.cutoff),
        )
        x = self.embed(numbers)
        for mp, d_in, d_out in zip(self.message_passes, self.dense_in, self.dense_out):
            y = mp(
                x,
                basis,
                dst_idx=dst_idx,
                src_idx=src_idx,
                num_segments=positions.shape[0],
                indices_are_sorted=True,
            )
            x = _pad_degrees(x, mp.out_max_degree)
            y = x + y
            y = d_out(nn.silu(d_in(y)))
            x = x + y
        out = self.readout(x)[..., 0, 0, 0]
        return self.energy_scale * out + self.element_energies[numbers]

    @typecheck
    def __call__(
        self, positions: Float[Array, "N 3"], numbers: Integer[Array, " N"]
    ) -> Float[Array, ""]:
        """Total energy of one structure.

        Arguments:
            positions: ``(N, 3)`` Cartesian positions in Å.
            numbers: ``(N,)`` integer atomic numbers.

        Returns:
            Scalar total energy in eV.
        """
        return jnp.sum(self.atomic_energies(positions, numbers))

    @typecheck
    def energy_and_forces(
        self, positions: Float[Array, "N 3"], numbers: Integer[Array, " N"]
    ) -> tuple[Float[Array, ""], Float[Array, "N 3"]]:
        """Total energy and forces ``-dE/dpositions`` of one structure.

        Arguments:
            positions: ``(N, 3)`` Cartesian positions in Å.
            numbers: ``(N,)`` integer atomic numbers.

        Returns:
            ``(energy, forces)``: a scalar in eV and an ``(N, 3)`` array in eV/Å.
        """
        energy, grad = jax.value_and_grad(self.__call__)(positions, numbers)
        return energy, -grad


def batched_energy_and_forces(
    model: Potential, positions: Float[Array, "B N 3"], numbers: Integer[Array, "B N"]
) -> tuple[Float[Array, " B"], Float[Array, "B N 3"]]:
    """:meth:`Potential.energy_and_forces` over a batch of structures with the same ``N``.

    Arguments:
        model: The potential.
        positions: ``(B, N, 3)`` positions in Å.
        numbers: ``(B, N)`` integer atomic numbers.

    Returns:
        ``(energies, forces)`` of shapes ``(B,)`` (eV) and ``(B, N, 3)`` (eV/Å).
    """
    return jax.vmap(model.energy_and_forces)(jnp.asarray(positions), jnp.asarray(numbers))
