"""The XLA flag eqx_mp adds to ``XLA_FLAGS`` when it is imported: YNNPACK reductions off on CPU.

jaxlib 0.10 and 0.11 hand some of XLA:CPU's reductions to YNNPACK (``__ynn_fusion``). For the
small reductions of a potential's derivatives (e.g. ``sum(x * y, axis=3)`` over ``(16, 9, 1, 9,
32)``, a weight gradient over the 9 slots of degree 2) that path was 50x slower than XLA's own
loop on this project's CPU (487 against 9.7 us), and it made the ``medium`` potential's training
gradient 1.3-1.4x slower (two ethanols: 4.9 -> 3.7 ms; sixteen: 34.7 -> 24.4 ms; one core).
The upstream report is jax-ml/jax#37465, whose workaround this is:
``--xla_cpu_experimental_ynn_fusion_type=-reduce`` keeps YNNPACK's other fusions (dots,
elementwise) and sends reductions back to XLA's emitter.

The flag is added when eqx_mp is imported, to the environment variable, so it takes effect if
JAX has not started its CPU backend yet (the first computation starts it), and it reaches child
processes. It is not added:

* when ``XLA_FLAGS`` already sets ``xla_cpu_experimental_ynn_fusion_type`` (yours wins);
* when the environment variable ``EQX_MP_XLA_DEFAULTS`` is ``0`` (or ``false``, ``no``, ``off``);
* for jaxlib versions outside :data:`JAXLIB_VERSIONS`: XLA aborts the process on a flag it does
  not know, so only versions known to have it get it.

Check what a process got with ``os.environ["XLA_FLAGS"]`` or :data:`APPLIED`.
"""

from __future__ import annotations

import os

__all__ = ["FLAG", "JAXLIB_VERSIONS", "OPT_OUT", "with_defaults", "apply"]

#: The flag eqx_mp adds.
FLAG = "--xla_cpu_experimental_ynn_fusion_type=-reduce"
#: jaxlib versions ``[first, last)`` (major, minor) known to have the flag.
JAXLIB_VERSIONS = ((0, 10), (0, 12))
#: Environment variable that turns the flag off when set to 0.
OPT_OUT = "EQX_MP_XLA_DEFAULTS"

_OFF = ("0", "false", "no", "off")

#: Whether :func:`apply` added the flag in this process.
APPLIED = False


def with_defaults(xla_flags: str, jaxlib_version: tuple[int, ...], opt_out: str | None = None) -> str:
    """``XLA_FLAGS`` with eqx_mp's flag added where it applies (see the module docstring).

    Arguments:
        xla_flags: The current value of ``XLA_FLAGS`` (``""`` if unset).
        jaxlib_version: The installed jaxlib's version, e.g. ``(0, 10, 2)``.
        opt_out: The value of ``EQX_MP_XLA_DEFAULTS`` (``None`` if unset).

    Returns:
        The new value: ``xla_flags`` unchanged, or with :data:`FLAG` appended.
    """
    if opt_out is not None and opt_out.strip().lower() in _OFF:
        return xla_flags
    if "xla_cpu_experimental_ynn_fusion_type" in xla_flags:
        return xla_flags
    first, last = JAXLIB_VERSIONS
    if not first <= tuple(jaxlib_version[:2]) < last:
        return xla_flags
    return f"{xla_flags} {FLAG}".strip()


def _jaxlib_version() -> tuple[int, ...]:
    import re
    from importlib import metadata

    try:
        version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:  # pragma: no cover - a jaxlib without metadata
        return (0,)  # unknown: no flag
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def apply() -> bool:
    """Add :data:`FLAG` to ``os.environ["XLA_FLAGS"]`` where it applies (called on import).

    Returns:
        Whether the flag was added.
    """
    global APPLIED
    old = os.environ.get("XLA_FLAGS", "")
    new = with_defaults(old, _jaxlib_version(), os.environ.get(OPT_OUT))
    if new != old:
        os.environ["XLA_FLAGS"] = new
        APPLIED = True
    return APPLIED
