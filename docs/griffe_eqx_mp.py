"""Griffe extension for eqx_mp's docstrings (mkdocs.yml lists it under mkdocstrings' options).

* The docstrings are written in Equinox's style with a few reStructuredText constructs:
  ``:func:`name```-style roles become code spans that link to the API page of the name when
  there is one (optional cross-references: nothing is reported when there is none), and
  ``.. math::`` blocks and ``:math:`` roles become ``$$`` blocks and ``\\( \\)`` (pymdownx.arithmatex).
* Functions generated at import time: the ``reciprocal_*`` and ``exponential_*`` radial functions are made by
``eqx_mp.nn.functions._variants.mapped_variants`` (``a, b = mapped_variants(...)``), which
static analysis cannot see. For every name in a module's ``__all__`` that is a function defined
in that module but missing from the static analysis, this takes its signature and docstring by
inspecting the imported function.
"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap
from typing import Any

import griffe


_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):`(~?)([\w.]+)(?:\(\))?`")
_INLINE_MATH = re.compile(r":math:`([^`]+)`")
_MATH = re.compile(r"^( *)\.\. math::\n((?:\1 +.*\n|\n)+)", re.M)


def _role(match: re.Match[str]) -> str:
    short, target = match.groups()
    text = target.rsplit(".", 1)[-1] if short else target
    return f'<autoref identifier="{target}" optional><code>{text}</code></autoref>'


def _math(match: re.Match[str]) -> str:
    indent, body = match.groups()
    return f"{indent}$$\n{textwrap.indent(textwrap.dedent(body).strip(), indent)}\n{indent}$$\n\n"


def markdown(docstring: str) -> str:
    """``docstring`` with its reStructuredText roles and math blocks in Markdown."""
    text = _MATH.sub(_math, docstring + "\n")
    text = _INLINE_MATH.sub(lambda m: f"\\({m.group(1)}\\)", text)
    return _ROLE.sub(_role, text).rstrip("\n")


class EqxMpDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and obj.path.startswith("eqx_mp"):
            obj.docstring.value = markdown(obj.docstring.value)

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
                function = inspected[name]
                if function.docstring is not None:
                    function.docstring.value = markdown(function.docstring.value)
                mod.set_member(name, function)
