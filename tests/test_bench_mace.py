"""benchmarks/bench_mace.py without MACE (not installed in the test environment): the data split
written as extxyz, an eqx_mp run at a wall-clock budget, the table and the plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
from helpers import REPO

from eqx_mp.data import load_dataset, split_indices


def test_bench_mace_eqx_mp_side(tmp_path: Path):
    out = tmp_path / "bench"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_mace.py"), "--tools", "eqx_mp",
           "--budgets", "2", "--max-frames", "40", "--num-valid", "5", "--num-test", "5",
           "--out", str(out), "--eqx-args", "--features", "4", "--num-basis", "4",
           "--num-iterations", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    # The extxyz split is eqx_mp's split of the same 40 frames, with REF_* keys for MACE.
    data = load_dataset().subset(np.linspace(0, 1999, 40).astype(int))
    test_idx = split_indices(40, num_valid=5, num_test=5, seed=0)[2]
    test = ase.io.read(out / "test.xyz", index=":")
    assert len(test) == 5 and len(ase.io.read(out / "train.xyz", index=":")) == 30
    np.testing.assert_allclose([a.info["REF_energy"] for a in test], data.energies[test_idx])
    np.testing.assert_allclose(test[2].arrays["REF_forces"], data.forces[test_idx[2]], atol=1e-6)
    results = json.loads((out / "results.json").read_text())
    assert [r["tool"] for r in results] == ["eqx_mp"] and results[0]["budget"] == 2
    run = json.loads((out / "eqx_mp_2s" / "run.json").read_text())
    assert results[0]["metrics"]["force_mae"] == run["metrics"]["force_mae"]
    table = (out / "results.md").read_text()
    assert "| 2 s | eqx_mp |" in table and "| | baseline |" in table
    assert f"{1e3 * run['metrics']['force_mae']:.2f}" in table
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
