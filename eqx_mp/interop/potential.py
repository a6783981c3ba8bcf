"""The e3x (flax) twin of :class:`eqx_mp.models.Potential`, with the same weights.

Used to compare the whole model against e3x (tests) and to time it next to e3x on the same
neighbour list (``benchmarks/bench_md.py``). flax and e3x are imported when called.
"""

from __future__ import annotations

import functools
from typing import Any

from .e3x import _e3x, to_e3x

__all__ = ["potential_to_e3x"]


@functools.cache
def _twin_class() -> type:
    import flax.linen as fnn

    e3x = _e3x()

    class E3xPotential(fnn.Module):
        """Embed -> basis -> [MessagePass, residual Dense/silu/Dense] x T -> readout, in e3x."""

        embed: Any
        message_passes: tuple
        dense_in: tuple
        dense_out: tuple
        readout: Any
        products: tuple  # per block: (weights, left, right, tensors), empty for two-body
        radial: tuple  # (dense_in, dense_out) of the radial MLP, or empty
        max_degree: int
        num_basis: int
        cutoff: float
        radial_basis: str
        num_elements: int

        @fnn.compact
        def __call__(self, numbers, vectors, dst_idx, src_idx):
            radial = getattr(e3x.nn, self.radial_basis)
            if self.radial_basis.startswith("basic_") or self.radial_basis == "sinc":
                radial = functools.partial(radial, limit=self.cutoff)
            if self.radial:
                base, (r_in, r_out) = radial, self.radial
                radial = lambda r, num: r_out(e3x.nn.silu(r_in(base(r, num)[..., None, None, :])))[
                    ..., 0, 0, :]
            basis = e3x.nn.basis(
                vectors, max_degree=self.max_degree, num=self.num_basis, radial_fn=radial,
                cutoff_fn=functools.partial(e3x.nn.smooth_cutoff, cutoff=self.cutoff))
            x = self.embed(numbers)
            products: tuple[Any, ...] = self.products or (None,) * len(self.message_passes)
            for mp, prod, d_in, d_out in zip(self.message_passes, products, self.dense_in,
                                             self.dense_out):
                y = mp(x, basis, dst_idx=dst_idx, src_idx=src_idx, num_segments=numbers.shape[0])
                degree = 0 if d_out is self.dense_out[-1] else self.max_degree
                if prod is not None:  # A, Tensor(Dense(A), Dense(A)), ... weighted per element
                    weights, left, right, tensors = prod
                    power, out = y, weights[0](numbers) * y
                    for lt, rt, t, w in zip(left, right, tensors, weights[1:]):
                        power = t(lt(power), rt(y))
                        out = out + w(numbers) * power
                    y = e3x.nn.change_max_degree_or_type(out, max_degree=degree)
                x = e3x.nn.change_max_degree_or_type(x, max_degree=degree)
                x = x + d_out(e3x.nn.silu(d_in(x + y)))
            scale = self.param("energy_scale", fnn.initializers.ones, ())
            shifts = self.param("element_energies", fnn.initializers.zeros, (self.num_elements,))
            return scale * self.readout(x)[..., 0, 0, 0] + shifts[numbers]

    return E3xPotential


def potential_to_e3x(model: Any) -> tuple[Any, dict]:
    """The e3x module and variables equivalent to a :class:`~eqx_mp.models.Potential`.

    Arguments:
        model: The potential.

    Returns:
        ``(module, variables)``; ``module.apply(variables, numbers, vectors, dst_idx, src_idx)``
        equals ``model.node_energies(numbers, vectors, dst_idx, src_idx)``: ``(N,)`` atomic
        energies (eV) from ``(N,)`` atomic numbers and ``(E, 3)`` pair vectors (Å).
    """
    parts = {"embed": to_e3x(model.embed)}
    for name in ("message_passes", "dense_in", "dense_out"):
        for i, m in enumerate(getattr(model, name)):
            parts[f"{name}_{i}"] = to_e3x(m)
    parts["readout"] = to_e3x(model.readout)
    products = []
    for i, prod in enumerate(model.products):
        groups = []
        for g, name in enumerate(("weights", "left", "right", "tensors")):
            mods = []
            for j, m in enumerate(getattr(prod, name)):  # flax names nested tuple entries so
                parts[f"products_{i}_{g}_{j}"] = to_e3x(m)
                mods.append(parts[f"products_{i}_{g}_{j}"][0])
            groups.append(tuple(mods))
        products.append(tuple(groups))
    radial = ()
    if model.radial is not None:
        parts["radial_0"], parts["radial_1"] = (to_e3x(model.radial.dense_in),
                                                to_e3x(model.radial.dense_out))
        radial = (parts["radial_0"][0], parts["radial_1"][0])
    params = {k: v[1]["params"] for k, v in parts.items()}
    params["energy_scale"] = model.energy_scale
    params["element_energies"] = model.element_energies
    t = model.num_iterations
    module = _twin_class()(
        embed=parts["embed"][0],
        message_passes=tuple(parts[f"message_passes_{i}"][0] for i in range(t)),
        dense_in=tuple(parts[f"dense_in_{i}"][0] for i in range(t)),
        dense_out=tuple(parts[f"dense_out_{i}"][0] for i in range(t)),
        readout=parts["readout"][0], products=tuple(products), radial=radial,
        max_degree=model.max_degree, num_basis=model.num_basis, cutoff=model.cutoff,
        radial_basis=model.radial_basis, num_elements=model.max_atomic_number + 1,
    )
    return module, {"params": params}
