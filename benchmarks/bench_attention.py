"""Side-by-side benchmark of SelfAttention and TensorDense: eqx_mp vs e3x, in ONE process.

For every configuration the e3x layer (flax) is initialised normally and converted with
``eqx_mp.interop.from_e3x`` (identical weights); outputs are checked equal before anything is
timed. Timed like ``bench_message_pass.py`` (the helpers of ``_timing.py``): medians of the
jitted forward and forward+backward (gradients w.r.t. parameters, inputs and basis), timed
round-robin across the libraries, and XLA's temporary buffer size of the compiled programs. Indices are runtime arguments (sparse ``dst_idx``/``src_idx``).

Usage::

    python benchmarks/bench_attention.py                      # all configs
    python benchmarks/bench_attention.py --configs small --repeats 3

Writes ``benchmarks/results/attention.json`` and prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from pathlib import Path

import e3x
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import compile_seconds, interleaved, scratch_mb  # noqa: E402

import eqx_mp  # noqa: E402
from eqx_mp.interop import from_e3x  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Config:
    name: str
    module: str  # "SelfAttention" or "TensorDense"
    num_nodes: int
    neighbours: int
    features: int
    max_degree: int
    basis_max_degree: int = 2
    num_basis: int = 16
    num_heads: int = 4

    @property
    def num_pairs(self) -> int:
        return self.num_nodes * self.neighbours


CONFIGS = {
    "small": Config("small", "SelfAttention", 64, 16, 32, 2),
    "typical": Config("typical", "SelfAttention", 512, 24, 64, 2),
    "high_degree": Config("high_degree", "SelfAttention", 256, 16, 32, 4, basis_max_degree=4),
    "tensor_dense": Config("tensor_dense", "TensorDense", 4096, 0, 64, 2),
}


def make_data(cfg: Config, seed: int = 0):
    rng = np.random.default_rng(seed)
    n, m, f = cfg.num_nodes, cfg.neighbours, cfg.features
    x = rng.normal(size=(n, 2, (cfg.max_degree + 1) ** 2, f)).astype(np.float32)
    dst = np.repeat(np.arange(n), m).astype(np.int32)
    src = ((dst + rng.integers(1, n, size=dst.shape)) % n).astype(np.int32)
    b = rng.normal(size=(n * m, 1, (cfg.basis_max_degree + 1) ** 2, cfg.num_basis)).astype(
        np.float32
    )
    b /= np.sqrt(cfg.num_basis)
    return jnp.asarray(x), jnp.asarray(b), jnp.asarray(dst), jnp.asarray(src)


def build(cfg: Config, x, b, dst, src):
    """``((e3x_params, e3x_fwd), (ours, ours_fwd))`` with ``fwd(params, x, b, dst, src)``."""
    n = cfg.num_nodes
    if cfg.module == "TensorDense":
        layer = e3x.nn.TensorDense(max_degree=cfg.max_degree)
        params = layer.init(jax.random.PRNGKey(0), x)
        ours = from_e3x(layer, params, x)
        return (params, lambda p, x, b, d, s: layer.apply(p, x)), (ours, lambda m, x, b, d, s: m(x))
    layer = e3x.nn.SelfAttention(num_heads=cfg.num_heads)
    kw = dict(dst_idx=dst, src_idx=src, num_segments=n)
    params = layer.init(jax.random.PRNGKey(0), x, b, **kw)
    ours = from_e3x(layer, params, x, b, **kw)

    def e3x_fwd(p, x, b, d, s):
        return layer.apply(p, x, b, dst_idx=d, src_idx=s, num_segments=n, indices_are_sorted=True)

    def ours_fwd(m, x, b, d, s):
        return m(x, b, dst_idx=d, src_idx=s, num_segments=n, indices_are_sorted=True)

    return (params, e3x_fwd), (ours, ours_fwd)


def bench_config(cfg: Config, repeats: int) -> dict:
    x, b, dst, src = make_data(cfg)
    (e3x_params, e3x_fwd), (ours, ours_fwd) = build(cfg, x, b, dst, src)
    args = (x, b, dst, src)
    a = jax.jit(ours_fwd)(ours, *args)
    r = jax.jit(e3x_fwd)(e3x_params, *args)
    rel = float(jnp.linalg.norm(a - r) / jnp.linalg.norm(r))
    if not rel < 1e-4:
        raise AssertionError(f"{cfg.name}: eqx_mp and e3x disagree (relative error {rel:.2e})")
    row: dict = {
        "config": dataclasses.asdict(cfg),
        "num_pairs": cfg.num_pairs,
        "max_rel_err_vs_e3x": rel,
    }
    fwd_fns, grad_fns = {}, {}
    for name, params, fwd in (("eqx_mp", ours, ours_fwd), ("e3x", e3x_params, e3x_fwd)):
        a = (params, *args)

        def loss(p, x, b, d, s, fwd=fwd):
            out = fwd(p, x, b, d, s)
            return jnp.sum(out * out) / out.size

        jf, t_fwd = compile_seconds(jax.jit(fwd), a)
        grad, t_grad = compile_seconds(jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2))), a)
        row[f"{name}_compile_s"] = t_fwd + t_grad
        row[f"{name}_fwdbwd_scratch_mb"] = scratch_mb(grad)
        fwd_fns[name], grad_fns[name] = (jf, a), (grad, a)
    # Timed round-robin across the libraries, so that both see the same machine load.
    for key, fns in (("fwd_ms", fwd_fns), ("fwdbwd_ms", grad_fns)):
        for name, t in interleaved(fns, repeats).items():
            row[f"{name}_{key}"] = t
    for name in ("eqx_mp", "e3x"):
        print(
            f"  {name:7s} fwd {row[f'{name}_fwd_ms']:9.1f} ms   "
            f"fwd+bwd {row[f'{name}_fwdbwd_ms']:9.1f} ms   "
            f"scratch {row[f'{name}_fwdbwd_scratch_mb']:8.1f} MB   "
            f"(compile {row[f'{name}_compile_s']:.1f} s)",
            flush=True,
        )
    for k in ("fwd_ms", "fwdbwd_ms", "fwdbwd_scratch_mb"):
        row[f"ratio_{k}"] = row[f"e3x_{k}"] / row[f"eqx_mp_{k}"]
    return row


def print_table(rows: list[dict]) -> None:
    print(
        "\n| config | lib | fwd ms | fwd+bwd ms | fwd+bwd scratch MB | e3x / eqx_mp fwd | fwd+bwd | scratch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        c = r["config"]
        label = (
            f"{c['name']} ({c['module']}, N={c['num_nodes']}, M={c['neighbours']}, F={c['features']}, "
            f"L={c['max_degree']})"
        )
        for lib in ("eqx_mp", "e3x"):
            ratios = (
                ("", "", "")
                if lib == "eqx_mp"
                else tuple(
                    f"{r[f'ratio_{k}']:.1f}x" for k in ("fwd_ms", "fwdbwd_ms", "fwdbwd_scratch_mb")
                )
            )
            print(
                f"| {label if lib == 'eqx_mp' else ''} | {lib} | {r[f'{lib}_fwd_ms']:.1f} | "
                f"{r[f'{lib}_fwdbwd_ms']:.1f} | {r[f'{lib}_fwdbwd_scratch_mb']:.1f} | "
                f"{ratios[0]} | {ratios[1]} | {ratios[2]} |"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help="comma-separated subset of " + ",".join(CONFIGS),
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repetitions (median is reported)"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "attention.json"))
    args = parser.parse_args(argv)
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cpus), e3x {e3x.__version__}, eqx_mp {eqx_mp.__version__}"
    )
    rows = []
    for name in args.configs.split(","):
        cfg = CONFIGS[name]
        print(
            f"{cfg.name}: {cfg.module} N={cfg.num_nodes} M={cfg.neighbours} F={cfg.features} "
            f"L={cfg.max_degree} Lb={cfg.basis_max_degree} heads={cfg.num_heads}",
            flush=True,
        )
        rows.append(bench_config(cfg, args.repeats))
    print_table(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"rows": rows, "jax": jax.__version__, "python": sys.version.split()[0]}, indent=1
        )
    )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
