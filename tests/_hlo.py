"""Count what cannot be timed: ``while`` loops, their sequential iterations and fusions in a
compiled XLA program (``jitted.lower(...).compile().as_text()``).

Nested loops multiply: a loop of 10 trips inside a loop of 100 trips counts 1,000 sequential
iterations (plus the outer loop's 100). A loop without a known trip count is an error, never a
guess.
"""

from __future__ import annotations

import dataclasses
import re

_COMP = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_WHILE = re.compile(r"\swhile\(.*?condition=%?([\w.\-]+),\s*body=%?([\w.\-]+)")
_FUSION = re.compile(r"\sfusion\(")
_TRIP = re.compile(r'"known_trip_count":\{"n":"(\d+)"')
_CALLS = re.compile(r"(?:calls|to_apply|body|condition|branch_computations)=\{?%?([\w.\-, %]+)\}?")


@dataclasses.dataclass(frozen=True)
class LoopStats:
    """Loops and fusions of one compiled program.

    Attributes:
        loops: Number of ``while`` instructions (each counted once per place it appears).
        iterations: Sequential iterations, trip counts of nested loops multiplied.
        fusions: Number of ``fusion`` instructions outside fused computations.
    """

    loops: int
    iterations: int
    fusions: int


def _computations(text: str) -> tuple[dict[str, list[str]], str]:
    comps: dict[str, list[str]] = {}
    entry, name = None, None
    for line in text.splitlines():
        s = line.strip()
        if name is None:
            m = _COMP.match(s)
            if m and not s.startswith("HloModule"):
                name = m.group(1)
                comps[name] = []
                if s.startswith("ENTRY"):
                    entry = name
            continue
        if s == "}":
            name = None
            continue
        comps[name].append(s)
    if entry is None:
        raise ValueError("no ENTRY computation in the HLO text")
    return comps, entry


def loop_stats(hlo_text: str) -> LoopStats:
    """Loops, sequential iterations and fusions of a compiled HLO module's text.

    Arguments:
        hlo_text: ``compiled.as_text()`` of a ``jax.jit(...).lower(...).compile()``.

    Returns:
        A :class:`LoopStats`.

    Raises:
        ValueError: If a loop has no known trip count.
    """
    comps, entry = _computations(hlo_text)
    fused = {c for c in comps if "fused" in c or c.startswith("fusion")}

    def walk(comp: str, mult: int, seen: tuple) -> tuple[int, int, int]:
        loops = iters = fusions = 0
        for s in comps.get(comp, []):
            if comp not in fused and _FUSION.search(s):
                fusions += 1
            w = _WHILE.search(s)
            if w:
                t = _TRIP.search(s)
                if t is None:
                    raise ValueError(f"while loop without a known trip count: {s[:200]}")
                n = int(t.group(1))
                loops += 1
                iters += mult * n
                for sub in w.groups():
                    a, b, c = walk(sub, mult * n, seen + (comp,))
                    loops, iters, fusions = loops + a, iters + b, fusions + c
                continue
            for m in _CALLS.finditer(s):
                for sub in re.split(r"[,\s%]+", m.group(1)):
                    if sub and sub in comps and sub not in seen and sub not in fused:
                        a, b, c = walk(sub, mult, seen + (comp,))
                        loops, iters, fusions = loops + a, iters + b, fusions + c
        return loops, iters, fusions

    loops, iters, fusions = walk(entry, 1, ())
    return LoopStats(loops, iters, fusions)
