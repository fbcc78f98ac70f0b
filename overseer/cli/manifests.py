"""Reading JobGraph manifests from a YAML file (one or many documents) or from stdin."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from overseer.api import API_VERSION
from overseer.cli.errors import CliError


def read(path: str) -> list[dict[str, Any]]:
    """The JobGraphs in ``path`` ("-" for stdin); empty documents are skipped."""
    source = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except FileNotFoundError:
        raise CliError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{source}: is a directory, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{source}: cannot read: {exc}") from None

    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise CliError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from None

    if not documents:
        raise CliError(f"{source}: no JobGraph in it")
    for number, document in enumerate(documents, start=1):
        _check(source, number, document)
    return documents


def _check(source: str, number: int, document: Any) -> None:
    where = f"{source}: document {number}"
    if not isinstance(document, dict):
        raise CliError(f"{where} is a {type(document).__name__}, not a JobGraph manifest")
    kind, version = document.get("kind"), document.get("apiVersion")
    if kind != "JobGraph" or version != API_VERSION:
        raise CliError(f"{where} is {version or 'no apiVersion'} {kind or 'no kind'}; "
                       f"overseer submit takes {API_VERSION} JobGraph")
    name = (document.get("metadata") or {}).get("name")
    if not name or not isinstance(name, str):
        raise CliError(f"{where} has no metadata.name")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's problem and where it is, on one line (its own str spans several)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return problem
