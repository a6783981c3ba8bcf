"""The built wheel works on its own, and each extra brings what its code paths import.

``python -m build`` makes the wheel, which is installed (``--no-deps``) into a fresh virtual
environment outside the source tree. To avoid downloading jax & co. again, that environment sees
this one's site-packages through a ``.pth`` line, but only what an install of the wheel with a
given extra would bring: an import hook refuses every top-level module whose distribution is not
in the closure of ``eqx_mp``'s requirements for that extra (the standard library is always
allowed). From there, with only the core dependencies: import eqx_mp (the wheel's, not the
sources), load the embedded Cu/Pt sets and the quadrature grids. With the ``train`` extra: load
every embedded set, train for 10 seconds (``python -m eqx_mp.train``), run
``python -m eqx_mp.md`` through the ASE calculator on the trained model.
"""

import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Run in the child before anything else (the venv's sitecustomize): refuse modules of
# distributions that an install of eqx_mp with the extra under test would not bring.
GUARD = '''
import importlib.abc, json, os, sys
_BLOCKED = frozenset(json.loads(os.environ.get("EQX_MP_BLOCKED", "[]")))
class _NotADependency(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in _BLOCKED:
            raise ModuleNotFoundError(
                f"No module named {top!r} (not a dependency of eqx_mp[{os.environ['EQX_MP_EXTRA']}])",
                name=name)
        return None
sys.meta_path.insert(0, _NotADependency())
'''


def _closure(extra: str | None) -> set[str]:
    """Normalised names of the distributions ``pip install eqx_mp[extra]`` installs."""
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    project = PYPROJECT["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    todo += [Requirement(r) for r in project["optional-dependencies"].get(extra or "", [])]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        extras = req.extras
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = norm(req.name)
        if name == "eqx-mp":  # a self-reference (eqx_mp[train,e3x])
            for e in extras:
                todo += [Requirement(r) for r in project["optional-dependencies"][e]]
            continue
        key = name + "[" + ",".join(sorted(extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:  # not installed here: nothing to allow under it
            continue
        for r in requires:
            dep = Requirement(r)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in ["", *extras]):
                todo.append(dep)
    return {k.partition("[")[0] for k in seen}


def _blocked(extra: str | None) -> list[str]:
    """Top-level modules of installed distributions outside the extra's closure."""
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    allowed = _closure(extra)
    blocked = set()
    for top, dists in metadata.packages_distributions().items():
        if not any(norm(d) in allowed for d in dists) and top not in sys.stdlib_module_names:
            blocked.add(top)
    return sorted(blocked - {"eqx_mp"})


def _check(cmd: list[str]) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout.strip()


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """(python of a fresh venv holding the built wheel, a work directory outside the sources)."""
    tmp = tmp_path_factory.mktemp("wheel")
    _check([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
            str(tmp / "dist"), str(ROOT)])
    (wheel,) = (tmp / "dist").glob("eqx_mp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("eqx_mp/data/cupt_icosahedron.npz", "eqx_mp/data/cupt_bulk.npz",
                 "eqx_mp/so3/data/quadrature_grids.npz"):
        assert data in names
    assert not [n for n in names if n.startswith(("tests/", "notebooks/", "docs/"))]
    venv = tmp / "venv"
    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _check([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
            "--no-index", str(wheel)])
    site = Path(_check([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]))
    # This environment's packages after the venv's own (the wheel's eqx_mp comes first), with no
    # processing of their .pth files (so the editable install's path to the sources is not added).
    (site / "zz_reuse_packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (site / "sitecustomize.py").write_text(GUARD)
    work = tmp / "work"
    work.mkdir()
    return python, work


def _run(wheel_env, extra, args, timeout=600):
    python, work = wheel_env
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(EQX_MP_BLOCKED=json.dumps(_blocked(extra)), EQX_MP_EXTRA=extra or "",
               JAX_PLATFORMS="cpu", MPLBACKEND="Agg")
    res = subprocess.run([str(python), *args], cwd=work, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"{args} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def test_closure_knows_the_extras():
    """The guard is only as good as the closure: it must keep and drop the right packages."""
    core, train = _closure(None), _closure("train")
    assert {"jax", "equinox", "numpy"} <= core and not {"ase", "optax", "e3x", "flax"} & core
    assert {"ase", "optax", "vesin", "matplotlib"} <= train and "e3x" not in train
    assert "ase" in _blocked(None) and "ase" not in _blocked("train") and "e3x" in _blocked("train")


@pytest.mark.slow
def test_wheel_core_imports_data_and_grids(wheel_env):
    script = f'''
import eqx_mp, numpy as np
from pathlib import Path
root = Path({str(ROOT)!r})
assert root not in Path(eqx_mp.__file__).parents, eqx_mp.__file__
assert eqx_mp.__version__ == {PYPROJECT["project"]["version"]!r}, eqx_mp.__version__
try:
    import ase
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("the guard let ase in without the train extra")
from eqx_mp.data import load_dataset
sizes = [len(load_dataset(name).energies) for name in ("cluster", "bulk")]
grids = [eqx_mp.so3.lebedev_quadrature(precision=10), eqx_mp.so3.delley_quadrature(precision=10)]
for r, w in grids:
    assert abs(float(np.sum(w)) - 1.0) < 1e-5 and np.allclose(np.linalg.norm(r, axis=-1), 1.0, atol=1e-5)
print("ok", eqx_mp.__file__, sizes)
'''
    out = _run(wheel_env, None, ["-c", script])
    assert out.startswith("ok ") and "[2000, 960]" in out


@pytest.mark.slow
def test_wheel_train_extra_trains_and_runs_md(wheel_env):
    python, work = wheel_env
    out = _run(wheel_env, "train", ["-c", (
        "from eqx_mp.data import EMBEDDED_DATASETS, load_dataset\n"
        "print({n: len(load_dataset(n).energies) for n in EMBEDDED_DATASETS})")])
    assert all(int(v) > 0 for v in re.findall(r": (\d+)", out))
    run = work / "run"
    _run(wheel_env, "train", ["-m", "eqx_mp.train", "--time-budget", "10", "--output", str(run),
                              "--features", "8", "--num-basis", "8", "--num-valid", "20",
                              "--num-test", "20", "--no-progress"])
    result = json.loads((run / "run.json").read_text())
    assert (run / "model.eqx").is_file() and (run / "parity.png").is_file()
    assert json.dumps(result).count("force_mae") >= 1
    md = work / "md"
    out = _run(wheel_env, "train", ["-m", "eqx_mp.md", "--model", str(run), "--engine", "ase",
                                    "--steps", "5", "--output", str(md), "--no-progress"])
    assert "drift" in out.lower(), out
    assert (md / "md.json").is_file()
    _run(wheel_env, "train", [str(python.parent / "eqx-mp-train"), "--help"])
