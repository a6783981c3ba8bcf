"""What machine a benchmark ran on: recorded next to every result, since the shared CPUs vary."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows.

    Returns:
        For example ``"Intel(R) Xeon(R) Processor"`` or ``"AMD EPYC 7B13"``.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
