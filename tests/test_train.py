"""Data loading/validation, the Potential model, checkpoints and the training entry point.

Everything here is tiny (a handful of frames, 4-8 features, a few optimisation steps) so the
module runs in well under a minute; the full default training run is documented in the README.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import REPO, perturbed, random_rotation, run_train_cli
from helpers import TINY_MODEL as TINY

from eqx_mp import io
from eqx_mp.data import DEFAULT_DATASET, Dataset, DatasetError, load_dataset, split_indices
from eqx_mp.models import Potential, batched_energy_and_forces
from eqx_mp.train import (
    TrainConfig,
    baseline_metrics,
    baseline_predictor,
    build_parser,
    build_predict_parser,
    evaluate,
    load_model,
    main,
    save_model,
    train,
)
from eqx_mp.train.config import flag_name


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="module")
def small(data: Dataset) -> Dataset:
    return data.subset(np.arange(0, 2000, 50))  # 40 frames, all 8 trajectories


def _write(tmp_path: Path, name: str = "d.npz", **arrays) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _arrays(data: Dataset, frames: int = 5) -> dict[str, np.ndarray]:
    return dict(
        positions=data.positions[:frames].copy(),
        numbers=data.numbers[0].copy(),
        energies=data.energies[:frames].copy(),
        forces=data.forces[:frames].copy(),
    )


# --------------------------------------------------------------------------- embedded data


def test_embedded_dataset(data: Dataset):
    assert DEFAULT_DATASET.is_file()
    assert DEFAULT_DATASET.stat().st_size <= 2 * 1024 * 1024
    raw = np.load(DEFAULT_DATASET)
    assert raw["positions"].dtype == np.float32 and raw["forces"].dtype == np.float32
    assert raw["energies"].dtype == np.float64 and raw["numbers"].dtype == np.uint8
    assert data.positions.shape == (2000, 13, 3) and data.forces.shape == (2000, 13, 3)
    assert data.energies.shape == (2000,) and data.numbers.shape == (2000, 13)
    assert set(np.unique(data.numbers)) == {29, 78}
    # 0-6 Pt per trajectory, composition fixed within a trajectory.
    pt = (data.numbers == 78).sum(1)
    assert pt.min() >= 0 and pt.max() <= 6
    for t in range(8):
        assert len(np.unique(pt[raw["trajectory"] == t])) == 1
    # Forces of an isolated cluster sum to ~zero (Newton's third law of EMT).
    assert np.abs(data.forces.sum(1)).max() < 1e-4


def test_user_npz_roundtrip_and_shared_numbers(data: Dataset, tmp_path: Path):
    arrays = _arrays(data)
    loaded = load_dataset(_write(tmp_path, **arrays))
    np.testing.assert_array_equal(loaded.positions, arrays["positions"])
    np.testing.assert_array_equal(loaded.numbers, np.broadcast_to(arrays["numbers"], (5, 13)))
    np.testing.assert_array_equal(loaded.energies, arrays["energies"])
    np.testing.assert_array_equal(loaded.forces, arrays["forces"])


def test_ase_file(data: Dataset, tmp_path: Path):
    ase_io = pytest.importorskip("ase.io", reason="ASE is in the dev extra")
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for i in range(3):
        atoms = Atoms(numbers=data.numbers[i], positions=data.positions[i])
        atoms.calc = SinglePointCalculator(atoms, energy=data.energies[i], forces=data.forces[i])
        frames.append(atoms)
    path = tmp_path / "frames.extxyz"
    ase_io.write(path, frames)
    loaded = load_dataset(path)
    np.testing.assert_allclose(loaded.positions, data.positions[:3], atol=1e-6)
    np.testing.assert_allclose(loaded.energies, data.energies[:3], rtol=1e-12)
    np.testing.assert_allclose(loaded.forces, data.forces[:3], atol=1e-6)


def test_ase_missing_gives_install_hint(tmp_path: Path, monkeypatch):
    path = tmp_path / "frames.extxyz"
    path.write_text("1\n\nH 0 0 0\n")
    monkeypatch.setitem(sys.modules, "ase", None)
    monkeypatch.setitem(sys.modules, "ase.io", None)
    with pytest.raises(ImportError, match=r"needs ASE \(pip install ase\).*\.npz"):
        load_dataset(path)


# --------------------------------------------------------------------------- bad input


def _corrupt(arrays, key, value):
    out = dict(arrays)
    if value is None:
        del out[key]
    else:
        out[key] = value
    return out


BAD_CASES = {
    "missing forces": (
        lambda a: _corrupt(a, "forces", None),
        r"missing key 'forces' \(expected \(F, N, 3\).*found keys \['energies', 'numbers', 'positions'\]",
    ),
    "missing energies": (
        lambda a: _corrupt(a, "energies", None),
        r"missing key 'energies' \(expected \(F,\)",
    ),
    "positions not (F, N, 3)": (
        lambda a: _corrupt(a, "positions", a["positions"][..., :2]),
        r"key 'positions' has shape \(5, 13, 2\), expected \(F, N, 3\)",
    ),
    "forces wrong atom count": (
        lambda a: _corrupt(a, "forces", a["forces"][:, :12]),
        r"key 'forces' has shape \(5, 12, 3\), expected \(5, 13, 3\)",
    ),
    "numbers wrong length": (
        lambda a: _corrupt(a, "numbers", a["numbers"][:12]),
        r"key 'numbers' has shape \(12,\), expected \(13,\) or \(5, 13\)",
    ),
    "numbers not atomic numbers": (
        lambda a: _corrupt(a, "numbers", np.zeros(13, np.int64)),
        r"key 'numbers' must be atomic numbers in 1\.\.118, got 0",
    ),
    "energies frame count": (
        lambda a: _corrupt(a, "energies", a["energies"][:4]),
        r"key 'energies' has 4 frames but 'positions' has 5 \(expected shape \(5,\), got \(4,\)\)",
    ),
    "forces frame count": (
        lambda a: _corrupt(a, "forces", a["forces"][:3]),
        r"key 'forces' has 3 frames but 'positions' has 5 \(expected shape \(5, 13, 3\)",
    ),
    "energies 2-d": (
        lambda a: _corrupt(a, "energies", np.ones((5, 2))),
        r"key 'energies' has shape \(5, 2\), expected \(F,\) = \(5,\)",
    ),
    "NaN energy": (
        lambda a: _corrupt(a, "energies", np.where(np.arange(5) == 3, np.nan, a["energies"])),
        r"key 'energies' contains 1 non-finite value\(s\) \(NaN or inf\); first at frame 3",
    ),
    "inf force": (
        lambda a: _corrupt(a, "forces", np.where(np.arange(5)[:, None, None] == 2, np.inf, a["forces"])),
        r"key 'forces' contains 39 non-finite value\(s\) \(NaN or inf\); first at frame 2",
    ),
    "zero frames": (
        lambda a: {k: (v if k == "numbers" else v[:0]) for k, v in a.items()},
        r"key 'positions' has 0 frames .*the data set is empty",
    ),
    "string energies": (
        lambda a: _corrupt(a, "energies", np.array(["a"] * 5)),
        r"key 'energies' must be numeric, got dtype <U1",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_npz_raises_named_error(case: str, data: Dataset, tmp_path: Path):
    make, pattern = BAD_CASES[case]
    path = _write(tmp_path, **make(_arrays(data)))
    with pytest.raises(DatasetError, match=pattern):
        load_dataset(path)


def test_empty_files(tmp_path: Path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty\.npz: the file is empty \(0 bytes\)"):
        load_dataset(empty)
    with pytest.raises(DatasetError, match=r"the archive is empty \(no arrays\); expected keys 'positions'"):
        load_dataset(_write(tmp_path, "none.npz"))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(DatasetError, match=r"cannot be read as a \.npz archive"):
        load_dataset(garbage)
    with pytest.raises(FileNotFoundError, match=r"data set file not found: .*missing\.npz"):
        load_dataset(tmp_path / "missing.npz")


def test_bad_data_fails_before_training(data: Dataset, tmp_path: Path):
    """The CLI validates the file before building or compiling anything (and writes nothing)."""
    path = _write(tmp_path, **_corrupt(_arrays(data), "forces", None))
    out = tmp_path / "run"
    with pytest.raises(DatasetError, match="missing key 'forces'"):
        main(["--data", str(path), "--output", str(out), "--no-progress"])
    assert not out.exists()


def test_bad_settings_raise_before_compiling(small: Dataset, tmp_path: Path):
    with pytest.raises(ValueError, match=r"too few for 30 validation \+ 30 test frames"):
        train(TrainConfig(num_valid=30, num_test=30, **TINY), small, progress=False, save=False)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        train(TrainConfig(batch_size=0, **TINY), small, progress=False, save=False)
    with pytest.raises(ValueError, match=r"cutoff must be > 0 \(Å\), got -1\.0"):
        Potential(cutoff=-1.0, key=jax.random.PRNGKey(0))


def test_split_indices_disjoint():
    tr, va, te = split_indices(100, num_valid=10, num_test=20, seed=3)
    assert (len(tr), len(va), len(te)) == (70, 10, 20)
    assert len(np.unique(np.concatenate([tr, va, te]))) == 100


# --------------------------------------------------------------------------- model


@pytest.fixture(scope="module")
def tiny_model() -> Potential:
    # Non-zero residual branches, so that the check exercises every layer.
    return perturbed(Potential(**TINY, max_atomic_number=80, key=jax.random.PRNGKey(1)), 0.3, seed=2)


@eqx.filter_jit
def _energy_and_forces(model: Potential, positions, numbers):
    return model.energy_and_forces(positions, numbers)


def test_potential_invariances(tiny_model: Potential, data: Dataset):
    """E(3) invariance of the energy, equivariance of the forces, permutation symmetry."""
    pos, num = jnp.asarray(data.positions[7]), jnp.asarray(data.numbers[1999])
    e, f = _energy_and_forces(tiny_model, pos, num)
    tol = 2e-5 * float(jnp.abs(f).max())
    for seed in range(3):
        rot = jnp.asarray(random_rotation(seed), jnp.float32)
        shift = jnp.asarray(np.random.default_rng(seed).normal(size=3), jnp.float32)
        e2, f2 = _energy_and_forces(tiny_model, pos @ rot.T + shift, num)
        np.testing.assert_allclose(e2, e, rtol=1e-5)
        np.testing.assert_allclose(f2, f @ rot.T, atol=tol)
    # Inversion: the energy is invariant, forces flip sign.
    e3, f3 = _energy_and_forces(tiny_model, -pos, num)
    np.testing.assert_allclose(e3, e, rtol=1e-5)
    np.testing.assert_allclose(f3, -f, atol=tol)
    perm = np.random.default_rng(0).permutation(13)
    e4, f4 = _energy_and_forces(tiny_model, pos[perm], num[perm])
    np.testing.assert_allclose(e4, e, rtol=1e-5)
    np.testing.assert_allclose(f4, f[perm], atol=tol)
    # Isolated cluster: the forces of a translation-invariant energy sum to zero.
    np.testing.assert_allclose(f.sum(0), 0.0, atol=1e-4 * float(jnp.abs(f).max()))
    # Different elements give different energies (the embedding is used).
    e5, _ = _energy_and_forces(tiny_model, pos, jnp.full_like(num, 29))
    assert abs(float(e5) - float(e)) > 1e-3


def test_forces_are_minus_gradient(tiny_model: Potential, data: Dataset):
    """Central finite differences of the energy (float64 steps) agree with the forces."""
    pos, num = np.asarray(data.positions[3], np.float64), jnp.asarray(data.numbers[3])
    _, f = _energy_and_forces(tiny_model, jnp.asarray(pos, jnp.float32), num)
    h = 1e-2
    shifted = []
    for atom, axis in ((0, 0), (5, 1), (12, 2)):
        dp = np.zeros_like(pos)
        dp[atom, axis] = h
        shifted += [pos + dp, pos - dp]
    energies, _ = eqx.filter_jit(batched_energy_and_forces)(
        tiny_model, jnp.asarray(np.stack(shifted), jnp.float32), jnp.broadcast_to(num, (6, 13))
    )
    energies = np.asarray(energies, np.float64)
    for i, (atom, axis) in enumerate(((0, 0), (5, 1), (12, 2))):
        fd = -(energies[2 * i] - energies[2 * i + 1]) / (2 * h)
        np.testing.assert_allclose(fd, f[atom, axis], rtol=2e-2, atol=2e-3)


def test_model_shape_error(tiny_model: Potential):
    with pytest.raises((TypeError, ValueError), match=r"positions|N 3"):
        tiny_model(jnp.zeros((13, 2)), jnp.ones((13,), jnp.int32))


# --------------------------------------------------------------------------- training + checkpoints


@pytest.fixture(scope="module")
def trained(small: Dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(
        output=str(out), time_budget=0, epochs=4, batch_size=8, num_valid=5, num_test=5,
        lr=1e-2, **TINY,
    )
    return train(config, small, progress=False), out


def test_training_reduces_loss_and_saves(trained):
    result, out = trained
    losses = result.history["train_loss"]
    assert len(losses) == 4 and result.metrics["steps"] == 4 * 3  # 30 frames: 3 full batches of 8
    assert losses[-1] < losses[0]
    assert (out / "model.eqx").is_file() and (out / "run.json").is_file()
    assert (out / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The model file is eqx_mp.io's format: a JSON header (class, hyper-parameters), the leaves.
    header = json.loads((out / "model.eqx").read_bytes().split(b"\n", 1)[0])
    assert header["class"] in ("eqx_mp:Potential", "eqx_mp.models:Potential")  # public names
    assert header["hyperparams"]["features"] == 4
    # The per-epoch log has one JSON record per epoch, the same as the history.
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]
    assert [r["train_loss"] for r in log] == losses
    assert [r["valid_force_mae"] for r in log] == result.history["valid_force_mae"]
    run = json.loads((out / "run.json").read_text())
    assert run["metrics"]["force_mae"] == result.metrics["force_mae"]
    assert run["history"][-1]["epoch"] == 4


def test_save_load_is_bit_exact(trained, small: Dataset, tmp_path: Path):
    result, out = trained
    loaded = load_model(out)
    a = jax.tree_util.tree_leaves(eqx.filter(result.model, eqx.is_array))
    b = jax.tree_util.tree_leaves(eqx.filter(loaded, eqx.is_array))
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and np.array_equal(np.asarray(x), np.asarray(y))
    assert eqx.tree_equal(eqx.filter(result.model, eqx.is_array, inverse=True),
                          eqx.filter(loaded, eqx.is_array, inverse=True))
    test = small.subset(result.splits["test"])
    ev0, ev1 = evaluate(result.model, test), evaluate(loaded, test)
    np.testing.assert_array_equal(ev0["energies"], ev1["energies"])
    np.testing.assert_array_equal(ev0["forces"], ev1["forces"])
    assert ev1["energy_mae"] == result.metrics["energy_mae"]
    assert ev1["force_mae"] == result.metrics["force_mae"]
    # save_model to an explicit file path also round-trips.
    path = save_model(tmp_path / "m.eqx", loaded)
    again = load_model(path)
    assert eqx.tree_equal(eqx.filter(again, eqx.is_array), eqx.filter(loaded, eqx.is_array))


def test_predict_on_user_file(trained, small: Dataset, tmp_path: Path, capsys):
    result, out = trained
    frames = small.subset(np.arange(6))
    path = _write(tmp_path, positions=frames.positions, numbers=frames.numbers,
                  energies=frames.energies, forces=frames.forces)
    assert main(["predict", "--model", str(out), "--data", str(path), "--batch-size", "4"]) == 0
    printed = capsys.readouterr().out
    ev = evaluate(result.model, frames, batch_size=4)
    assert f"(6 frames) energy MAE: {1e3 * ev['energy_mae']:.3f} meV" in printed
    assert f"(6 frames) force MAE: {1e3 * ev['force_mae']:.3f} meV/Å" in printed
    gold = dataclasses.replace(frames, atom_numbers=np.full_like(frames.atom_numbers, 79))
    with pytest.raises(ValueError, match=r"atomic number\(s\) \[79\] unknown to the model; it knows "
                                         r"elements \[29, 78\]"):
        evaluate(result.model, gold)


def test_baseline_is_trivial_predictor(small: Dataset):
    predictor = baseline_predictor(small.subset(range(10)))
    assert predictor["energy_per_atom"] == pytest.approx(np.mean(small.energies[:10]) / 13, rel=1e-12)
    b = baseline_metrics({"energy_per_atom": 10.0 / 13}, small)
    de, f = small.energies - 10.0, small.forces.astype(np.float64)
    assert b["baseline_energy_mae"] == pytest.approx(np.mean(np.abs(de)), rel=1e-12)
    assert b["baseline_energy_rmse"] == pytest.approx(np.sqrt(np.mean(de**2)), rel=1e-12)
    assert b["baseline_energy_per_atom_mae"] == pytest.approx(np.mean(np.abs(de)) / 13, rel=1e-12)
    assert b["baseline_force_mae"] == pytest.approx(np.mean(np.abs(f)), rel=1e-12)
    assert b["baseline_force_rmse"] == pytest.approx(np.sqrt(np.mean(f**2)), rel=1e-12)
    assert b["baseline_force_rel_rmse"] == pytest.approx(100.0, rel=1e-12)


def test_metrics_against_numpy(trained, small: Dataset):
    result, _ = trained
    test = small.subset(result.splits["test"])
    ev = evaluate(result.model, test)
    de, df = ev["energies"] - test.energies, ev["forces"].astype(np.float64) - test.forces
    assert ev["energy_rmse"] == pytest.approx(np.sqrt(np.mean(de**2)), rel=1e-12)
    assert ev["energy_per_atom_rmse"] == pytest.approx(np.sqrt(np.mean(de**2)) / 13, rel=1e-12)
    assert ev["force_rmse"] == pytest.approx(np.sqrt(np.mean(df**2)), rel=1e-12)
    rel = 100 * np.sqrt(np.mean(df**2)) / np.sqrt(np.mean(test.forces.astype(np.float64) ** 2))
    assert ev["force_rel_rmse"] == pytest.approx(rel, rel=1e-12)
    assert result.metrics["force_rel_rmse"] == ev["force_rel_rmse"]


def test_load_model_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"no saved model at"):
        load_model(tmp_path)
    bad = tmp_path / "bad.eqx"
    bad.write_bytes(b"\x00\x01not json\n")
    with pytest.raises(ValueError, match=r"first line must be a JSON object"):
        load_model(bad)
    # The bare hyper-parameter header of the old train.save_model is no longer a format.
    bad.write_bytes(b'{"features": 4}\n')
    with pytest.raises(ValueError, match=r"with 'class' and 'hyperparams'"):
        load_model(bad)


# --------------------------------------------------------------------------- command line


def test_help_lists_every_flag():
    proc = run_train_cli("--help", timeout=120)
    assert proc.returncode == 0, proc.stderr
    import dataclasses

    for field in dataclasses.fields(TrainConfig):
        flag = flag_name(field)
        assert flag in proc.stdout, f"{flag} missing from --help"
        assert field.metadata["help"], field.name
    assert flag_name(TrainConfig.__dataclass_fields__["plot"]) == "--no-plot"
    for flag in ("--no-progress", "--resume", "predict --model", "--ema-decay", "--e0s",
                 "--dtype", "--checkpoint-every"):
        assert flag in proc.stdout, flag
    readme = (REPO / "README.md").read_text()
    training = readme[readme.index("<!-- section:training -->"):
                      readme.index("<!-- /section:training -->")]
    for action in build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help text"
        for flag in set(action.option_strings) - {"-h", "--help"}:  # `--flag` or `--flag ARG`
            assert re.search(rf"`{flag}[` ]", training), f"{flag} is not in the README's training section"
    predict_help = build_predict_parser().format_help()
    for flag in ("--model", "--data", "--batch-size"):
        assert flag in predict_help


def test_flags_parse_into_the_config():
    args = vars(build_parser().parse_args(["--features", "8", "--no-plot", "--ema-decay", "0",
                                           "--radial-basis", "sinc", "--dtype", "float64"]))
    assert args == dict(features=8, plot=False, ema_decay=0.0, radial_basis="sinc",
                        dtype="float64", progress=True, resume=None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--e0s", "median"])
    for flag in ("--preset", "--model"):  # the spelling is an alias
        assert vars(build_parser().parse_args([flag, "medium"]))["preset"] == "medium"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model", "huge"])


def test_presets_apply_in_python_as_on_the_command_line():
    from eqx_mp.models import PRESETS

    medium = TrainConfig.from_preset("medium", features=8, time_budget=60)
    assert medium.preset == "medium" and medium.features == 8  # a field given wins
    assert (medium.max_degree, medium.correlation) == (PRESETS["medium"]["max_degree"],
                                                       PRESETS["medium"]["correlation"])
    assert TrainConfig.from_preset("small") == TrainConfig()
    with pytest.raises(ValueError, match=r"preset='large', but the model fields are those of the "
                                         r"default preset 'small' \(.*\): build with "
                                         r"TrainConfig.from_preset\('large', ...\)"):
        TrainConfig(preset="large")  # the name alone would silently train the small model
    with pytest.raises(ValueError, match=r"preset must be one of \['e3x', 'small'"):
        TrainConfig.from_preset("huge")


def test_resume_takes_no_config_flags(tmp_path: Path):
    with pytest.raises(SystemExit, match=r"--resume continues a run with its saved configuration; "
                                         r"--features, --lr cannot be changed"):
        main(["--resume", str(tmp_path), "--lr", "0.1", "--features", "8"])
    with pytest.raises(FileNotFoundError, match=r"no checkpoint to resume from"):
        main(["--resume", str(tmp_path)])


def test_cli_float64_train_then_predict_reproduces_metrics(tmp_path: Path):
    """A float64 run from the command line; ``predict`` reloads it (float64) and prints the same."""
    out = tmp_path / "run"
    proc = run_train_cli(
        "--time-budget", "3", "--features", "4", "--max-degree", "1", "--num-basis", "4",
        "--num-iterations", "1", "--batch-size", "8", "--num-valid", "8", "--num-test", "8",
        "--dtype", "float64", "--output", str(out), "--no-progress", "--no-plot",
        cache=tmp_path / "jax-cache",
    )
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("test ")]
    assert len(lines) == 8, proc.stdout
    assert lines[0].startswith("test errors vs the trivial baseline (mean training energy per atom")
    assert lines[1].startswith("test energy MAE: ") and "(baseline " in lines[1]
    assert lines[5].startswith("test force MAE: ") and "(baseline " in lines[5]
    assert (out / "model.eqx").is_file() and not (out / "parity.png").exists()
    assert io.read_header(out / "model.eqx")["float_dtype"] == "float64"
    with pytest.raises(ValueError, match=r"parameters are float64; enable double precision"):
        load_model(out)  # this process runs in float32
    again = run_train_cli("predict", "--model", str(out), cache=tmp_path / "jax-cache")
    assert again.returncode == 0, again.stderr
    assert [ln for ln in again.stdout.splitlines() if ln.startswith("test ")] == lines


def test_mixed_sizes_and_periodic_extxyz_compile_once(tmp_path: Path, capsys):
    """``--data FILE`` with periodic frames (cell, pbc, stress) of 30-108 atoms and isolated
    13-atom clusters: every step and every prediction has one shape, so each compiles once."""
    ase_io = pytest.importorskip("ase.io", reason="ASE is in the dev extra")
    bulk = load_dataset("bulk")
    sizes = bulk.atom_counts
    picks = np.concatenate([np.flatnonzero(sizes == sizes.min())[:3],
                            np.flatnonzero(sizes == sizes.max())[:3],
                            np.arange(20)])  # 26 periodic frames, smallest and largest included
    frames = [bulk.to_atoms(int(i)) for i in picks]
    frames += [load_dataset().to_atoms(i) for i in range(0, 2000, 100)]  # 20 isolated clusters
    path = tmp_path / "mixed.extxyz"
    ase_io.write(path, frames)
    out = tmp_path / "run"
    assert main(["--data", str(path), "--output", str(out), "--time-budget", "0", "--epochs", "2",
                 "--batch-size", "4", "--num-valid", "6", "--num-test", "6", "--cutoff", "3.0",
                 "--stress-weight", "100", "--no-progress", *_tiny_flags()]) == 0
    printed = capsys.readouterr().out
    assert "46 frames, 13-108 atoms, 26 periodic" in printed
    assert "test stress MAE: " in printed and "mean stress" in printed
    run = json.loads((out / "run.json").read_text())
    m = run["metrics"]
    assert m["compilations_train_step"] == 1 and m["compilations_predict"] == 1
    # Greedy packing into one capacity: batches of up to 4 frames, some with fewer.
    assert m["steps"] >= 2 * 34 // 4 and run["layout"]["max_graphs"] == 4
    assert np.isfinite(m["stress_mae"]) and np.isfinite(m["baseline_stress_mae"])
    model = load_model(out)
    assert model.config.elements == (29, 78) and model.cutoff == 3.0
    assert (out / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # 3 panels


def _tiny_flags() -> list[str]:
    return [a for k, v in TINY.items() for a in (f"--{k.replace('_', '-')}", str(v))]
