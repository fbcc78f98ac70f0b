"""Generates the CustomResourceDefinitions in ``crds/`` from the models in ``overseer.api``.

    python -m overseer.crdgen           # rewrite crds/*.yaml
    python -m overseer.crdgen --check   # exit 1 if the committed files differ

A CRD wants a structural OpenAPI v3 schema: no ``$ref``, no ``anyOf`` with null for optional
fields, a type on every node. pydantic writes JSON Schema, so this module inlines the
references, unwraps ``Optional`` and drops what Kubernetes does not accept (titles, null
defaults).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from overseer import api

CRD_DIR = Path(__file__).resolve().parents[1] / "crds"

# Keywords of JSON Schema that a CRD's OpenAPI v3 schema accepts as they are.
_KEPT = {
    "type", "format", "description", "enum", "pattern", "minLength", "maxLength",
    "minimum", "maximum", "minItems", "maxItems", "items", "properties", "required",
    "default", "additionalProperties",
}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI v3 schema of ``model`` in the structural form that a CRD requires."""
    schema = model.model_json_schema(by_alias=True)
    return _convert(schema, schema.get("$defs", {}))


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)

    # Optional[X] is anyOf [X, null]: the API server has no null type, an absent field says it.
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _convert({**options[0], **rest}, defs)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key not in _KEPT or (key == "default" and value is None):
            continue
        elif key == "properties":
            out[key] = {name: _convert(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = _convert(value, defs)
        else:
            out[key] = value

    if out.get("x-kubernetes-preserve-unknown-fields"):
        # Free-form: a typed schema below it would prune what the user wrote.
        out.pop("additionalProperties", None)
        if out.get("type") not in (None, "object"):
            out.pop("type")
    elif (out.get("type") == "object" and "properties" not in out
          and "additionalProperties" not in out):
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _resource_schema(
    spec: type[BaseModel], status: type[BaseModel], *, root_rules: list[dict[str, str]]
) -> dict[str, Any]:
    status_schema = structural_schema(status)
    # A default of {} on status makes the API server fill in the status defaults (phase
    # Waiting or Pending) on every read, so a new object shows its phase without a write.
    status_schema["default"] = {}
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural_schema(spec),
            "status": status_schema,
        },
    }
    if root_rules:
        schema["x-kubernetes-validations"] = root_rules
    return schema


def _crd(
    *, kind: str, plural: str, short: str, schema: dict[str, Any],
    columns: list[dict[str, Any]], selectable: list[str],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{api.GROUP}"},
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": [api.CATEGORY],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "selectableFields": [{"jsonPath": path} for path in selectable],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def _column(name: str, path: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "jsonPath": path, **extra}


def jobgraph_crd() -> dict[str, Any]:
    name_rule = {
        "rule": f"self.metadata.name.size() <= {api.MAX_GRAPH_NAME}",
        "message": f"a JobGraph name must be at most {api.MAX_GRAPH_NAME} characters "
        "(it becomes a label value on its Jobs)",
    }
    return _crd(
        kind="JobGraph",
        plural=api.GRAPH_PLURAL,
        short="jg",
        schema=_resource_schema(api.JobGraphSpec, api.JobGraphStatus, root_rules=[name_rule]),
        columns=[
            _column("Phase", ".status.phase"),
            _column("Finished", ".status.progress", description="Finished/total jobs"),
            _column("Failed", ".status.counts.failed", "integer"),
            _column("Reason", ".status.reason", priority=1),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ],
        selectable=[".status.phase"],
    )


def job_crd() -> dict[str, Any]:
    return _crd(
        kind="Job",
        plural=api.JOB_PLURAL,
        short="ojob",
        schema=_resource_schema(api.JobSpec, api.JobStatus, root_rules=[]),
        columns=[
            _column("Graph", ".spec.graph"),
            _column("Type", ".spec.type"),
            _column("Phase", ".status.phase"),
            _column("Attempt", ".status.attempt", "integer"),
            _column("Runner", ".status.runner"),
            _column("Reason", ".status.reason", priority=1),
            _column("Next-Attempt", ".status.nextAttemptAt", "date", priority=1),
            _column("Error", ".status.error.message", priority=1),
            _column("Age", ".metadata.creationTimestamp", "date"),
        ],
        # status.runner lets a runner watch just the jobs it holds.
        selectable=[".status.phase", ".spec.type", ".status.runner"],
    )


def rendered() -> dict[Path, str]:
    """The text of every CRD file, keyed by its path."""
    header = "# Generated by `python -m overseer.crdgen` from overseer/api.py. Do not edit.\n"
    return {
        CRD_DIR / f"{crd['metadata']['name']}.yaml": header
        + yaml.safe_dump(crd, sort_keys=False, width=100)
        for crd in (jobgraph_crd(), job_crd())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overseer.crdgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if crds/ is out of date")
    args = parser.parse_args(argv)

    stale = [path for path, text in rendered().items()
             if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path} differs from the models; run python -m overseer.crdgen", file=sys.stderr)
        return 1 if stale else 0
    CRD_DIR.mkdir(exist_ok=True)
    for path, text in rendered().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
