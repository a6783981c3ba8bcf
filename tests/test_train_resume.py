"""Checkpoints of a training run: exact resume after SIGKILL, damaged files refused."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_MODEL, run_train_cli

from eqx_mp import io
from eqx_mp.data import Dataset, load_dataset
from eqx_mp.train import TrainConfig, train
from eqx_mp.train.checkpoint import read_checkpoint, write_checkpoint


@pytest.fixture(scope="module")
def small() -> Dataset:
    return load_dataset().subset(np.arange(0, 2000, 40))  # 50 frames, all 8 trajectories


def _records(path: Path) -> list[dict]:
    """``log.jsonl`` without the wall-clock field."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_resume_after_sigkill_is_bit_identical(small: Dataset, tmp_path: Path):
    """Kill a run with SIGKILL once it has checkpointed, resume it: same model, same log."""
    data = tmp_path / "small.npz"
    np.savez(data, positions=small.positions, numbers=small.numbers, energies=small.energies,
             forces=small.forces)
    flags = ["--data", str(data), "--time-budget", "0", "--epochs", "12", "--batch-size", "4",
             "--num-valid", "5", "--num-test", "5", "--checkpoint-every", "0.01", "--no-plot",
             "--no-progress", "--features", "4", "--num-basis", "4", "--num-iterations", "1"]
    cache = tmp_path / "jax-cache"
    whole = run_train_cli(*flags, "--output", str(tmp_path / "whole"), cache=cache)
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    proc = run_train_cli(*flags, "--output", str(out), cache=cache, wait=False)
    deadline = time.monotonic() + 240
    # Wait for the first epoch's log line (checkpoints exist by then), then kill mid-run.
    while not ((out / "log.jsonl").is_file() and (out / "log.jsonl").read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before a checkpoint"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (out / "model.eqx").exists()  # it was killed before the end
    epochs_done = len(_records(out / "log.jsonl"))
    assert 1 <= epochs_done < 12

    resumed = run_train_cli("--resume", str(out), "--no-progress", cache=cache)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {out}" in resumed.stdout
    assert (out / "model.eqx").read_bytes() == (tmp_path / "whole" / "model.eqx").read_bytes()
    assert _records(out / "log.jsonl") == _records(tmp_path / "whole" / "log.jsonl")
    assert len(_records(out / "log.jsonl")) == 12


@pytest.fixture(scope="module")
def finished_run(small: Dataset, tmp_path_factory) -> tuple[TrainConfig, Path]:
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(output=str(out), time_budget=0, epochs=2, batch_size=8, num_valid=5,
                         num_test=5, plot=False, **TINY_MODEL)
    train(config, small, progress=False)
    return config, out


def _corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:  # flip one bit in the leaves
        data[-100] ^= 0x01
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how, message", [("truncated", r"truncated: \d+ of the \d+ bytes"),
                                          ("flipped", r"corrupt: the checksum")])
def test_damaged_checkpoint_is_refused_and_previous_used(finished_run, how, message, tmp_path):
    config, run = finished_run
    out = tmp_path / "copy"
    out.mkdir()
    for name in ("checkpoint.eqx", "checkpoint.prev.eqx"):
        (out / name).write_bytes((run / name).read_bytes())
    _corrupt(out / "checkpoint.eqx", how)
    with pytest.raises(ValueError, match=message):
        io.load(out / "checkpoint.eqx")
    (out / ".checkpoint.eqx.abc.tmp").write_bytes(b"partial")  # an interrupted write
    ckpt, progress, problems = read_checkpoint(out)
    assert len(problems) == 1 and "checkpoint.eqx: " in problems[0]
    assert problems[0].split(": ", 1)[1].startswith(message.split(":")[0])
    assert not (out / ".checkpoint.eqx.abc.tmp").exists()
    # The previous checkpoint: the end of the last epoch, before the run was marked finished.
    assert (progress.epoch, progress.finished) == (2, False)
    _corrupt(out / "checkpoint.prev.eqx", how)
    with pytest.raises(ValueError, match=r"no checkpoint of the run verifies:\n.*checkpoint\.eqx"
                                         r"[^\n]*\n.*checkpoint\.prev\.eqx"):
        read_checkpoint(out)


def test_resume_from_previous_checkpoint(finished_run, small: Dataset, tmp_path, capsys):
    """Resuming falls back to checkpoint.prev.eqx (with a warning) and ends with the same model."""
    config, run = finished_run
    out = tmp_path / "copy"
    out.mkdir()
    for name in ("checkpoint.eqx", "checkpoint.prev.eqx"):
        (out / name).write_bytes((run / name).read_bytes())
    _corrupt(out / "checkpoint.eqx", "truncated")
    import dataclasses

    again = dataclasses.replace(config, output=str(out))
    result = train(again, small, progress=False, resume=True)
    assert "warning: " in capsys.readouterr().out
    assert (out / "model.eqx").read_bytes() == (run / "model.eqx").read_bytes()
    assert result.metrics["epochs"] == 2
    with pytest.raises(ValueError, match=r"cannot resume .* with lr=0\.1: the run was started "
                                         r"with lr=0\.01"):
        train(dataclasses.replace(again, lr=0.1), small, progress=False, resume=True)
    with pytest.raises(ValueError, match=r"the data set differs"):
        train(again, small.subset(np.arange(40)), progress=False, resume=True)


def test_resume_from_any_checkpoint_is_bit_identical(small: Dataset, tmp_path: Path, monkeypatch):
    """Resume from a checkpoint written mid-epoch, one written at an epoch's end and the final
    one (copies of the files one run wrote): each ends with the uninterrupted run's model."""
    import dataclasses
    import shutil

    from eqx_mp import io
    from eqx_mp.train import loop

    snapshots: list[Path] = []

    def keep_a_copy(output, ckpt, progress):
        path = write_checkpoint(output, ckpt, progress)
        snapshots.append(tmp_path / f"snapshot-{len(snapshots)}.eqx")
        shutil.copy(path, snapshots[-1])
        return path

    monkeypatch.setattr(loop, "write_checkpoint", keep_a_copy)
    config = TrainConfig(output=str(tmp_path / "whole"), time_budget=0, epochs=3, batch_size=8,
                         num_valid=5, num_test=5, plot=False, checkpoint_every=1e-9,
                         **TINY_MODEL)
    train(config, small, progress=False)
    monkeypatch.undo()
    meta = [io.read_header(s)["metadata"] for s in snapshots]
    def first(epoch: int, step: int) -> int:
        return next(i for i, m in enumerate(meta) if (m["epoch"], m["step_in_epoch"]) == (epoch, step))

    # Mid-epoch; after the epoch's last step, before its validation; after the epoch; the end.
    picks = (first(1, 2), first(1, 3), first(2, 0), len(meta) - 1)
    assert meta[-1]["finished"] and not meta[picks[2]]["finished"]
    whole = tmp_path / "whole"
    for i in picks:
        out = tmp_path / f"resumed-{i}"
        out.mkdir()
        shutil.copy(snapshots[i], out / "checkpoint.eqx")
        train(dataclasses.replace(config, output=str(out)), small, progress=False, resume=True)
        assert (out / "model.eqx").read_bytes() == (whole / "model.eqx").read_bytes(), meta[i]
        assert _records(out / "log.jsonl") == _records(whole / "log.jsonl"), meta[i]
