"""How the engine runs a program on a backend: its *schedule*, chosen when the primitive is lowered.

The primitive, its programs and its JVP, transpose and batching rules are one; only the loop
that evaluates a program (:func:`~.engine.run`) differs per backend:

* ``"cpu"``: cache-sized blocks in a ``fori_loop``: blocks of a few hundred pairs
  (:data:`CPU_BLOCK_BYTES` of working set), and each contraction a ``fori_loop`` over chunks of
  a few Clebsch-Gordan terms that accumulate in place. Everything stays in the core's cache; few
  instructions, little memory traffic. The same body runs on any number of cores. A multi-core
  body (per-core blocks, contractions vectorised as on the GPU so that XLA could split each
  kernel over its threads) was the default on several cores in 0.2.0's development; measured
  on two cores of an Intel Xeon it was slower than this one almost everywhere (forward +
  backward of a ``MessagePass`` at ``L=4``: 2,522 against 453 ms; ``P=1``: 270 against 126 ms;
  the force-training step of a two-layer potential at 2,048 atoms: 2,483 against 1,863 ms) and
  faster only for ``F=64``, ``L=2``, ``P=2`` layers (241 against 291 ms), so it was removed
  (``docs/performance.md``).
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

from ...config import Config, check_schedule

#: Target per-block working set of the CPU schedule, in bytes (an L2 cache).
CPU_BLOCK_BYTES = 1 << 20
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
    """

    name: str
    block_bytes: int

    @property
    def wide(self) -> bool:
        """Whether contractions are vectorised over their terms (no loop over chunks) and blocks
        are as wide as ``block_bytes`` allows (the GPU schedule; the CPU schedule's blocks are a
        power of two of at most a few hundred pairs that divides the pairs)."""
        return self.name == "gpu"


@functools.lru_cache(maxsize=None)
def _device_bytes(platform: str) -> int:
    """Memory of the first device of ``platform`` (its allocator's limit), or a default."""
    import jax

    try:
        stats = jax.devices(platform)[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - no such backend, or no statistics: use the default
        stats = {}
    return int(stats.get("bytes_limit", DEFAULT_DEVICE_BYTES))


def current() -> str:
    """The schedule setting traced into new programs: :attr:`eqx_mp.Config.schedule`."""
    return check_schedule(Config.schedule, "eqx_mp.Config.schedule")


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
    if name == "cpu":  # CPU_BLOCK_BYTES read here, so that tests can shrink it
        return Schedule("cpu", CPU_BLOCK_BYTES)
    return Schedule("gpu", int(GPU_MEMORY_FRACTION * _device_bytes(platform)))
