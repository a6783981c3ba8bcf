"""The documentation site documents exactly the public API.

Every name in the ``__all__`` of eqx_mp and of each public subpackage or module (and of the
modules those list, e.g. ``eqx_mp.nn.initializers``) has a ``::: eqx_mp.<path>`` directive on a
page under ``docs/`` (mkdocstrings renders it from the docstring), or is the same object as a
documented name (``eqx_mp.Dense`` is ``eqx_mp.nn.Dense``), or is a module whose names are all
documented. A nested module documented by path (``eqx_mp.interop.jax_md``) must document its
whole ``__all__`` too. Every directive names a public name. ``mkdocs build --strict`` in the test command
checks the rest (the directives resolve, cross-references and pages exist).
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import eqx_mp

ROOT = Path(__file__).resolve().parent.parent
DIRECTIVE = re.compile(r"^::: (eqx_mp(?:\.\w+)*)\s*$", re.M)


def _documented() -> dict[str, object]:
    """Each ``::: path`` of the docs, resolved to its object."""
    found = {}
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for path in DIRECTIVE.findall(page.read_text()):
            found[path] = _resolve(path)
    return found


def _resolve(path: str) -> object:
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(path)


def _public_modules() -> dict[str, ModuleType]:
    """eqx_mp, its public top-level subpackages and modules, and the modules any of them export."""
    modules = {"eqx_mp": eqx_mp}
    for info in pkgutil.iter_modules(eqx_mp.__path__):
        if not info.name.startswith("_"):
            modules[f"eqx_mp.{info.name}"] = importlib.import_module(f"eqx_mp.{info.name}")
    todo = list(modules)
    while todo:
        name = todo.pop()
        for attr in getattr(modules[name], "__all__", ()):
            obj = getattr(modules[name], attr)
            new = inspect.ismodule(obj) and obj.__name__ not in modules
            if new and obj.__name__.startswith("eqx_mp"):
                modules[obj.__name__] = obj
                todo.append(obj.__name__)
    return modules


DOCUMENTED = _documented()
MODULES = _public_modules()
# A nested module documented by path (e.g. ``::: eqx_mp.interop.jax_md.potential``) is public too.
MODULES.update({p.rpartition(".")[0]: _resolve(p.rpartition(".")[0]) for p in DOCUMENTED
                if inspect.ismodule(_resolve(p.rpartition(".")[0]))})


def test_the_docs_have_api_directives():
    assert len(DOCUMENTED) > 100
    assert "eqx_mp.nn.MessagePass" in DOCUMENTED


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_public_name_is_documented(module):
    mod = MODULES[module]
    assert hasattr(mod, "__all__"), f"{module} has no __all__"
    objects = [obj for obj in DOCUMENTED.values()]
    missing = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if f"{module}.{name}" in DOCUMENTED or any(obj is o for o in objects):
            continue
        if inspect.ismodule(obj) and obj.__name__ in MODULES:
            continue  # a public module: its own names are checked by its own case
        missing.append(name)
    assert not missing, f"{module}.__all__ names without a '::: {module}.<name>' in docs/: {missing}"


def test_every_directive_names_a_public_name():
    private = []
    for path in DOCUMENTED:
        module, _, name = path.rpartition(".")
        if path in MODULES:
            continue  # a module page's docstring (e.g. ::: eqx_mp.io)
        if module not in MODULES or name not in MODULES[module].__all__:
            private.append(path)
    assert not private, f"directives for names that are not in their module's __all__: {private}"
