"""The edge agent installs alone on a Raspberry Pi: nothing cloud-side or heavy comes along.

The closure is walked over the installed distributions' metadata (markers evaluated for
this interpreter, extras not followed), and edge/pyproject.toml is read as well, so a
dependency added there fails here before anyone reinstalls.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

EDGE = "iotmon-edge"
EDGE_PYPROJECT = Path(__file__).resolve().parents[2] / "edge" / "pyproject.toml"

FORBIDDEN = {
    "torch": "machine learning belongs to the video service",
    "fastapi": "the HTTP API is a cloud service",
    "starlette": "the HTTP API is a cloud service",
    "uvicorn": "the HTTP API is a cloud service",
    "influxdb": "storage is ingest's job",
    "influxdb-client": "storage is ingest's job",
    "httpx": "the agent speaks MQTT only",
}
FORBIDDEN_PREFIXES = {
    "opencv-python": "video analytics is a cloud service",  # and -headless, -contrib-...
    "opencv-contrib-python": "video analytics is a cloud service",
}


def why_forbidden(name: str) -> str | None:
    name = canonicalize_name(name)
    if name in FORBIDDEN:
        return FORBIDDEN[name]
    for prefix, reason in FORBIDDEN_PREFIXES.items():
        if name.startswith(prefix):
            return reason
    return None


def runtime_requirements(requires: list[str] | None) -> list[Requirement]:
    """Requirements that apply here, without extras (``extra == ...`` markers are false)."""
    applying = []
    for line in requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            applying.append(requirement)
    return applying


def closure(root: str) -> dict[str, list[str]]:
    """Every distribution ``root`` pulls in, each with the chain that brings it."""
    chains: dict[str, list[str]] = {canonicalize_name(root): [root]}
    pending = [canonicalize_name(root)]
    while pending:
        name = pending.pop()
        try:
            requires = metadata.distribution(name).requires
        except metadata.PackageNotFoundError:
            pytest.fail(f"{' -> '.join(chains[name])} is required but not installed")
        for requirement in runtime_requirements(requires):
            child = canonicalize_name(requirement.name)
            if child not in chains:
                chains[child] = [*chains[name], requirement.name]
                pending.append(child)
    return chains


def test_edge_declares_no_heavy_or_cloud_dependency() -> None:
    declared = tomllib.loads(EDGE_PYPROJECT.read_text())["project"]["dependencies"]
    installed = metadata.distribution(EDGE).requires or []
    offenders = [
        f"{line} ({why_forbidden(Requirement(line).name)})"
        for line in [*declared, *installed]
        if why_forbidden(Requirement(line).name)
    ]
    assert offenders == [], f"{EDGE} must not depend on: {offenders}"


def test_edge_pulls_in_no_heavy_or_cloud_dependency_transitively() -> None:
    chains = closure(EDGE)
    offenders = [
        f"{' -> '.join(chain)} ({reason})"
        for name, chain in sorted(chains.items())
        if (reason := why_forbidden(name))
    ]
    assert offenders == [], "\n".join(offenders)
    # The walk reached the edge agent's own dependencies (it is not vacuous).
    assert {"iotmon-contract", "iotmon-devices", "paho-mqtt", "pydantic"} <= set(chains)


def test_the_guard_catches_what_it_guards_against() -> None:
    """The same walk over the cloud services finds the API stack they depend on."""
    chains = closure("iotmon-services")
    assert {"fastapi", "starlette", "uvicorn", "httpx"} <= {
        name for name in chains if why_forbidden(name)
    }
    assert why_forbidden("FastAPI") is not None
    assert why_forbidden("opencv_python_headless") is not None
    assert why_forbidden("paho-mqtt") is None
