"""`iotmon simulate`: the fleet simulator is an edge agent with a simulated driver."""

from __future__ import annotations

from typer.testing import CliRunner

from iotmon_contract import TelemetryValidator, status_topic, telemetry_filter
from iotmon_tools.cli.main import build_app
from iotmon_tools.localstack import MosquittoProcess
from tests.edge.recorder import recording


def test_simulate_publishes_the_fleet_for_a_duration(
    mosquitto: MosquittoProcess, tenant: str
) -> None:
    args = [
        "simulate",
        "--devices", "50",
        "--tenant", tenant,
        "--interval", "0.5",
        "--mode", "batch",
        "--mqtt-host", mosquitto.host,
        "--mqtt-port", str(mosquitto.port),
        "--duration", "1.6",
        "--seed", "3",
    ]  # fmt: skip
    with recording(mosquitto.host, mosquitto.port, telemetry_filter(tenant)) as recorder:
        result = CliRunner().invoke(build_app(), args)
        assert result.exit_code == 0, result.output
        assert "readings in" in result.output
        assert recorder.wait_for(lambda messages: len(messages) >= 3, timeout=5)
    devices = set()
    for message in recorder.messages():
        assert message.topic.endswith(f"/{tenant}/sim-0001/telemetry")
        devices |= {r.device for r in TelemetryValidator().validate(message.topic, message.payload)}
    assert len(devices) >= 49  # 50 devices, allowing for a simulated dropout
    with recording(mosquitto.host, mosquitto.port, status_topic(tenant, "env-0050")) as late:
        assert late.wait_for(lambda messages: len(messages) == 1, timeout=5)
        assert b'"offline"' in late.messages()[0].payload


def test_simulate_rejects_a_bad_tenant(mosquitto: MosquittoProcess) -> None:
    result = CliRunner().invoke(
        build_app(),
        [
            "simulate",
            "--tenant",
            "Not Valid",
            "--mqtt-port",
            str(mosquitto.port),
            "--duration",
            "1",
        ],
    )
    assert result.exit_code == 2
    assert "tenant" in result.output
