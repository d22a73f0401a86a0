"""Each service's distribution carries only what it runs: no web stack in ingest, no demo
broker or Grafana client in either, no machine learning anywhere but video.

Read from the installed metadata and the declared pyproject.toml, so a dependency
added to a service fails here before anyone builds its image.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.utils.dependencies import closure, judge, offenders

ROOT = Path(__file__).resolve().parents[2]

NOT_IN_SERVICES = {
    "amqtt": "the embedded broker is demo tooling (iotmon-tools)",
    "grafana-client": "dashboards push is an operator tool (iotmon-tools)",
    "typer": "service CLIs are argparse; typer is the iotmon tools CLI",
    "torch": "machine learning belongs to the video service",
    "ultralytics": "machine learning belongs to the video service",
    "opencv-python": "video analytics belongs to the video service",
    "opencv-python-": "video analytics belongs to the video service",
    "onnxruntime": "machine learning belongs to the video service",
    "numpy": "array maths is the video service's (ingest parses with pydantic-core)",
}
VIDEO_EXTRAS = {
    "torch": "the batched GPU path is the video service's gpu extra, not its base install",
    "ultralytics": "Ultralytics is the video service's ultralytics extra",
}
WEB_STACK = {
    "fastapi": "the HTTP API is its own service",
    "starlette": "the HTTP API is its own service",
    "uvicorn": "the HTTP API is its own service",
}
CASES = {
    "iotmon-ingest": ("services/ingest", NOT_IN_SERVICES | WEB_STACK),
    "iotmon-api": ("services/api", NOT_IN_SERVICES),
    "iotmon-alerts": ("services/alerts", NOT_IN_SERVICES | WEB_STACK),
    "iotmon-storage": ("services/storage", NOT_IN_SERVICES | WEB_STACK),
    "iotmon-registry": (
        "services/registry",
        NOT_IN_SERVICES | WEB_STACK | {"paho-mqtt": "the registry is SQL; ingest brings MQTT"},
    ),
    "iotmon-homeassistant": (
        "services/homeassistant",
        NOT_IN_SERVICES | WEB_STACK | {"httpx": "the bridge speaks MQTT and SQL only"},
    ),
    "iotmon-video": (
        "services/video",
        VIDEO_EXTRAS
        | WEB_STACK
        | {k: v for k, v in NOT_IN_SERVICES.items() if k in {"amqtt", "grafana-client", "typer"}},
    ),
    "iotmon-runtime": (
        "runtime",
        NOT_IN_SERVICES | WEB_STACK | {"httpx": "the runtime speaks MQTT only"},
    ),
}


@pytest.mark.parametrize("distribution", sorted(CASES))
def test_service_closure_carries_nothing_it_does_not_run(distribution: str) -> None:
    _, forbidden = CASES[distribution]
    found = offenders(distribution, forbidden)
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("distribution", sorted(CASES))
def test_declared_dependencies_are_allowed(distribution: str) -> None:
    folder, forbidden = CASES[distribution]
    declared = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"]
    why = judge(forbidden)
    bad = [line for line in declared["dependencies"] if why(Requirement(line).name)]
    assert bad == [], f"{distribution} must not depend on: {bad}"


def test_ingest_closure_is_what_ingest_runs() -> None:
    chains = closure("iotmon-ingest")
    # Not vacuous: the walk reached ingest's own needs.
    assert {"iotmon-runtime", "iotmon-storage", "paho-mqtt", "httpx", "pydantic"} <= set(chains)
    assert "iotmon-edge" not in chains, chains.get("iotmon-edge")
    assert "iotmon-devices" not in chains, chains.get("iotmon-devices")


def test_the_guard_sees_the_web_stack_where_it_is() -> None:
    found = offenders("iotmon-tools", NOT_IN_SERVICES | WEB_STACK)
    assert any("fastapi" in line for line in found)
    assert any("amqtt" in line for line in found)
    assert any("grafana-client" in line for line in found)


def test_video_closure_carries_its_vision_stack_and_no_other_service() -> None:
    chains = closure("iotmon-video")
    assert {"opencv-python-headless", "onnxruntime", "numpy", "iotmon-runtime"} <= set(chains)
    for other in ("iotmon-ingest", "iotmon-api", "iotmon-edge", "iotmon-devices"):
        assert other not in chains, chains.get(other)
