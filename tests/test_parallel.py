"""eqx_mp.parallel on 4 simulated CPU devices (in a subprocess).

The multi-device checks live in ``tests/_parallel_checks.py``: ``XLA_FLAGS`` must request the
simulated devices before JAX initialises, which this (already initialised) process cannot do.
References there are the unsharded layer and single-device training on the same batches.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _run_checks(*which: str) -> str:
    env = dict(os.environ)
    # First: XLA stops reading flags at a malformed one (conftest's setting ends with one).
    env["XLA_FLAGS"] = ("--xla_force_host_platform_device_count=4 " + env.get("XLA_FLAGS", "")).strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run(
        [sys.executable, str(HERE / "_parallel_checks.py"), *which],
        check=False, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    assert "ALL OK" in proc.stdout, proc.stdout
    return proc.stdout


def test_edge_sharded_message_pass_matches_unsharded():
    """Outputs and gradients (w.r.t. params, inputs, basis, weights) of the edge-sharded
    MessagePass equal the unsharded layer's; the documented errors are raised."""
    out = _run_checks("errors", "edge")
    for name in ("errors", "edge_sharded_forward", "edge_sharded_grad_params",
                 "edge_sharded_grad_inputs", "edge_sharded_grad_basis", "edge_sharded_grad_weights",
                 "edge_sharded_forward_sorted_eager"):
        assert f"OK {name}" in out, out


def test_data_parallel_training_matches_single_device():
    """3 SGD steps on packed GraphBatches sharded over 4 devices give the single-device
    losses and parameters; ``data_parallel_value_and_grad`` gives one device's loss and
    gradient with two all-reduces."""
    out = _run_checks("data")
    for name in ("data_parallel_losses", "data_parallel_params", "value_and_grad_grads",
                 "value_and_grad_all_reduces"):
        assert f"OK {name}" in out, out


def test_train_entry_point_devices_flag():
    """``eqx_mp.train --devices 0`` on 4 devices gives the 1-device model; bad counts raise."""
    out = _run_checks("train")
    assert "OK train_devices_params" in out, out
