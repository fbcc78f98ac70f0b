"""The graph shapes the benchmark runs, as JobGraph manifests and as dependency maps.

The same three shapes run on Overseer and on the Celery peer:

* ``independent``: ``n`` jobs with no dependencies;
* ``chain``: ``n`` jobs, each depending on the one before;
* ``layered``: ``layers`` layers of ``width`` jobs; each job of a layer depends on
  ``fan_in`` jobs of the previous layer (its own column and its neighbours, wrapping
  around), so every job of a layer is needed by ``fan_in`` jobs of the next.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from overseer.api import API_VERSION


@dataclass(frozen=True)
class Shape:
    kind: str  # independent | chain | layered
    jobs: int
    layers: int = 1
    width: int = 0
    fan_in: int = 0

    @property
    def label(self) -> str:
        if self.kind == "layered":
            return f"layered-{self.layers}x{self.width}"
        return f"{self.kind}-{self.jobs}"

    def depends_on(self) -> dict[str, list[str]]:
        """Job name -> names of its dependencies, in creation order."""
        if self.kind == "independent":
            return {f"j{i}": [] for i in range(self.jobs)}
        if self.kind == "chain":
            return {f"j{i}": ([f"j{i - 1}"] if i else []) for i in range(self.jobs)}
        out: dict[str, list[str]] = {}
        half = self.fan_in // 2
        for layer in range(self.layers):
            for col in range(self.width):
                deps: list[str] = []
                if layer:
                    cols = sorted({(col + d) % self.width for d in range(-half, self.fan_in - half)})
                    deps = [f"l{layer - 1}-{c}" for c in cols]
                out[f"l{layer}-{col}"] = deps
        return out


def independent(n: int) -> Shape:
    return Shape("independent", n)


def chain(n: int) -> Shape:
    return Shape("chain", n)


def layered(layers: int, width: int, fan_in: int = 3) -> Shape:
    return Shape("layered", layers * width, layers=layers, width=width, fan_in=fan_in)


def manifest(shape: Shape, name: str) -> dict[str, Any]:
    """The JobGraph for ``shape``: every job of type ``noop``."""
    jobs = []
    for job, deps in shape.depends_on().items():
        entry: dict[str, Any] = {"name": job, "type": "noop"}
        if deps:
            entry["dependsOn"] = deps
        jobs.append(entry)
    return {
        "apiVersion": API_VERSION,
        "kind": "JobGraph",
        "metadata": {"name": name},
        "spec": {"jobs": jobs},
    }


def manifest_bytes(body: dict[str, Any]) -> bytes:
    """The compact JSON the benchmark sends; its length is the manifest size it reports."""
    return json.dumps(body, separators=(",", ":")).encode()
