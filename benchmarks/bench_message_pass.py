"""Side-by-side benchmark of one MessagePass layer: eqx_mp vs e3x vs e3nn-jax, in ONE process.

For every configuration the same layer is built in all three libraries:

* e3x: ``e3x.nn.MessagePass`` (flax), initialised normally;
* eqx_mp: ``eqx_mp.interop.from_e3x`` of that layer (identical weights); outputs are checked
  equal to e3x's before anything is timed;
* e3nn-jax: the same gather -> filter Dense -> tensor product -> segment sum pipeline, with the
  tensor product done by ``e3nn_jax.legacy.FunctionalTensorProduct`` over exactly the same coupling
  paths in ``'uuu'`` mode (one weight per path and feature, the same parameter count as e3x's
  Tensor). e3nn has no FusedTensor, so the fused configuration has no e3nn column.

Timed: median wall time of the jitted forward pass and of forward+backward (gradient w.r.t.
parameters, inputs and basis), the libraries interleaved round-robin so that each sees the same
machine load, compile time, and XLA's temporary buffer size of the compiled programs
(``compiled.memory_analysis().temp_size_in_bytes``). Indices are runtime arguments (sparse
``dst_idx``/``src_idx``), not constants.

Usage::

    python benchmarks/bench_message_pass.py                    # all configs + pairs sweep
    python benchmarks/bench_message_pass.py --configs small    # a subset
    python benchmarks/bench_message_pass.py --no-sweep --repeats 3
    python benchmarks/bench_message_pass.py --device gpu --no-sweep   # on a GPU

Writes ``benchmarks/results/latest.json`` and ``benchmarks/results/latest.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _device import select_device  # noqa: E402
from _machine import cpu_model  # noqa: E402

DEVICE = select_device()

import e3nn_jax as e3nn  # noqa: E402
import e3x  # noqa: E402
import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from e3nn_jax.legacy import FunctionalTensorProduct  # noqa: E402


import eqx_mp  # noqa: E402
from _timing import compile_seconds, interleaved, scratch_mb  # noqa: E402
from eqx_mp.interop import from_e3x  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Config:
    name: str
    num_nodes: int
    neighbours: int
    features: int
    in_max_degree: int
    basis_max_degree: int
    num_basis: int = 16
    in_parity: int = 2
    include_pseudotensors: bool = True
    fused: bool = False

    @property
    def num_pairs(self) -> int:
        return self.num_nodes * self.neighbours


CONFIGS = {
    "small": Config("small", 64, 16, 32, 2, 2),
    "typical": Config("typical", 512, 24, 64, 2, 2),
    "high_degree": Config("high_degree", 256, 16, 32, 4, 4),
    "typical_P1": Config("typical_P1", 512, 24, 64, 2, 2, in_parity=1, include_pseudotensors=False),
    "typical_fused": Config("typical_fused", 512, 24, 64, 2, 2, fused=True),
}


def make_data(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed)
    n, m, f = cfg.num_nodes, cfg.neighbours, cfg.features
    x = rng.normal(size=(n, cfg.in_parity, (cfg.in_max_degree + 1) ** 2, f)).astype(np.float32)
    dst = np.repeat(np.arange(n), m).astype(np.int32)
    src = ((dst + rng.integers(1, n, size=dst.shape)) % n).astype(np.int32)
    b = rng.normal(size=(n * m, 1, (cfg.basis_max_degree + 1) ** 2, cfg.num_basis)).astype(np.float32)
    b /= np.sqrt(cfg.num_basis)
    return jnp.asarray(x), jnp.asarray(b), jnp.asarray(dst), jnp.asarray(src)


def loss_of(out):
    return jnp.sum(out * out) / out.size


# --------------------------------------------------------------------------------------------
# The three implementations; each returns (forward(params, x, b, dst, src), params).
# --------------------------------------------------------------------------------------------


def build_e3x(cfg: Config, x, b, dst, src):
    layer = e3x.nn.MessagePass(include_pseudotensors=cfg.include_pseudotensors, use_fused_tensor=cfg.fused)
    n = cfg.num_nodes
    params = layer.init(jax.random.PRNGKey(0), x, b, dst_idx=dst, src_idx=src, num_segments=n)

    def fwd(p, x, b, dst, src):
        return layer.apply(p, x, b, dst_idx=dst, src_idx=src, num_segments=n, indices_are_sorted=True)

    return layer, params, fwd


def build_eqx_mp(cfg: Config, layer, params, x, b, dst, src):
    ours = from_e3x(layer, params, x, b, dst_idx=dst, src_idx=src, num_segments=cfg.num_nodes)
    n = cfg.num_nodes

    def fwd(m, x, b, dst, src):
        return m(x, b, dst_idx=dst, src_idx=src, num_segments=n, indices_are_sorted=True)

    return ours, fwd


def _irreps(parity: int, max_degree: int, mul: int) -> e3nn.Irreps:
    if parity == 1:
        return e3nn.Irreps([(mul, (l, (-1) ** l)) for l in range(max_degree + 1)])
    return e3nn.Irreps([(mul, (l, 1)) for l in range(max_degree + 1)]
                       + [(mul, (l, -1)) for l in range(max_degree + 1)])


def build_e3nn(cfg: Config, ours: eqx_mp.MessagePass):
    """Same paths as eqx_mp/e3x, as e3nn 'uuu' instructions (one weight per path and feature)."""
    t = ours.tensor
    f = cfg.features
    ir1 = _irreps(1, t.max_degree1, f)
    ir2 = _irreps(t.parity2, t.max_degree2, f)
    ir3 = _irreps(t.out_parity, t.max_degree, f)

    def idx(parity, p, l, lmax):
        return l if parity == 1 else p * (lmax + 1) + l

    instructions = [
        (idx(1, p1, l1, t.max_degree1), idx(t.parity2, p2, l2, t.max_degree2),
         idx(t.out_parity, p3, l3, t.max_degree), "uuu", True)
        for p1, l1, p2, l2, p3, l3 in t.paths
    ]
    tp = FunctionalTensorProduct(ir1, ir2, ir3, instructions)
    rng = np.random.default_rng(1)
    weights = [jnp.asarray(rng.normal(size=ins.path_shape).astype(np.float32)) for ins in tp.instructions]
    filt = ours.filter.kernel[0]  # (Lb+1, K, F), same filter Dense as the others
    n = cfg.num_nodes
    lb = t.max_degree1

    def fwd(p, x, b, dst, src):
        weights, filt = p
        xs = x[src]  # (E, dim2) in e3nn layout
        blocks = []
        for l in range(lb + 1):
            y = b[:, 0, l * l:(l + 1) ** 2, :] @ filt[l]  # (E, 2l+1, F)
            blocks.append(jnp.swapaxes(y, -1, -2).reshape(y.shape[0], -1))  # (E, F*(2l+1))
        fa = e3nn.IrrepsArray(ir1, jnp.concatenate(blocks, axis=-1))
        xa = e3nn.IrrepsArray(ir2, xs)
        out = jax.vmap(tp.left_right, (None, 0, 0))(weights, fa, xa)
        return jax.ops.segment_sum(out.array, dst, num_segments=n, indices_are_sorted=True)

    def to_e3nn_layout(x):  # (N, P, D, F) -> (N, sum mul*(2l+1)) with the same irreps order
        parts = []
        for p in range(x.shape[-3]):
            for l in range(t.max_degree2 + 1):
                blk = x[:, p, l * l:(l + 1) ** 2, :]
                parts.append(jnp.swapaxes(blk, -1, -2).reshape(x.shape[0], -1))
        return jnp.concatenate(parts, axis=-1)

    nparams = sum(int(np.prod(w.shape)) for w in weights) + int(np.prod(filt.shape))
    return (weights, filt), fwd, to_e3nn_layout, nparams


# --------------------------------------------------------------------------------------------


def bench_config(cfg: Config, repeats: int, libs: tuple[str, ...]) -> dict:
    x, b, dst, src = make_data(cfg)
    layer, e3x_params, e3x_fwd = build_e3x(cfg, x, b, dst, src)
    ours, ours_fwd = build_eqx_mp(cfg, layer, e3x_params, x, b, dst, src)
    row: dict = {"config": dataclasses.asdict(cfg), "num_pairs": cfg.num_pairs,
                 "num_paths": len(ours.tensor.paths), "params_eqx_mp": eqx_mp.nn._common.count_params(ours)}
    args = (x, b, dst, src)

    impls = {}
    if "eqx_mp" in libs:
        impls["eqx_mp"] = (ours, ours_fwd, x)
    if "e3x" in libs:
        impls["e3x"] = (e3x_params, e3x_fwd, x)
    if "e3nn" in libs and not cfg.fused:
        p, fwd, to_layout, nparams = build_e3nn(cfg, ours)
        impls["e3nn"] = (p, fwd, to_layout(x))
        row["params_e3nn"] = nparams

    # Correctness before timing: eqx_mp == e3x.
    if "eqx_mp" in impls and "e3x" in impls:
        a = jax.jit(ours_fwd)(ours, *args)
        r = jax.jit(e3x_fwd)(e3x_params, *args)
        rel = float(jnp.linalg.norm(a - r) / jnp.linalg.norm(r))
        row["max_rel_err_vs_e3x"] = rel
        if not rel < 1e-4:
            raise AssertionError(f"{cfg.name}: eqx_mp and e3x disagree (relative error {rel:.2e})")

    compiled = {}
    for name, (params, fwd, xin) in impls.items():
        a = (params, xin, b, dst, src)
        grad = jax.jit(jax.value_and_grad(lambda p, x, b, d, s: loss_of(fwd(p, x, b, d, s)), argnums=(0, 1, 2)))
        cf, t_f = compile_seconds(jax.jit(fwd), a)
        cg, t_g = compile_seconds(grad, a)
        compiled[name] = (cf, cg, a)
        row[f"{name}_compile_s"] = t_f + t_g
        row[f"{name}_fwd_scratch_mb"] = scratch_mb(cf)
        row[f"{name}_fwdbwd_scratch_mb"] = scratch_mb(cg)
    fwd_ms = interleaved({n: (c[0], c[2]) for n, c in compiled.items()}, repeats)
    bwd_ms = interleaved({n: (c[1], c[2]) for n, c in compiled.items()}, repeats)
    for name in impls:
        row[f"{name}_fwd_ms"], row[f"{name}_fwdbwd_ms"] = fwd_ms[name], bwd_ms[name]
        print(f"  {name:7s} fwd {row[f'{name}_fwd_ms']:9.1f} ms   fwd+bwd {row[f'{name}_fwdbwd_ms']:9.1f} ms   "
              f"scratch {row[f'{name}_fwdbwd_scratch_mb']:8.1f} MB   (compile {row[f'{name}_compile_s']:.1f} s)",
              flush=True)
    for other in ("e3x", "e3nn"):
        if "eqx_mp" in impls and other in impls:
            for k in ("fwd_ms", "fwdbwd_ms", "fwdbwd_scratch_mb"):
                row[f"ratio_{k}_vs_{other}"] = row[f"eqx_mp_{k}"] / row[f"{other}_{k}"]
    return row


def print_table(rows: list[dict]) -> None:
    print("\n| config | pairs | lib | fwd ms | fwd+bwd ms | fwd+bwd scratch MB | eqx_mp/lib fwd | eqx_mp/lib fwd+bwd | eqx_mp/lib scratch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        for lib in ("eqx_mp", "e3x", "e3nn"):
            if f"{lib}_fwd_ms" not in r:
                continue
            ratio = ("", "", "") if lib == "eqx_mp" else tuple(
                f"{r.get(f'ratio_{k}_vs_{lib}', float('nan')):.3f}" for k in ("fwd_ms", "fwdbwd_ms", "fwdbwd_scratch_mb"))
            print(f"| {r['config']['name']} | {r['num_pairs']} | {lib} | {r[f'{lib}_fwd_ms']:.1f} | "
                  f"{r[f'{lib}_fwdbwd_ms']:.1f} | {r[f'{lib}_fwdbwd_scratch_mb']:.1f} | {ratio[0]} | {ratio[1]} | {ratio[2]} |")


def plot(rows: list[dict], sweep: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        print("matplotlib not installed: no plot")
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names = [r["config"]["name"] for r in rows]
    xs = np.arange(len(names))
    for i, lib in enumerate(("eqx_mp", "e3x", "e3nn")):
        vals = [r.get(f"{lib}_fwdbwd_ms", np.nan) for r in rows]
        axes[0].bar(xs + (i - 1) * 0.27, vals, 0.27, label=lib)
    axes[0].set_xticks(xs, names, rotation=20)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("forward+backward [ms]")
    axes[0].legend()
    if sweep:
        for lib in ("eqx_mp", "e3x", "e3nn"):
            pts = [(r["num_pairs"], r[f"{lib}_fwdbwd_ms"], r[f"{lib}_fwdbwd_scratch_mb"]) for r in sweep if f"{lib}_fwdbwd_ms" in r]
            if pts:
                p, t, m = zip(*pts)
                axes[1].loglog(p, t, "o-", label=lib)
                axes[2].loglog(p, m, "o-", label=lib)
        axes[1].set_xlabel("pairs")
        axes[1].set_ylabel("forward+backward [ms]")
        axes[2].set_xlabel("pairs")
        axes[2].set_ylabel("fwd+bwd XLA scratch [MB]")
        axes[1].legend()
        axes[2].legend()
    fig.suptitle("MessagePass (F=64, L=2, P=2 in the sweep)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of " + ",".join(CONFIGS))
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions (median is reported)")
    parser.add_argument("--no-sweep", action="store_true", help="skip the pairs sweep")
    parser.add_argument("--sweep-pairs", default="1000,3000,10000,30000,100000",
                        help="pair counts of the sweep (typical layer, F=64, L=2)")
    parser.add_argument("--sweep-others-max-pairs", type=int, default=12288,
                        help="run e3x/e3nn in the sweep only up to this many pairs (e3x needs ~170 KB/pair)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "gpu"), help="where to run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" /
                                             ("latest_gpu.json" if DEVICE == "gpu" else "latest.json")))
    args = parser.parse_args(argv)

    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cpus), e3x {e3x.__version__}, e3nn-jax {e3nn.__version__}, eqx_mp {eqx_mp.__version__}")
    rows = []
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        print(f"{cfg.name}: N={cfg.num_nodes} M={cfg.neighbours} pairs={cfg.num_pairs} F={cfg.features} "
              f"L={cfg.in_max_degree} Lb={cfg.basis_max_degree} K={cfg.num_basis} P={cfg.in_parity} "
              f"pseudo={cfg.include_pseudotensors} fused={cfg.fused}", flush=True)
        rows.append(bench_config(cfg, args.repeats, ("eqx_mp", "e3x", "e3nn")))
    sweep = []
    if not args.no_sweep:
        for pairs in [int(p) for p in args.sweep_pairs.split(",")]:
            m = 24
            n = max(2, pairs // m)
            cfg = Config(f"sweep_{pairs}", n, m, 64, 2, 2)
            libs = ("eqx_mp", "e3x", "e3nn") if cfg.num_pairs <= args.sweep_others_max_pairs else ("eqx_mp",)
            print(f"sweep: pairs={cfg.num_pairs} ({', '.join(libs)})", flush=True)
            if libs == ("eqx_mp",):
                sweep.append(bench_eqx_only(cfg, args.repeats))
            else:
                sweep.append(bench_config(cfg, args.repeats, libs))
    print_table(rows + sweep)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "sweep": sweep, "jax": jax.__version__,
                               "cpu": cpu_model(), "cpus": os.cpu_count(),
                               "python": sys.version.split()[0]}, indent=1))
    print(f"results: {out}")
    plot(rows, sweep, out.with_suffix(".png"))
    return 0


def bench_eqx_only(cfg: Config, repeats: int) -> dict:
    """eqx_mp alone (large sweep points where e3x would need many GB)."""
    x, b, dst, src = make_data(cfg)
    ours = eqx_mp.MessagePass(cfg.features, cfg.num_basis, cfg.in_max_degree, cfg.basis_max_degree,
                              in_parity=cfg.in_parity, key=jax.random.key(0))
    n = cfg.num_nodes

    def fwd(m, x, b, dst, src):
        return m(x, b, dst_idx=dst, src_idx=src, num_segments=n, indices_are_sorted=True)

    a = (ours, x, b, dst, src)
    grad = jax.jit(jax.value_and_grad(lambda p, x, b, d, s: loss_of(fwd(p, x, b, d, s)), argnums=(0, 1, 2)))
    cf, _ = compile_seconds(jax.jit(fwd), a)
    cg, _ = compile_seconds(grad, a)
    ms = interleaved({"fwd": (cf, a), "fwdbwd": (cg, a)}, repeats)
    row = {"config": dataclasses.asdict(cfg), "num_pairs": cfg.num_pairs,
           "eqx_mp_fwd_ms": ms["fwd"], "eqx_mp_fwdbwd_ms": ms["fwdbwd"],
           "eqx_mp_fwd_scratch_mb": scratch_mb(cf), "eqx_mp_fwdbwd_scratch_mb": scratch_mb(cg)}
    print(f"  eqx_mp  fwd {row['eqx_mp_fwd_ms']:9.1f} ms   fwd+bwd {row['eqx_mp_fwdbwd_ms']:9.1f} ms   "
          f"scratch {row['eqx_mp_fwdbwd_scratch_mb']:8.1f} MB", flush=True)
    return row


if __name__ == "__main__":
    sys.exit(main())
