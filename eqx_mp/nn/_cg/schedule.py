"""How the engine runs a program on a backend: its *schedule*, chosen when the primitive is lowered.

The primitive, its programs and its JVP, transpose and batching rules are one; only the loop
that evaluates a program (:func:`~.engine.run`) differs per backend:

* ``"cpu"``: cache-sized blocks in a ``fori_loop``. XLA's CPU backend spreads a large fused
  elementwise kernel over its threads, but not an in-place update (``dynamic_update_slice``) or
  a loop; so the body depends on the cores the process may use:

  - one core (per CPU device: a process with ``D`` CPU devices gives each ``cores / D``):
    blocks of a few hundred pairs (:data:`CPU_BLOCK_BYTES` of working set), and each
    contraction a ``fori_loop`` over chunks of a few Clebsch-Gordan terms that accumulate in
    place. Everything stays in the core's cache; few instructions, little memory traffic.
  - several cores: blocks of :data:`CPU_CORE_BLOCK_BYTES` per core, one stream of pairs per
    core in each fused kernel, and the contractions vectorised as on the GPU (below), so that
    every kernel of the block is wide enough for XLA to split across the cores. This is for
    message passing (graphs with gathers and scatters); the node-wise products of ``Tensor``,
    ``FusedTensor`` and ``TensorDense`` (``"pairs"`` graphs) run looped as on one core
    (:func:`for_graph`): vectorised, their derivatives on two cores were 1.4-25x slower than
    looped on one core (``F=32``, ``L=2``, 10,000 down to 144 atoms); looped, they are as fast
    on two cores as on one, or faster.
* ``"gpu"``: wide blocks sized by a memory budget (by default the whole pair axis when it fits in
  :data:`GPU_MEMORY_FRACTION` of the device's memory), and the contraction vectorised: no loop
  over terms, one fused elementwise pass per term position of every output slot at once. A layer
  call is tens of large fused kernels instead of thousands of small ones; the number of
  sequential loop iterations does not grow with the number of pairs while they fit the budget.

Which schedule runs is decided, in this order, by :attr:`eqx_mp.Config.schedule` (``"auto"``,
``"cpu"`` or ``"gpu"``; set with :meth:`eqx_mp.Config.set_schedule`), whose initial value is
the environment variable ``EQX_MP_SCHEDULE`` (read when eqx_mp is imported), and, for
``"auto"``, the platform the primitive is lowered for (``cpu`` -> ``"cpu"``; ``cuda``, ``rocm``,
``tpu`` and any other accelerator -> ``"gpu"``). The setting is read when a function is *traced*
(it becomes part of the traced program, so ``jit`` caches keep the schedule they were traced
with): set it before the first call of a jitted function, or trace a new one.

Every schedule computes the same sums in a different order: values and derivatives agree to
rounding (checked by ``tests/test_schedules.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import os

from ...config import Config, check_schedule

#: Target per-block working set of the one-core CPU schedule, in bytes (an L2 cache).
CPU_BLOCK_BYTES = 1 << 20
#: Working set per core of a block of the multi-core CPU schedule, in bytes.
CPU_CORE_BLOCK_BYTES = 2 << 20
#: Fraction of the device's memory the GPU schedule's widest block may use.
GPU_MEMORY_FRACTION = 0.125
#: Memory assumed for the GPU schedule when the device reports none (e.g. forced on a CPU).
DEFAULT_DEVICE_BYTES = 16 << 30


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A resolved schedule (hashable; what :func:`~.engine.run` is specialised on).

    Attributes:
        name: ``"cpu"`` or ``"gpu"``.
        block_bytes: Target working set of one block, in bytes.
        wide: Whether contractions are vectorised over their terms (no loop over chunks) and
            blocks are as wide as ``block_bytes`` allows (otherwise a power of two of at most a
            few hundred pairs that divides the pairs).
    """

    name: str
    block_bytes: int
    wide: bool


@functools.lru_cache(maxsize=None)
def _device_bytes(platform: str) -> int:
    """Memory of the first device of ``platform`` (its allocator's limit), or a default."""
    import jax

    try:
        stats = jax.devices(platform)[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - no such backend, or no statistics: use the default
        stats = {}
    return int(stats.get("bytes_limit", DEFAULT_DEVICE_BYTES))


def cores() -> int:
    """CPU cores this process may run on (its affinity; XLA sizes its thread pool the same)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(os.cpu_count() or 1, 1)


@functools.lru_cache(maxsize=None)
def cpu_devices() -> int:
    """CPU devices of this process (more than one with ``--xla_force_host_platform_device_count``).

    Each device runs its programs on threads of its own, so a program sharded over ``D`` CPU
    devices (data-parallel training, :func:`eqx_mp.parallel.edge_sharded_message_pass`) runs
    ``D`` copies of the engine at once; each is sized for ``cores() // D`` cores.
    """
    import jax

    try:
        return max(jax.local_device_count("cpu"), 1)
    except RuntimeError:  # pragma: no cover - no CPU backend
        return 1


def current() -> str:
    """The schedule setting traced into new programs: :attr:`eqx_mp.Config.schedule`."""
    return check_schedule(Config.schedule, "eqx_mp.Config.schedule")


def _one_core() -> Schedule:
    """The looped one-core CPU schedule (:data:`CPU_BLOCK_BYTES` read when called)."""
    return Schedule("cpu", CPU_BLOCK_BYTES, False)


def for_graph(schedule: Schedule, mode: str) -> Schedule:
    """The schedule a program on a graph of ``mode`` runs with.

    Arguments:
        schedule: The resolved schedule (:func:`resolve`).
        mode: The program's graph mode (``"pairs"``: node-wise products, no graph; ``"sparse"``
            or ``"dense"``: message passing).

    Returns:
        ``schedule``, except for ``"pairs"`` programs under the multi-core CPU schedule: the
        looped one-core schedule (see the module docstring).
    """
    if schedule.name == "cpu" and schedule.wide and mode == "pairs":
        return _one_core()
    return schedule


def resolve(setting: str, platform: str) -> Schedule:
    """The schedule for a ``Config.schedule`` value and the platform being lowered for.

    Arguments:
        setting: ``"auto"``, ``"cpu"`` or ``"gpu"``.
        platform: JAX platform name (``"cpu"``, ``"cuda"``, ``"rocm"``, ``"tpu"``, ...).

    Returns:
        A :class:`Schedule`.
    """
    name = check_schedule(setting)
    if name == "auto":
        name = "cpu" if platform == "cpu" else "gpu"
    if name == "cpu":
        n = max(cores() // cpu_devices(), 1)
        if n == 1:
            return _one_core()
        return Schedule("cpu", CPU_CORE_BLOCK_BYTES * n, True)
    return Schedule("gpu", int(GPU_MEMORY_FRACTION * _device_bytes(platform)), True)
