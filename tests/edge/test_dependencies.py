"""The edge agent installs alone on a Raspberry Pi: nothing cloud-side or heavy comes along.

The closure is walked over the installed distributions' metadata (markers evaluated for
this interpreter, extras not followed), and edge/pyproject.toml is read as well, so a
dependency added there fails here before anyone reinstalls.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from tests.utils.dependencies import closure, judge, offenders

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
    "sqlalchemy": "the registry and alerts are cloud services",
    "opencv-python-": "video analytics is a cloud service",  # -headless, -contrib-...
    "opencv-python": "video analytics is a cloud service",
    "opencv-contrib-python": "video analytics is a cloud service",
}
why_forbidden = judge(FORBIDDEN)


def test_edge_declares_no_heavy_or_cloud_dependency() -> None:
    declared = tomllib.loads(EDGE_PYPROJECT.read_text())["project"]["dependencies"]
    installed = metadata.distribution(EDGE).requires or []
    bad = [
        f"{line} ({why_forbidden(Requirement(line).name)})"
        for line in [*declared, *installed]
        if why_forbidden(Requirement(line).name)
    ]
    assert bad == [], f"{EDGE} must not depend on: {bad}"


def test_edge_pulls_in_no_heavy_or_cloud_dependency_transitively() -> None:
    found = offenders(EDGE, FORBIDDEN)
    assert found == [], "\n".join(found)
    # The walk reached the edge agent's own dependencies (it is not vacuous).
    chains = closure(EDGE)
    assert {"iotmon-contract", "iotmon-runtime", "iotmon-devices", "paho-mqtt"} <= set(chains)


def test_the_guard_catches_what_it_guards_against() -> None:
    """The same walk over the full tools install finds the API stack it depends on."""
    chains = closure("iotmon-tools")
    assert {"fastapi", "starlette", "uvicorn", "httpx"} <= {
        name for name in chains if why_forbidden(name)
    }
    assert why_forbidden("FastAPI") is not None
    assert why_forbidden("opencv_python_headless") is not None
    assert why_forbidden("paho-mqtt") is None
