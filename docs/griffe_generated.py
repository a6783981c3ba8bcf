"""Griffe extension: document the functions eqx_mp creates at import time.

The ``reciprocal_*`` and ``exponential_*`` radial functions are made by
``eqx_mp.nn.functions._variants.mapped_variants`` (``a, b = mapped_variants(...)``), which
static analysis cannot see. For every name in a module's ``__all__`` that is a function defined
in that module but missing from the static analysis, this takes its signature and docstring by
inspecting the imported function.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import griffe


class GeneratedFunctions(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path == "eqx_mp":
            self._add(pkg)

    def _add(self, mod: griffe.Module) -> None:
        for name, member in list(mod.modules.items()):
            if not name.startswith("_"):  # never import __main__ (it runs a command line)
                self._add(member)
        try:
            runtime = importlib.import_module(mod.path)
        except ImportError:
            return
        missing = [
            name for name in getattr(runtime, "__all__", ())
            if name not in mod.members and inspect.isfunction(getattr(runtime, name))
            and getattr(runtime, name).__module__ == mod.path
        ]
        if missing:
            inspected = griffe.inspect(mod.path, filepath=mod.filepath)
            for name in missing:
                mod.set_member(name, inspected[name])
