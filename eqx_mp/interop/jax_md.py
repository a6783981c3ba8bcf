"""A :class:`~eqx_mp.models.Potential` as a JAX-MD energy function (needs the ``md`` extra:
``pip install eqx_mp[md]``, i.e. ``jax-md``).

::

    from jax_md import simulate, space
    import eqx_mp.interop.jax_md as eqx_jax_md

    displacement_fn, shift_fn = space.periodic(box_size)
    neighbor_fn, energy_fn = eqx_jax_md.potential(model, displacement_fn, box_size,
                                                  species=numbers)
    nbrs = neighbor_fn.allocate(R)
    init_fn, apply_fn = simulate.nve(energy_fn, shift_fn, dt)
    state = init_fn(key, R, kT=kT, mass=masses, neighbor=nbrs)
    state = apply_fn(state, neighbor=nbrs)      # inside lax.fori_loop / scan
    nbrs = nbrs.update(state.position)          # check nbrs.did_buffer_overflow on the host

``energy_fn(R, neighbor=nbrs)`` uses JAX-MD's sparse neighbour list (``format=Sparse``) and its
displacement function (so the pair vectors follow JAX-MD's space: free, periodic or
periodic_general); pairs between the model's cutoff and ``cutoff + dr_threshold`` add exactly
zero. Units are whatever the model was trained in (eqx_mp: eV, Å; with masses in amu the time
unit is ASE's, ``ase.units.fs`` per femtosecond). jax_md is imported only by this module.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..md.engine import potential_in_dtype
from ..models import Potential

__all__ = ["potential"]


def _jax_md() -> Any:
    try:
        import jax_md
    except ImportError as err:
        raise ImportError("eqx_mp.interop.jax_md needs jax-md: pip install 'eqx_mp[md]'") from err
    return jax_md


def potential(
    model: Potential,
    displacement_fn: Callable[[Array, Array], Array],
    box: Any,
    *,
    species: Int[Array, " N"],
    dr_threshold: float = 0.5,
    capacity_multiplier: float = 1.25,
    fractional_coordinates: bool = False,
    disable_cell_list: bool = False,
    dtype: Any = None,
) -> tuple[Any, Callable[..., Float[Array, ""]]]:
    """A JAX-MD neighbour-list function and energy function of an eqx_mp potential.

    Arguments:
        model: The :class:`~eqx_mp.models.Potential`.
        displacement_fn: JAX-MD's displacement function (``space.free()``, ``space.periodic``,
            ``space.periodic_general``): ``displacement_fn(Ra, Rb) = Ra - Rb`` (minimum image).
        box: The box passed to ``jax_md.partition.neighbor_list`` (side length(s) or the
            ``(3, 3)`` matrix of ``periodic_general``, lattice vectors as columns).
        species: ``(N,)`` atomic numbers (elements the model knows).
        dr_threshold: Skin (Å): the list holds pairs within ``cutoff + dr_threshold`` and JAX-MD
            rebuilds it when an atom moved more than half of it.
        capacity_multiplier: JAX-MD's spare capacity of the list.
        fractional_coordinates: Whether positions are fractional (``periodic_general``'s default).
        disable_cell_list: Passed to JAX-MD (needed for boxes smaller than three cells).
        dtype: ``None`` (the model's), ``"float32"`` or ``"float64"``.

    Returns:
        ``(neighbor_fn, energy_fn)``: ``neighbor_fn`` is ``jax_md.partition.neighbor_list(...,
        format=Sparse)``; ``energy_fn(R, neighbor=nbrs, **kwargs)`` is the total energy (eV)
        of ``(N, 3)`` positions ``R`` (other keyword arguments of JAX-MD's simulators are
        ignored).

    Raises:
        ValueError: If ``species`` holds an element the model does not know.
        ImportError: Without jax-md.
    """
    jax_md = _jax_md()
    model.check_numbers(species)
    model, dtype = potential_in_dtype(model, dtype, what="eqx_mp.interop.jax_md.potential")
    numbers = jnp.asarray(species, jnp.int32)
    neighbor_fn = jax_md.partition.neighbor_list(
        displacement_fn, box, model.cutoff, dr_threshold=dr_threshold,
        capacity_multiplier=capacity_multiplier, disable_cell_list=disable_cell_list,
        fractional_coordinates=fractional_coordinates,
        format=jax_md.partition.NeighborListFormat.Sparse)

    def energy_fn(R: Float[Array, "N 3"], neighbor: Any = None, **kwargs: Any) -> Float[Array, ""]:
        if neighbor is None:
            raise ValueError("energy_fn needs neighbor=... (from neighbor_fn.allocate(R))")
        if not jax_md.partition.is_sparse(neighbor.format):
            raise ValueError(f"energy_fn needs a Sparse neighbour list, got {neighbor.format}")
        R = jnp.asarray(R, dtype)
        n = R.shape[0]
        dst, src = neighbor.idx[0], neighbor.idx[1]
        real = (dst < n) & (src < n) & (dst != src)
        order = jnp.argsort(jnp.where(real, dst, n), stable=True)  # MessagePass wants sorted dst
        dst = jnp.where(real, dst, n)[order]
        src = jnp.where(real, src, n)[order]
        real = real[order]
        safe = lambda i: jnp.minimum(i, n - 1)  # noqa: E731
        vectors = jax.vmap(displacement_fn)(R[safe(src)], R[safe(dst)])
        far = jnp.asarray([2.0 * model.cutoff, 0.0, 0.0], dtype)
        vectors = jnp.where(real[:, None], vectors, far)
        return jnp.sum(model.node_energies(numbers, vectors, dst, src))

    return neighbor_fn, energy_fn
