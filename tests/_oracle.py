"""Helpers that run the same MessagePass in e3x (oracle) and eqx_mp and compare values/gradients."""

from __future__ import annotations

import dataclasses

import e3x
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import eqx_mp
from eqx_mp.interop import from_e3x, to_e3x


@dataclasses.dataclass(frozen=True)
class Config:
    parity: int
    in_degree: int
    basis_degree: int
    max_degree: int | None
    include_pseudotensors: bool
    use_basis_bias: bool
    fused: bool
    sparse: bool
    weights: str  # "none", "pair", "full"
    batch: tuple
    dtype: str

    def __str__(self):
        return (f"P{self.parity}L{self.in_degree}Lb{self.basis_degree}Lo{self.max_degree}"
                f"{'ps' if self.include_pseudotensors else 'np'}{'B' if self.use_basis_bias else ''}"
                f"{'F' if self.fused else 'T'}{'S' if self.sparse else 'D'}w{self.weights}"
                f"b{len(self.batch)}{self.dtype}")


def random_configs(n: int, seed: int, max_degree: int = 4) -> list[Config]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        l_in = int(rng.integers(0, max_degree + 1))
        l_b = int(rng.integers(0, max_degree + 1))
        hi = min(l_in + l_b, max_degree)
        lo = None if rng.random() < 0.3 else int(rng.integers(0, hi + 1))
        out.append(Config(
            parity=int(rng.integers(1, 3)), in_degree=l_in, basis_degree=l_b, max_degree=lo,
            include_pseudotensors=bool(rng.random() < 0.6), use_basis_bias=bool(rng.random() < 0.5),
            fused=bool(rng.random() < 0.4), sparse=bool(rng.random() < 0.5),
            weights=str(rng.choice(["none", "pair", "full"])),
            batch=() if rng.random() < 0.7 else (2,), dtype=str(rng.choice(["float32", "float64"])),
        ))
    return out


def make_inputs(cfg: Config, seed: int, n: int = 4, m: int = 3, f: int = 2, k: int = 3):
    rng = np.random.default_rng(seed)
    dt = np.float64 if cfg.dtype == "float64" else np.float32
    x = rng.normal(size=cfg.batch + (n, cfg.parity, (cfg.in_degree + 1) ** 2, f)).astype(dt)
    adj = rng.integers(0, n + 1, size=cfg.batch + (n, m))  # n = padding
    kw: dict = {}
    if cfg.sparse:
        e = n * m
        dst = np.broadcast_to(np.repeat(np.arange(n), m), cfg.batch + (e,)).copy()
        src = adj.reshape(cfg.batch + (e,))
        pad = src == n
        dst[pad] = n  # padding pairs: dst == num_segments
        kw = dict(dst_idx=jnp.asarray(dst), src_idx=jnp.asarray(src))
        pair = cfg.batch + (e,)
    else:
        kw = dict(adj_idx=jnp.asarray(adj))
        pair = cfg.batch + (n, m)
    b = rng.normal(size=pair + (1, (cfg.basis_degree + 1) ** 2, k)).astype(dt)
    w = None
    if cfg.weights == "pair":
        w = jnp.asarray(rng.uniform(0.5, 1.5, size=pair + (1, 1, 1)).astype(dt))
    elif cfg.weights == "full":
        w = jnp.asarray(rng.uniform(0.5, 1.5, size=pair + (cfg.parity, (cfg.in_degree + 1) ** 2, f)).astype(dt))
    return jnp.asarray(x), jnp.asarray(b), w, kw


def e3x_layer(cfg: Config):
    pdt = jnp.float64 if cfg.dtype == "float64" else jnp.float32
    return e3x.nn.MessagePass(
        max_degree=cfg.max_degree, use_basis_bias=cfg.use_basis_bias,
        include_pseudotensors=cfg.include_pseudotensors, use_fused_tensor=cfg.fused, param_dtype=pdt,
    )


def randomize_bias(variables, seed):
    """Zero-initialised biases would make bias gradients/values trivially equal: perturb them."""
    rng = np.random.default_rng(seed)

    def f(path, x):
        if any(getattr(p, "key", None) == "bias" for p in path):
            return jnp.asarray(rng.normal(size=x.shape).astype(x.dtype))
        return x

    return jax.tree_util.tree_map_with_path(f, variables)


def ours_layer(cfg: Config, x, b, seed: int) -> eqx_mp.nn.MessagePass:
    pdt = jnp.float64 if cfg.dtype == "float64" else jnp.float32
    return eqx_mp.nn.MessagePass(
        x.shape[-1], b.shape[-1], cfg.in_degree, cfg.basis_degree, in_parity=cfg.parity,
        max_degree=cfg.max_degree, use_basis_bias=cfg.use_basis_bias,
        include_pseudotensors=cfg.include_pseudotensors, use_fused_tensor=cfg.fused,
        param_dtype=pdt, key=jax.random.key(seed),
    )


def _e3x_vjp(layer, variables, x, b, w, kw, cot):
    """e3x's output and its gradients w.r.t. (variables, x, b), jitted (op-by-op e3x is ~5x slower).

    e3x's FusedTensor einsums trip an XLA layout verifier bug under jit for some batched shapes;
    those cases run op by op instead (same maths, same oracle).
    """
    def run(v, x, b, cot):
        ref, vjp = jax.vjp(lambda v, x, b: layer.apply(v, x, b, w, **kw), v, x, b)
        return ref, vjp(cot)

    try:
        return jax.jit(run)(variables, x, b, cot)
    except jax.errors.JaxRuntimeError as err:  # pragma: no cover - depends on XLA's version
        if "hlo verifier" not in str(err):
            raise
        return run(variables, x, b, cot)


def compare(cfg: Config, seed: int = 0):
    """Return max relative errors (out, d_inputs, d_basis, d_params) between e3x and eqx_mp.

    The parameters are drawn by eqx_mp's initialisers (they zero the same never-used FusedTensor
    entries as e3x's, and e3x's forward would expose any difference), converted with ``to_e3x``,
    and converted back with ``from_e3x`` (the round trip must be exact), which is several times
    cheaper than running e3x's own ``init`` op by op.
    """
    x, b, w, kw = make_inputs(cfg, seed)
    layer = e3x_layer(cfg)
    _, variables = to_e3x(ours_layer(cfg, x, b, seed))
    variables = randomize_bias(variables, seed)
    ours = from_e3x(layer, variables, x, b, w, **kw)
    _, back = to_e3x(ours)
    for a, r in zip(jax.tree.leaves(back), jax.tree.leaves(variables), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(r))
    out_shape = jax.eval_shape(lambda: layer.apply(variables, x, b, w, **kw))
    rng = np.random.default_rng(seed + 1)
    cot = jnp.asarray(rng.normal(size=out_shape.shape).astype(out_shape.dtype))
    ref, (gv, gx, gb) = _e3x_vjp(layer, variables, x, b, w, kw, cot)

    @eqx.filter_jit
    def ours_value_and_grad(mod, x, b, w, kw):
        def loss(args):
            out = args[0](args[1], args[2], w, **kw)
            return jnp.sum(out * cot), out
        (_, out), grads = eqx.filter_value_and_grad(loss, has_aux=True)((mod, x, b))
        return out, grads

    out, (gm, gx2, gb2) = ours_value_and_grad(ours, x, b, w, kw)
    _, gv2 = to_e3x(gm)

    def rel(a, r):
        a, r = np.asarray(a, np.float64), np.asarray(r, np.float64)
        den = np.linalg.norm(r)
        return float(np.linalg.norm(a - r) / den) if den > 0 else float(np.linalg.norm(a))

    gp = jax.tree.leaves(gv["params"])
    gp2 = jax.tree.leaves(gv2["params"])
    total = float(np.sqrt(sum(np.sum(np.asarray(r, np.float64) ** 2) for r in gp)))

    def rel_leaf(a, r):
        # A leaf whose gradient is zero in exact arithmetic (a filter degree that reaches no output
        # degree) carries only e3x's rounding noise, ~1e-7 of the total in float32, while ours is
        # exactly zero; such leaves (below 1e-3 of the total norm) are measured against the total.
        a, r = np.asarray(a, np.float64), np.asarray(r, np.float64)
        den = np.linalg.norm(r)
        if den < 1e-3 * total:
            return float(np.linalg.norm(a - r) / total) if total > 0 else float(np.linalg.norm(a))
        return float(np.linalg.norm(a - r) / den)
    return {
        "shape": (out.shape, ref.shape),
        "dtype": (out.dtype, ref.dtype),
        "out": rel(out, ref),
        "inputs": rel(gx2, gx),
        "basis": rel(gb2, gb),
        "params": max(rel_leaf(a, r) for a, r in zip(gp2, gp)),
        "nparams": (len(gp), len(gp2)),
    }
