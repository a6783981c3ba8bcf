"""The same e3x-style potential written in e3x (flax) and in eqx_mp, with weights carried over.

Embed -> basis -> [MessagePass -> add (residual) -> Dense -> silu] x T -> scalar readout (sum of
atomic energies). The e3x model is an ordinary flax module; :func:`init_and_convert` fills its
variables with seeded random values and carries them over layer by layer with
``eqx_mp.interop.from_e3x`` (each layer's example arguments recorded with
``flax.linen.intercept_methods``). Used by the oracle tests and by ``benchmarks/bench_potential.py``.
"""

from __future__ import annotations

import dataclasses
import functools

import e3x
import equinox as eqx
import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np

import eqx_mp
from eqx_mp.interop import from_e3x


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Model sizes: features ``F``, feature degree ``L``, basis degree ``Lb``, ``K`` radial
    functions, cutoff (Å), number of elements and message-passing iterations ``T``."""

    features: int = 8
    max_degree: int = 1
    basis_max_degree: int = 2
    num_basis: int = 6
    cutoff: float = 3.0
    num_elements: int = 10
    iterations: int = 2


class E3xPotential(fnn.Module):
    """The reference model, written with e3x/flax only."""

    sizes: Sizes = Sizes()
    param_dtype: jnp.dtype = jnp.float32

    @fnn.compact
    def __call__(self, numbers, positions, dst_idx, src_idx):
        s = self.sizes
        r = positions[src_idx] - positions[dst_idx]
        basis = e3x.nn.basis(
            r, max_degree=s.basis_max_degree, num=s.num_basis,
            radial_fn=functools.partial(e3x.nn.reciprocal_bernstein, kind="damped"),
            cutoff_fn=functools.partial(e3x.nn.smooth_cutoff, cutoff=s.cutoff),
            damping_fn=e3x.nn.smooth_damping,
        )
        x = e3x.nn.Embed(s.num_elements, s.features, param_dtype=self.param_dtype)(numbers)
        for _ in range(s.iterations):
            y = e3x.nn.MessagePass(max_degree=s.max_degree, param_dtype=self.param_dtype)(
                x, basis, dst_idx=dst_idx, src_idx=src_idx, num_segments=numbers.shape[0])
            x = e3x.nn.add(x, y)
            x = e3x.nn.Dense(s.features, param_dtype=self.param_dtype)(x)
            x = e3x.nn.silu(x)
        x = e3x.nn.change_max_degree_or_type(x, max_degree=0, include_pseudotensors=False)
        return jnp.sum(e3x.nn.Dense(1, use_bias=False, param_dtype=self.param_dtype)(x))


class EqxPotential(eqx.Module):
    """The same model, written with eqx_mp only (eager modules, explicit sizes)."""

    embed: eqx_mp.nn.Embed
    message_passes: tuple[eqx_mp.nn.MessagePass, ...]
    denses: tuple[eqx_mp.nn.Dense, ...]
    readout: eqx_mp.nn.Dense
    sizes: Sizes = eqx.field(static=True)

    def __init__(self, sizes: Sizes = Sizes(), *, param_dtype=jnp.float32, key):
        s = self.sizes = sizes
        keys = jax.random.split(key, 2 * s.iterations + 2)
        self.embed = eqx_mp.nn.Embed(s.num_elements, s.features, param_dtype=param_dtype, key=keys[0])
        mps, denses = [], []
        in_degree, in_parity = 0, 1
        for i in range(s.iterations):
            mp = eqx_mp.nn.MessagePass(
                s.features, s.num_basis, in_degree, s.basis_max_degree, in_parity=in_parity,
                max_degree=s.max_degree, param_dtype=param_dtype, key=keys[1 + 2 * i])
            # add() of inputs and messages has the larger degree / type of the two
            in_degree = max(in_degree, mp.max_degree)
            in_parity = max(in_parity, mp.out_parity)
            mps.append(mp)
            denses.append(eqx_mp.nn.Dense(s.features, s.features, in_degree, parity=in_parity,
                                          param_dtype=param_dtype, key=keys[2 + 2 * i]))
        self.message_passes, self.denses = tuple(mps), tuple(denses)
        self.readout = eqx_mp.nn.Dense(s.features, 1, 0, parity=1, use_bias=False,
                                       param_dtype=param_dtype, key=keys[-1])

    def __call__(self, numbers, positions, dst_idx, src_idx):
        s = self.sizes
        r = positions[src_idx] - positions[dst_idx]
        basis = eqx_mp.nn.basis(
            r, max_degree=s.basis_max_degree, num=s.num_basis,
            radial_fn=functools.partial(eqx_mp.nn.reciprocal_bernstein, kind="damped"),
            cutoff_fn=functools.partial(eqx_mp.nn.smooth_cutoff, cutoff=s.cutoff),
            damping_fn=eqx_mp.nn.smooth_damping,
        )
        x = self.embed(numbers)
        for mp, dense in zip(self.message_passes, self.denses):
            y = mp(x, basis, dst_idx=dst_idx, src_idx=src_idx, num_segments=numbers.shape[0])
            x = eqx_mp.nn.add(x, y)
            x = eqx_mp.nn.silu(dense(x))
        x = eqx_mp.nn.change_max_degree_or_type(x, max_degree=0, include_pseudotensors=False)
        return jnp.sum(self.readout(x))


def init_and_convert(model: E3xPotential, seed: int, *args):
    """Random e3x variables, and the eqx_mp model with the same weights.

    ``model.init`` is only traced (``jax.eval_shape``: compiling the initialisers would dominate
    the test time) while each top-level submodule's call arguments are recorded; the parameters
    are then filled with seeded random values (LeCun-like scale) and converted layer by layer with
    ``from_e3x``. Returns ``(variables, eqx_model)``.
    """
    calls = []

    def shape_only(a):  # from_e3x needs the example arguments' shapes only
        return np.zeros(a.shape, a.dtype) if isinstance(a, jax.Array) else a

    def record(next_fun, call_args, call_kwargs, context):
        if context.method_name == "__call__" and len(context.module.scope.path) == 1:
            calls.append((context.module.scope.path[0], context.module.clone(parent=None),
                          jax.tree.map(shape_only, call_args), jax.tree.map(shape_only, call_kwargs)))
        return next_fun(*call_args, **call_kwargs)

    with fnn.intercept_methods(record):
        shapes = jax.eval_shape(model.init, jax.random.key(0), *args)
    rng = np.random.default_rng(seed)

    def fill(s):
        scale = 1.0 / np.sqrt(s.shape[-2]) if len(s.shape) >= 2 else 0.1
        return jnp.asarray(rng.normal(scale=scale, size=s.shape), s.dtype)

    variables = jax.tree.map(fill, shapes)
    params = variables["params"]
    conv = {name: from_e3x(m, {"params": params[name]}, *a, **kw) for name, m, a, kw in calls}
    t = model.sizes.iterations
    expected = sorted([f"Dense_{i}" for i in range(t + 1)] + ["Embed_0"]
                      + [f"MessagePass_{i}" for i in range(t)])
    assert sorted(conv) == expected, sorted(conv)
    dtype = jnp.asarray(params["Embed_0"]["embedding"]).dtype
    skeleton = eqx.filter_eval_shape(EqxPotential, model.sizes, param_dtype=dtype, key=jax.random.key(0))
    ours = eqx.tree_at(
        lambda m: (m.embed, m.message_passes, m.denses, m.readout), skeleton,
        (conv["Embed_0"], tuple(conv[f"MessagePass_{i}"] for i in range(t)),
         tuple(conv[f"Dense_{i}"] for i in range(t)), conv[f"Dense_{t}"]),
    )
    return variables, ours
