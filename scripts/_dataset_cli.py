"""The command line shared by the data-set generator scripts: ``--out``, ``--seed``, write .npz."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def main(description: str, default_out: Path, generate: Callable[..., dict[str, np.ndarray]]) -> None:
    """Parse ``--out`` and ``--seed``, run ``generate(seed=...)`` and write a compressed ``.npz``.

    Arguments:
        description: The ``--help`` description.
        default_out: Default output path.
        generate: The generator; returns the arrays to save (with an ``energies`` key).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=default_out, help="output .npz path")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args()
    start = time.perf_counter()
    data = generate(seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **data)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1024:.0f} KiB, {len(data['energies'])} frames) "
          f"in {time.perf_counter() - start:.0f} s")
