"""Ready-made models built from eqx_mp layers: an equivariant machine-learned potential.

:class:`Potential` maps a structure (positions, atomic numbers, and optionally a periodic cell)
to atomic energies whose sum is the total energy. Forces are minus the gradient with respect to
the positions and the stress is the strain derivative divided by the volume, so both are exactly
consistent with the energy. Three entry points share one computation:

* single isolated structures (``model(positions, numbers)``): all pairs of atoms are
  neighbours, smoothly cut off at ``cutoff`` (the embedded cluster data set);
* single periodic structures (``model(positions, numbers, cell=cell)``): a periodic neighbour
  list, built on the host or passed in (:mod:`eqx_mp.neighbours`);
* padded batches (:meth:`Potential.batch_predict`): energies, forces and stresses of a
  :class:`~eqx_mp.batching.GraphBatch`, for jitted training steps and MD.
"""

from ._blocks import RadialMLP, SelfProducts
from ._config import PRESETS, RADIAL_BASES, PotentialConfig
from ._potential import BatchPrediction, Potential, batched_energy_and_forces

__all__ = ["PRESETS", "RADIAL_BASES", "BatchPrediction", "Potential", "PotentialConfig", "RadialMLP",
           "SelfProducts", "batched_energy_and_forces"]
