"""mkdocs hooks: the pages and images that live elsewhere in the repository.

* ``notebooks/*.ipynb`` are rendered with their outputs (plots included) by mkdocs-jupyter, which
  does not execute them (``execute: false``). The outputs come from the test run: the README's
  test command copies the notebooks to ``build/notebooks/`` and runs them there with
  ``pytest --nbmake --overwrite``, which stores each executed notebook. A copy is used only if its
  cells are those of ``notebooks/`` (so an edited notebook is never shown with old outputs);
  otherwise the notebook is executed here (a few minutes each on a CPU) and the copy written.
* ``benchmarks/results/*.png`` are served as ``benchmarks/*.png`` (``docs/benchmarks.md``).
* ``CHANGELOG.md`` is the page ``changelog.md``.
* ``<!-- readme:NAME -->`` in a page is replaced by the README's section between
  ``<!-- section:NAME -->`` and ``<!-- /section:NAME -->``, its headings one level up (the
  training flags and the headline benchmark tables live in the README, written once).
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "build" / "notebooks"
RESULTS = ROOT / "benchmarks" / "results"

log = logging.getLogger("mkdocs.hooks.eqx_mp")


def _cells(path: Path) -> list[tuple[str, str]]:
    cells = json.loads(path.read_text())["cells"]
    return [(c["cell_type"], "".join(c["source"])) for c in cells]


def _executed(source: Path) -> Path:
    """The executed copy of ``source`` in ``build/notebooks/``, executing it if there is none."""
    out = EXECUTED / source.name
    if out.is_file() and _cells(out) == _cells(source):
        return out
    import nbclient
    import nbformat

    log.info("executing %s (no executed copy with its cells in build/notebooks/)", source.name)
    start = time.perf_counter()
    nb = nbformat.read(source, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    log.info("executed %s in %.0f s", source.name, time.perf_counter() - start)
    return out


@event_priority(100)  # before mkdocs-jupyter, which picks up the .ipynb files in on_files
def on_files(files: Files, config: Any) -> Files:
    for source in sorted(NOTEBOOKS.glob("*.ipynb")):
        executed = _executed(source)  # build/notebooks/NAME: a plain file (mkdocs-jupyter
        # wraps it and keeps only src_dir/src_uri, so File.generated's abs_src_path is lost)
        files.append(File(f"notebooks/{source.name}", src_dir=str(executed.parent.parent),
                          dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    for image in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"benchmarks/{image.name}", abs_src_path=str(image)))
    files.append(File.generated(config, "changelog.md",
                                content=(ROOT / "CHANGELOG.md").read_text()))
    return files


def _readme_section(match: re.Match[str]) -> str:
    name = match.group(1)
    readme = (ROOT / "README.md").read_text()
    start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
    if start not in readme or end not in readme:
        raise ValueError(f"README.md has no section {name!r} ({start} ... {end})")
    text = readme[readme.index(start) + len(start):readme.index(end)]
    text = re.sub(r"\]\(docs/([^)]*)\)", r"](\1)", text)  # README links into docs/ -> page links
    text = re.sub(r"\]\(benchmarks/results/([^)/]*\.png)\)", r"](benchmarks/\1)", text)  # served
    return re.sub(r"^#(#+) ", r"\1 ", text.strip(), flags=re.M)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return re.sub(r"<!-- readme:([\w-]+) -->", _readme_section, markdown)
