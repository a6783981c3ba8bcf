"""``--device cpu|gpu`` for the benchmarks, applied before JAX starts (``JAX_PLATFORMS``)."""

from __future__ import annotations

import os
import sys


def select_device(argv: list[str] | None = None) -> str:
    """Point JAX at the device named by ``--device cpu|gpu`` in ``argv`` (default: ``sys.argv``).

    Must run before ``import jax``. Returns the name (``cpu`` when the flag is absent).
    """
    argv = sys.argv if argv is None else argv
    device = "cpu"
    for i, a in enumerate(argv):
        if a == "--device" and i + 1 < len(argv):
            device = argv[i + 1]
        elif a.startswith("--device="):
            device = a.split("=", 1)[1]
    if device not in ("cpu", "gpu"):
        raise SystemExit(f"--device must be cpu or gpu, got {device!r}")
    os.environ["JAX_PLATFORMS"] = "cuda" if device == "gpu" else "cpu"
    return device
