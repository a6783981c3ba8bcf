"""Every schedule of the contraction engine computes what the default does.

The schedules (``eqx_mp.Config.schedule`` / ``EQX_MP_SCHEDULE``, see
:mod:`eqx_mp.nn._cg.schedule`) change only the order of the sums: cache-sized blocks with
looped contractions (the CPU schedule, on any number of cores) and the whole pair axis with
vectorised contractions (the GPU schedule, forced here on the CPU). Values and derivatives of
first, second and third order of ``MessagePass``, ``Tensor``, ``FusedTensor``,
``MultiHeadAttention`` and of a force-training step agree with the default's to 1e-6 (float32)
and 1e-12 (float64), normwise relative per leaf.

The countable evidence for the GPU schedule: in the compiled force-training step its number of
sequential loop iterations does not grow with the pairs (256 and 2,048 atoms) and stays at most
1,000, while the CPU schedule's grows with them.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _hlo import loop_stats

import eqx_mp
from eqx_mp.nn._cg import schedule

#: Config.schedule values: looped blocks, whole-axis wide.
SCHEDULES = {"cpu": "cpu", "gpu": "gpu"}
RTOL = {jnp.float32: 1e-6, jnp.float64: 1e-12}


def _rel_errors(actual, desired) -> list[float]:
    out = []
    for a, d in zip(jax.tree.leaves(actual), jax.tree.leaves(desired), strict=True):
        a, d = np.asarray(a, np.float64), np.asarray(d, np.float64)
        assert a.shape == d.shape
        out.append(float(np.linalg.norm(a - d) / max(np.linalg.norm(d), 1e-300)))
    return out


def _under(setting: str | None, fn, *args):
    """``fn(*args)`` traced and compiled afresh under a schedule (``setting``) or the default."""
    prev_schedule = eqx_mp.Config.schedule
    try:
        if setting is not None:
            eqx_mp.Config.set_schedule(setting)
        return jax.block_until_ready(eqx.filter_jit(fn)(*args))
    finally:
        eqx_mp.Config.schedule = prev_schedule


def _orders(loss, params, x):
    """A function of ``(params, x)`` returning the value and derivatives of order 1, 2 and 3 of
    ``loss(params, x)``: the gradient w.r.t. both, the parameter gradient of the squared input
    gradient (training on forces: reverse over reverse) and a directional derivative of that
    (forward over reverse over reverse)."""

    def force_loss(p, x):
        g = jax.grad(loss, argnums=1)(p, x)
        return jnp.sum(g ** 2)

    def all_orders(p, x):
        value, grads = jax.value_and_grad(loss, argnums=(0, 1))(p, x)
        second = jax.grad(force_loss)(p, x)
        tangent = jax.tree.map(lambda a: jnp.ones_like(a) / a.size, p)
        third = jax.jvp(lambda q: jax.grad(force_loss)(q, x), (p,), (tangent,))[1]
        return value, grads, second, third

    return all_orders


def _check_all_schedules(fn, args, dtype):
    reference = _under(None, fn, *args)
    for name, setting in SCHEDULES.items():
        got = _under(setting, fn, *args)
        for order, (a, d) in enumerate(zip(got, reference)):
            err = max(_rel_errors(a, d))
            assert err <= RTOL[dtype], f"{name}: order {order} differs by {err:.2e}"


def _graph(rng, n=7, m=4):
    dst = np.repeat(np.arange(n), m)
    src = rng.integers(0, n + 1, size=n * m)  # n: padding pairs
    return jnp.asarray(dst), jnp.asarray(src)


@pytest.mark.parametrize("fused", [False, True], ids=["tensor", "fused"])
def test_message_pass(dtype, fused):
    rng = np.random.default_rng(0)
    dst, src = _graph(rng)
    x = jnp.asarray(rng.normal(size=(7, 2, 9, 3)), dtype)
    b = jnp.asarray(rng.normal(size=(dst.shape[0], 1, 9, 4)), dtype)
    mp = eqx_mp.nn.MessagePass(3, 4, 2, 2, use_fused_tensor=fused, use_basis_bias=True,
                               param_dtype=dtype, key=jax.random.key(1))
    params, static = eqx.partition(mp, eqx.is_array)

    def loss(p, b):
        out = eqx.combine(p, static)(x, b, dst_idx=dst, src_idx=src)
        return jnp.sum(jnp.sin(out))

    _check_all_schedules(_orders(loss, params, b), (params, b), dtype)


@pytest.mark.parametrize("fused", [False, True], ids=["Tensor", "FusedTensor"])
def test_tensor_products(dtype, fused):
    rng = np.random.default_rng(2)
    x1 = jnp.asarray(rng.normal(size=(5, 2, 4, 3)), dtype)
    x2 = jnp.asarray(rng.normal(size=(5, 2, 9, 3)), dtype)
    cls = eqx_mp.nn.FusedTensor if fused else eqx_mp.nn.Tensor
    layer = cls(3, 1, 2, max_degree=2, param_dtype=dtype, key=jax.random.key(3))
    params, static = eqx.partition(layer, eqx.is_array)

    def loss(p, x1):
        return jnp.sum(jnp.cos(eqx.combine(p, static)(x1, x2)))

    _check_all_schedules(_orders(loss, params, x1), (params, x1), dtype)


def test_attention(dtype):
    rng = np.random.default_rng(4)
    dst, src = _graph(rng, n=5, m=3)
    xq = jnp.asarray(rng.normal(size=(5, 2, 4, 4)), dtype)
    xkv = jnp.asarray(rng.normal(size=(5, 2, 4, 4)), dtype)
    b = jnp.asarray(rng.normal(size=(dst.shape[0], 1, 4, 3)), dtype)
    mha = eqx_mp.nn.MultiHeadAttention(4, 4, 1, 1, 3, 1, num_heads=2, param_dtype=dtype,
                                       key=jax.random.key(5))
    params, static = eqx.partition(mha, eqx.is_array)

    def loss(p, b):
        out = eqx.combine(p, static)(xq, xkv, b, dst_idx=dst, src_idx=src)
        return jnp.sum(jnp.sin(out))

    _check_all_schedules(_orders(loss, params, b), (params, b), dtype)


class _Potential(eqx.Module):
    """A small e3x-style potential: Embed -> basis -> 2 x [MessagePass -> add -> Dense -> silu]
    -> scalar readout. Built here from public layers (independent of ``eqx_mp.models``)."""

    embed: eqx_mp.nn.Embed
    passes: tuple
    denses: tuple
    readout: eqx_mp.nn.Dense
    cutoff: float = eqx.field(static=True)

    def __init__(self, features: int, dtype, *, key):
        keys = jax.random.split(key, 6)
        self.cutoff = 4.0
        self.embed = eqx_mp.nn.Embed(10, features, param_dtype=dtype, key=keys[0])
        self.passes = tuple(
            eqx_mp.nn.MessagePass(features, 8, 0 if i == 0 else 2, 2, in_parity=1, max_degree=2,
                                  include_pseudotensors=False, param_dtype=dtype, key=keys[1 + i])
            for i in range(2))
        self.denses = tuple(eqx_mp.nn.Dense(features, features, 2, parity=1, param_dtype=dtype,
                                            key=keys[3 + i]) for i in range(2))
        self.readout = eqx_mp.nn.Dense(features, 1, 0, parity=1, param_dtype=dtype, key=keys[5])

    def __call__(self, numbers, positions, dst, src):
        r = positions[src] - positions[dst]
        basis = eqx_mp.nn.basis(
            r, max_degree=2, num=8, radial_fn=eqx_mp.nn.reciprocal_bernstein,
            cutoff_fn=lambda d: eqx_mp.nn.smooth_cutoff(d, cutoff=self.cutoff))
        x = self.embed(numbers)
        for mp, dense in zip(self.passes, self.denses):
            y = mp(x, basis, dst_idx=dst, src_idx=src, num_segments=numbers.shape[0])
            x = eqx_mp.nn.silu(dense(eqx_mp.nn.add(x, y)))
        return jnp.sum(self.readout(x[..., 0:1, 0:1, :]))


def _system(num_atoms: int, dtype, cutoff: float = 4.0, spacing: float = 2.25):
    """Atoms on a jittered cubic lattice (liquid-like density) and their sorted neighbour list."""
    rng = np.random.default_rng(num_atoms)
    side = int(np.ceil(num_atoms ** (1 / 3)))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = (grid[:num_atoms] + rng.uniform(-0.2, 0.2, (num_atoms, 3))) * spacing
    d = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    dst, src = np.nonzero((d < cutoff) & (d > 0))
    numbers = rng.integers(1, 10, num_atoms)
    return (jnp.asarray(numbers), jnp.asarray(pos, dtype), jnp.asarray(dst, jnp.int32),
            jnp.asarray(src, jnp.int32))


def _training_step(model, numbers, dst, src):
    """``value_and_grad`` w.r.t. the parameters of ``(E - E_ref)**2 + mean((F - F_ref)**2)``."""
    params, static = eqx.partition(model, eqx.is_array)

    def loss(p, positions, e_ref, f_ref):
        energy, grad = jax.value_and_grad(
            lambda r: eqx.combine(p, static)(numbers, r, dst, src))(positions)
        return (energy - e_ref) ** 2 + jnp.mean((-grad - f_ref) ** 2)

    return params, jax.value_and_grad(loss)


def test_force_training_step(dtype):
    numbers, pos, dst, src = _system(12, dtype)
    model = _Potential(4, dtype, key=jax.random.key(6))
    params, step = _training_step(model, numbers, dst, src)
    f_ref = jnp.asarray(np.random.default_rng(7).normal(size=pos.shape), dtype)
    _check_all_schedules(lambda p, r: step(p, r, 1.0, f_ref), (params, pos), dtype)


def _compiled_step_stats(setting, num_atoms):
    numbers, pos, dst, src = _system(num_atoms, jnp.float32)
    model = _Potential(16, jnp.float32, key=jax.random.key(0))
    params, step = _training_step(model, numbers, dst, src)
    prev_schedule = eqx_mp.Config.schedule
    try:
        eqx_mp.Config.set_schedule(setting)
        text = jax.jit(step).lower(params, pos, 0.0, jnp.zeros_like(pos)).compile().as_text()
    finally:
        eqx_mp.Config.schedule = prev_schedule
    return int(dst.shape[0]), loop_stats(text)


@pytest.mark.slow
def test_gpu_schedule_loop_count_does_not_grow_with_pairs():
    """Compiled force-training step (compiled only, on the CPU) at 256 and 2,048 atoms: the GPU
    schedule's sequential loop iterations stay at most 1,000 and equal at both sizes (all pairs
    fit its memory budget); the CPU schedule's grow with the pairs."""
    stats = {}
    for name in ("gpu", "cpu"):
        for atoms in (256, 2048):
            stats[name, atoms] = _compiled_step_stats(SCHEDULES[name], atoms)
    pairs_small, gpu_small = stats["gpu", 256]
    pairs_large, gpu_large = stats["gpu", 2048]
    assert pairs_large > 7 * pairs_small
    assert gpu_small.iterations == gpu_large.iterations <= 1000, (gpu_small, gpu_large)
    assert gpu_large.fusions < 1000
    cpu_small, cpu_large = stats["cpu", 256][1], stats["cpu", 2048][1]
    assert cpu_large.iterations > 5 * cpu_small.iterations > 0, (cpu_small, cpu_large)


def test_loop_stats_counts_nested_trip_counts():
    """The counter itself: a loop of 3 inside a loop of 5 is 5 + 15 sequential iterations."""

    def f(x):
        def outer(i, x):
            return jax.lax.fori_loop(0, 3, lambda j, y: jnp.sin(y) + j, x) * 0.5 + i

        return jax.lax.fori_loop(0, 5, outer, x)

    stats = loop_stats(jax.jit(f).lower(jnp.ones(4)).compile().as_text())
    assert (stats.loops, stats.iterations) == (2, 20)


def test_cpu_schedule_is_looped_whatever_the_cores():
    """The CPU schedule is the looped one for any affinity and any number of CPU devices (the
    resolution reads neither; a multi-core body was removed, ``docs/performance.md``)."""
    import subprocess
    import sys

    code = ("import jax; from eqx_mp.nn._cg import schedule\n"
            "s = schedule.resolve('auto', 'cpu')\n"
            "print(jax.local_device_count('cpu'), "
            "f'block_bytes={s.block_bytes}, wide={s.wide}')")
    mine = sorted(__import__("os").sched_getaffinity(0))
    one, every = str(mine[0]), ",".join(map(str, mine))
    for devices, cores in ((1, one), (1, every), (2, every)):
        flags = f"--xla_force_host_platform_device_count={devices}"
        out = subprocess.run(["taskset", "-c", cores, sys.executable, "-c", code],
                             capture_output=True, text=True,
                             env={**__import__("os").environ, "XLA_FLAGS": flags,
                                  "JAX_PLATFORMS": "cpu"})
        assert out.stdout.split()[0] == str(devices), out.stderr
        assert f"block_bytes={schedule.CPU_BLOCK_BYTES}, wide=False" in out.stdout, out.stdout


def test_schedule_setting_is_validated_and_documented():
    with pytest.raises(ValueError, match="'auto', 'cpu', 'gpu'"):
        eqx_mp.Config.set_schedule("fastest")
    assert eqx_mp.Config.schedule in ("auto", "cpu", "gpu")
    gpu = schedule.resolve("auto", "cuda")
    assert gpu.name == "gpu" and gpu.wide
    assert schedule.resolve("auto", "cpu").name == "cpu"


def test_environment_variable_sets_the_initial_schedule():
    import subprocess
    import sys

    code = "import eqx_mp; print(eqx_mp.Config.schedule)"
    for value, expected in (("gpu", "gpu"), ("CPU", "cpu"), ("", "auto")):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**__import__("os").environ, "EQX_MP_SCHEDULE": value})
        assert out.stdout.strip() == expected, out.stderr
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "EQX_MP_SCHEDULE": "tpu"})
    assert bad.returncode != 0 and "EQX_MP_SCHEDULE must be one of" in bad.stderr


def test_lowering_for_a_gpu_uses_the_gpu_schedule():
    """Exported for CUDA (lowered only; no GPU needed), a message pass has no loop over pairs
    or terms; exported for the CPU, it has both."""
    rng = np.random.default_rng(8)
    dst, src = _graph(rng, n=40, m=12)
    x = jnp.asarray(rng.normal(size=(40, 2, 9, 8)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(dst.shape[0], 1, 9, 4)), jnp.float32)
    mp = eqx_mp.nn.MessagePass(8, 4, 2, 2, key=jax.random.key(9))

    def f(x, b):
        return mp(x, b, dst_idx=dst, src_idx=src)

    cuda = jax.export.export(jax.jit(f), platforms=["cuda"])(x, b).mlir_module()
    cpu = jax.export.export(jax.jit(f), platforms=["cpu"])(x, b).mlir_module()
    assert "stablehlo.while" not in cuda
    assert cpu.count("stablehlo.while") >= 2
