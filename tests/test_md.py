"""``python -m eqx_mp.md``: NVE and Langevin runs, trajectory, plot and drift."""

from __future__ import annotations

import json
import subprocess
import sys

import ase.io
import numpy as np
import pytest
from helpers import tiny_potential

from eqx_mp import io
from eqx_mp.calculator import Calculator
from eqx_mp.md import default_structure, main, run_md


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    io.save(path / "model.eqx", tiny_potential(energy_scale=0.25))
    return path


def test_nve_command_writes_trajectory_plot_and_drift(run_dir, tmp_path, capsys):
    out = tmp_path / "md"
    assert main(["--model", str(run_dir), "--structure", "bulk:181", "--steps", "60",
                 "--interval", "5", "--output", str(out), "--temperature", "500"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "md.json").read_text())
    assert f"NVE drift: {summary['drift_mev_per_atom_ps']:.4f} meV/atom/ps" in printed
    assert (out / "energies.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frames = ase.io.read(out / "md.traj", index=":")
    assert len(frames) == 60 // 5 + 1 and len(frames[0]) == 31
    # The drift is the slope of the total energy per atom recomputed from the trajectory.
    t = 5 * 2.0e-3 * np.arange(len(frames))
    total = np.array([(a.get_potential_energy() + a.get_kinetic_energy()) / len(a) for a in frames])
    np.testing.assert_allclose(summary["total"], total, rtol=1e-6)
    np.testing.assert_allclose(summary["drift_mev_per_atom_ps"], 1e3 * np.polyfit(t, total, 1)[0],
                               rtol=1e-6, atol=1e-9)
    assert summary["max_deviation_mev_per_atom"] < 0.5  # conserved (float32, 2 fs)
    assert abs(frames[0].get_temperature() - 500) < 200
    assert not np.allclose(frames[0].positions, frames[-1].positions)


def test_langevin_is_thermostatted(run_dir):
    """Strong friction pulls a cold start towards the target; total energy is not conserved."""
    atoms = default_structure("bulk:181")
    calc = Calculator(run_dir)
    out = run_md(calc, atoms, ensemble="langevin", temperature=1500.0, timestep=2.0, steps=60,
                 friction=0.2, interval=10)
    assert out["total"].shape == (7,) and np.all(np.diff(out["time_ps"]) > 0)
    assert out["max_deviation_mev_per_atom"] > 20  # the thermostat adds energy
    assert np.mean(out["temperature"][3:]) > 700
    with pytest.raises(ValueError, match=r"ensemble must be one of \['nve', 'langevin', "
                                         r"'nose-hoover', 'npt'\], got 'nph'"):
        run_md(calc, atoms, ensemble="nph")


def test_default_structure_and_help():
    assert len(default_structure(None)) == 108
    assert len(default_structure("bulk:0", repeat=2)) == 8 * 107
    help_text = subprocess.run([sys.executable, "-m", "eqx_mp.md", "--help"], capture_output=True,
                               text=True, check=True).stdout
    for flag in ("--model", "--structure", "--ensemble", "--timestep", "--steps", "--output",
                 "--tdamp", "nose-hoover", "npt", "--pressure", "--pdamp"):
        assert flag in help_text
