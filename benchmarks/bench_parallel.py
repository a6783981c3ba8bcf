"""Edge-sharded vs unsharded MessagePass on simulated CPU devices (correctness, not speed-up).

    python benchmarks/bench_parallel.py [--devices 4] [--nodes 256] [--edges 8192] [--repeats 5]

The simulated devices (``--xla_force_host_platform_device_count``) share the same CPU cores, so
this run shows that the sharded layer compiles, agrees with the unsharded one and what the
collective costs on one host; it cannot show a speed-up. On real accelerators each device holds
only ``E / D`` edges' gathered inputs, filters and products, which is what lets graphs larger
than one device's memory run at all.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=4, help="simulated CPU devices")
    p.add_argument("--nodes", type=int, default=256)
    p.add_argument("--edges", type=int, default=8192)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--max-degree", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    # Must happen before JAX initialises its backends.
    flag = f"--xla_force_host_platform_device_count={args.devices}"
    os.environ["XLA_FLAGS"] = (flag + " " + os.environ.get("XLA_FLAGS", "")).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from eqx_mp import nn, parallel

    n, e, f, lmax = args.nodes, args.edges, args.features, args.max_degree
    d = (lmax + 1) ** 2
    mp = nn.MessagePass(f, 8, in_max_degree=lmax, basis_max_degree=lmax, key=jax.random.key(0))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(n, 2, d, f)), jnp.float32)
    basis = jnp.asarray(rng.normal(size=(e, 1, d, 8)), jnp.float32)
    dst = jnp.asarray(np.sort(rng.integers(0, n, size=e)), jnp.int32)
    src = jnp.asarray(rng.integers(0, n, size=e), jnp.int32)
    mesh = parallel.make_mesh(args.devices, axis_name="edges")

    def unsharded(m, x, b):
        return m(x, b, dst_idx=dst, src_idx=src, num_segments=n, indices_are_sorted=True)

    def sharded(m, x, b):
        return parallel.edge_sharded_message_pass(m, x, b, dst_idx=dst, src_idx=src, num_segments=n,
                                                  mesh=mesh, indices_are_sorted=True)

    def grad_of(fn):
        return eqx.filter_jit(eqx.filter_grad(lambda m, x, b: jnp.sum(fn(m, x, b) ** 2)))

    def bench(fn):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(mp, x, basis))
        compile_s = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(mp, x, basis))
            times.append(time.perf_counter() - t0)
        return compile_s, float(np.median(times))

    print(f"{jax.device_count()} simulated {jax.devices()[0].platform} devices sharing "
          f"{os.cpu_count()} cores; N={n} nodes, E={e} edges ({e // args.devices} per device), "
          f"F={f}, L={lmax}, P=2")
    rows = [
        ("forward, unsharded", eqx.filter_jit(unsharded)),
        (f"forward, edges over {args.devices} devices", eqx.filter_jit(sharded)),
        ("forward+grad, unsharded", grad_of(unsharded)),
        (f"forward+grad, edges over {args.devices} devices", grad_of(sharded)),
    ]
    results = [(name, *bench(fn)) for name, fn in rows]
    ref, out = rows[0][1](mp, x, basis), rows[1][1](mp, x, basis)
    print(f"max |sharded - unsharded| = {float(jnp.max(jnp.abs(out - ref))):.2e} "
          f"(max |output| {float(jnp.max(jnp.abs(ref))):.2e})")
    for name, c, t in results:
        print(f"{name:<36} {1e3 * t:9.2f} ms (median of {args.repeats}; first call incl. compile {c:.1f} s)")
    print("note: simulated devices share the host's cores (each device runs on its own thread, so "
          "the sharded run may use more cores than the unsharded one); this shows correctness "
          "and overhead, not the speed-up of real devices.")


if __name__ == "__main__":
    main()
