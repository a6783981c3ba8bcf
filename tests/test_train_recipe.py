"""The molecular training recipe: isolated-atom E0s, stage two, reduce-on-plateau, metrics per
config_type, ``--num-test 0``, ``predict --data``, a model saved before anything can fail."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import TINY_MODEL as TINY
from helpers import run_train_cli

from eqx_mp.data import Dataset, load_dataset
from eqx_mp.models import Potential
from eqx_mp.train import TrainConfig, train
from eqx_mp.train import run as run_module
from eqx_mp.train.e0s import e0_frames, resolve_e0s, split_isolated, with_reference_energies
from eqx_mp.train.evaluate import error_metrics, metrics_by_config_type
from eqx_mp.train.optim import plateau_update, stage_rate


@pytest.fixture(scope="module")
def small() -> Dataset:
    return load_dataset().subset(np.arange(0, 2000, 50))  # 40 Cu/Pt cluster frames


@pytest.fixture(scope="module")
def molecules(tmp_path_factory) -> Path:
    """An extxyz file: the 4 isolated atoms of the ethanol set, then 24 ethanol frames in two
    config_types (A, B)."""
    import ase.io

    d = load_dataset("ethanol")
    frames = []
    for i in list(range(4)) + list(range(4, 28)):
        atoms = d.to_atoms(i)
        e, f = float(d.energies[i]), d.frame(i).forces
        atoms.calc = None
        atoms.info.update(energy=e, config_type=str(d.config_types[i]) if i < 4 else "AB"[i % 2])
        if i >= 4:
            atoms.arrays["forces"] = np.asarray(f, np.float64)
        frames.append(atoms)
    path = tmp_path_factory.mktemp("mol") / "mol.xyz"
    ase.io.write(path, frames, format="extxyz")
    return path


def test_isolated_frames_are_found_and_loaded_without_forces(molecules: Path):
    d = load_dataset(molecules)
    assert d.num_frames == 28 and list(d.config_types[:4]) == ["IsolatedAtom"] * 4
    iso, rest = split_isolated(d)
    assert iso.num_frames == 4 and rest.num_frames == 24 and (rest.atom_counts == 9).all()
    assert not iso.atom_forces.any()  # the E0 frames carry no forces: zero
    np.testing.assert_array_equal(np.sort(iso.atom_numbers), [1, 6, 7, 8])


def test_e0s_auto_is_isolated_only_when_every_element_has_an_isolated_atom(molecules: Path,
                                                                           small: Dataset):
    d = load_dataset(molecules)
    assert resolve_e0s("auto", d) == "isolated"  # H, C, O (and N) isolated atoms
    no_oxygen = d.subset(d.atom_numbers[np.cumsum(d.atom_counts) - 1] != 8)  # drops the O atom
    assert no_oxygen.num_frames == 27
    assert resolve_e0s("auto", no_oxygen) == "average"
    assert resolve_e0s("auto", split_isolated(d)[1]) == "average"  # no isolated atoms
    assert resolve_e0s("auto", small) == "average"  # Cu/Pt clusters
    for mode in ("average", "isolated", "none"):
        assert resolve_e0s(mode, small) == mode
    mode, iso, rest = e0_frames("auto", d)  # the isolated atoms are split off, once
    assert (mode, iso.num_frames, rest.num_frames) == ("isolated", 4, 24)
    assert (rest.atom_counts == 9).all() and (iso.atom_counts == 1).all()
    mode, iso, rest = e0_frames("auto", no_oxygen)  # average: every frame is trained on
    assert (mode, iso, rest.num_frames) == ("average", None, 27)
    mode, iso, rest = e0_frames("none", d)
    assert mode == "none" and iso is None and rest is d
    with pytest.raises(ValueError, match=r"e0s must be one of \('auto', 'average'"):
        resolve_e0s("median", d)
    ckpt_model = Potential(elements=(1, 6, 8), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"e0s='auto' depends on the data: resolve it first"):
        with_reference_energies(ckpt_model, d, "auto")


def test_e0s_isolated_stage_two_plateau_and_num_test_zero(molecules: Path, tmp_path: Path):
    """One small run with the whole recipe: E0s are the isolated-atom energies (and those frames
    are not in any split), stage two switches weight and rate halfway, no test split."""
    d = load_dataset(molecules)
    config = TrainConfig(
        data=str(molecules), output=str(tmp_path), time_budget=0, epochs=4, batch_size=8,
        num_valid=4, num_test=0, e0s="isolated", schedule="plateau", plateau_patience=1,
        stage_two=0.5, stage_two_lr=3e-4, stage_two_energy_factor=50.0, **TINY)
    result = train(config, d, progress=False)
    e0 = np.asarray(result.model.element_energies, np.float64)
    train_set = split_isolated(d)[1].subset(result.splits["train"])
    iso = dict(zip(d.atom_numbers[:4].tolist(), d.energies[:4].tolist()))
    # the isolated-atom energies plus one shift: the mean binding energy per training atom
    shift = np.mean([(e - sum(iso[int(z)] for z in train_set.frame(i).numbers)) / 9
                     for i, e in enumerate(train_set.energies)])
    assert -6 < shift < -3  # ethanol: a few eV per atom
    for z in (1, 6, 8):
        assert e0[z] == pytest.approx(iso[z] + shift, abs=2e-3)  # float32 of ~2000 eV
    assert sum(len(v) for v in result.splits.values()) == 24  # isolated atoms left out
    assert result.history["stage"] == [1, 1, 2, 2]
    history = json.loads((tmp_path / "run.json").read_text())["history"]
    assert [r["lr"] for r in history][2:] == [pytest.approx(3e-4)] * 2  # floor: min(lr_final, 3e-4)
    assert (tmp_path / "model.eqx").is_file() and "force_mae" not in result.metrics


def test_plateau_and_stage_rates():
    assert plateau_update(1.0, 2.0, 3, 0.5, patience=2, factor=0.8) == (1.0, 0, 0.5)
    assert plateau_update(3.0, 2.0, 0, 1.0, patience=2, factor=0.8) == (2.0, 1, 1.0)
    assert plateau_update(3.0, 2.0, 1, 1.0, patience=2, factor=0.8) == (2.0, 0, 0.8)
    c = TrainConfig(lr=1e-2, lr_final=1e-4, schedule="plateau", stage_two_lr=1e-3)
    assert stage_rate(c, 5e-3, 1, 0.5) == pytest.approx(5e-3)
    assert stage_rate(c, 5e-3, 1, 1e-6) == pytest.approx(1e-4)  # not below lr_final
    assert stage_rate(c, 5e-3, 2, 0.5) == pytest.approx(5e-4)
    e = TrainConfig(lr=1e-2, stage_two_lr=1e-3)
    assert stage_rate(e, 5e-3, 1, 0.5) == 5e-3 and stage_rate(e, 5e-3, 2, 0.5) == 1e-3
    with pytest.raises(ValueError, match="stage_two"):
        TrainConfig(stage_two=1.5)


def test_metrics_per_config_type_against_numpy(molecules: Path):
    d = split_isolated(load_dataset(molecules))[1]
    rng = np.random.default_rng(0)
    energies = d.energies + rng.normal(size=d.num_frames)
    forces = d.forces + rng.normal(size=d.forces.shape)
    by_type = metrics_by_config_type(d, dict(energies=energies, forces=forces, stresses=None))
    assert sorted(by_type) == ["A", "B"]
    for name, m in by_type.items():
        sel = d.config_types == name
        assert m["frames"] == sel.sum() == 12
        assert m["energy_rmse"] == pytest.approx(np.sqrt(np.mean((energies - d.energies)[sel] ** 2)))
        assert m["force_mae"] == pytest.approx(np.mean(np.abs(forces - d.forces)[sel]))
    assert by_type["A"] == {"frames": 12, **error_metrics(d.subset(d.config_types == "A"),
                                                          energies[::2], forces[::2])}


def test_model_is_saved_before_evaluation_can_fail(small: Dataset, tmp_path: Path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(run_module, "evaluate", broken)
    config = TrainConfig(output=str(tmp_path), time_budget=0, epochs=1, batch_size=8,
                         num_valid=0, num_test=5, **TINY)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        train(config, small, progress=False)
    assert (tmp_path / "model.eqx").is_file()


def test_cli_num_test_zero_saves_model_and_predict_data_prints_mae_rmse(molecules, tmp_path):
    out = tmp_path / "run"
    proc = run_train_cli(
        "--data", str(molecules), "--e0s", "isolated", "--num-test", "0", "--num-valid", "4",
        "--epochs", "1", "--time-budget", "0", "--batch-size", "8", "--features", "4",
        "--max-degree", "1", "--num-basis", "4", "--num-iterations", "1", "--correlation", "2",
        "--output", str(out), "--no-progress", cache=tmp_path / "jax-cache")
    assert proc.returncode == 0, proc.stderr
    assert "no test frames" in proc.stdout and (out / "model.eqx").is_file()
    assert not (out / "parity.png").exists()
    again = run_train_cli("predict", "--model", str(out), "--data", str(molecules),
                          cache=tmp_path / "jax-cache")
    assert again.returncode == 0, again.stderr
    text = again.stdout
    for row in ("energy MAE", "energy RMSE", "energy per atom MAE", "energy per atom RMSE",
                "force MAE", "force RMSE"):
        assert f"(27 frames) {row}: " in text, text
    assert "skipping 1 isolated-atom frame(s)" in text  # N: not an element of the model
    assert "IsolatedAtom (3 frames)" in text and "A (12 frames)" in text
