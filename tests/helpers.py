"""Helpers shared by several test files (import as ``from helpers import ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: A tiny Potential for training tests (compiles in seconds).
TINY_MODEL = dict(features=4, max_degree=1, num_basis=4, num_iterations=1)


def run_train_cli(
    *args: str, cache: Path | None = None, timeout: float = 300, wait: bool = True
) -> subprocess.CompletedProcess | subprocess.Popen:
    """Run ``python -m eqx_mp.train ARGS`` in a fresh process (from the repository root).

    Arguments:
        *args: Command-line arguments.
        cache: A JAX persistent compilation cache directory shared between processes (saves
            compiling the same step twice); ``None`` for none.
        timeout: Seconds before the process is killed (``wait=True`` only).
        wait: Wait for it (``CompletedProcess`` with captured text output) or return the running
            ``Popen`` (output discarded).

    Returns:
        The finished or the running process.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if cache is not None:  # share compiled executables between the processes
        env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    cmd = [sys.executable, "-m", "eqx_mp.train", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
