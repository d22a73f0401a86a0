"""``iotmon-edge run`` as a real process, and a broker that refuses the login.

A crash must leave the retained last will; SIGTERM must be a clean stop; bad
credentials must not turn into a reconnect storm.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from iotmon_contract import DeviceState, DeviceStatus, status_filter, status_topic
from iotmon_edge import EdgeMqttSettings
from iotmon_edge.agent import build_agent, simulated_agent_config
from iotmon_runtime.mqtt import MqttProtocol
from iotmon_tools.localstack import ManagedProcess, MosquittoProcess, find_program, free_port
from iotmon_tools.localstack.processes import port_open
from tests.edge.recorder import Recorder, recording

EDGE_COMMAND = str(Path(sys.executable).with_name("iotmon-edge"))


def _config_file(tmp_path: Path, tenant: str) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(
        f"tenant: {tenant}\n"
        "agent_id: gw-1\n"
        "publish_interval_s: 0.5\n"
        "drivers:\n"
        "  - type: simulated_environment\n"
        "    count: 2\n"
    )
    return path


def _spawn(config: Path, broker: MosquittoProcess) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "IOTMON_EDGE_MQTT__HOST": broker.host,
        "IOTMON_EDGE_MQTT__PORT": str(broker.port),
    }
    return subprocess.Popen(
        [EDGE_COMMAND, "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _state(recorder: Recorder, tenant: str, device: str) -> DeviceState | None:
    statuses = recorder.statuses(status_topic(tenant, device))
    return statuses[-1].state if statuses else None


def _retained(broker: MosquittoProcess, tenant: str, device: str) -> DeviceStatus:
    with recording(broker.host, broker.port, status_topic(tenant, device)) as late:
        assert late.wait_for(lambda messages: len(messages) == 1, timeout=5)
        (message,) = late.messages()
        assert message.retain
        return DeviceStatus.model_validate_json(message.payload)


def test_a_killed_agent_is_marked_offline_by_its_retained_last_will(
    mosquitto: MosquittoProcess, tenant: str, tmp_path: Path
) -> None:
    with recording(mosquitto.host, mosquitto.port, status_filter(tenant)) as recorder:
        process = _spawn(_config_file(tmp_path, tenant), mosquitto)
        try:
            # The agent announces itself, then its devices: wait for both before the kill.
            assert recorder.wait_for(
                lambda _: (
                    _state(recorder, tenant, "gw-1") == DeviceState.ONLINE
                    and _state(recorder, tenant, "env-0001") == DeviceState.ONLINE
                ),
                timeout=15,
            )
        finally:
            process.kill()  # SIGKILL: no clean disconnect, only the broker can tell
            process.wait(timeout=10)
        assert recorder.wait_for(
            lambda _: _state(recorder, tenant, "gw-1") == DeviceState.OFFLINE, timeout=10
        )
    will = _retained(mosquitto, tenant, "gw-1")
    assert will.state == DeviceState.OFFLINE
    assert will.ts is None  # the last-will form, registered at connect time
    # One connection, one will: the devices keep their last retained state; consumers
    # combine it with the agent's (see the agent's docstring).
    assert _retained(mosquitto, tenant, "env-0001").state == DeviceState.ONLINE


def test_sigterm_stops_cleanly_with_every_device_offline(
    mosquitto: MosquittoProcess, tenant: str, tmp_path: Path
) -> None:
    devices = ["gw-1", "env-0001", "env-0002"]
    with recording(mosquitto.host, mosquitto.port, status_filter(tenant)) as recorder:
        process = _spawn(_config_file(tmp_path, tenant), mosquitto)
        try:
            assert recorder.wait_for(
                lambda _: all(_state(recorder, tenant, d) == DeviceState.ONLINE for d in devices),
                timeout=15,
            )
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=15)
        finally:
            process.kill()
        assert process.returncode == 0, output.decode()
        assert recorder.wait_for(
            lambda _: all(_state(recorder, tenant, d) == DeviceState.OFFLINE for d in devices),
            timeout=10,
        )
    # A clean stop says when: unlike the will, these carry a timestamp.
    assert _retained(mosquitto, tenant, "gw-1").ts is not None


def _password_line(user: str, password: str) -> str:
    """A mosquitto 2 password-file entry ($7$: PBKDF2-SHA512), without mosquitto_passwd."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
    return f"{user}:$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A mosquitto that wants a password; yields its port and log file."""
    program = find_program("mosquitto")
    if program is None:
        pytest.fail("mosquitto is not installed: run ./scripts/test (it installs it)")
    port = free_port()
    passwords = tmp_path / "passwords"
    passwords.write_text(_password_line("edge", "right-password") + "\n")
    passwords.chmod(0o600)
    log = tmp_path / "mosquitto.log"  # log_dest file: stdout is block-buffered
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\nlog_dest file {log}\nlog_type all\n"
        "connection_messages true\n"
    )
    process = ManagedProcess("mosquitto", [program, "-c", str(config)], tmp_path / "stdout.log")
    process.start(lambda: port_open("127.0.0.1", port))
    yield port, log
    process.stop()


@pytest.mark.parametrize("protocol", [MqttProtocol.V5, MqttProtocol.V311])
def test_bad_credentials_stop_the_agent_without_retrying(
    secured_broker: tuple[int, Path], tenant: str, protocol: MqttProtocol
) -> None:
    port, log = secured_broker
    config = simulated_agent_config(tenant, 1, 0.2)
    options = EdgeMqttSettings(
        host="127.0.0.1",
        port=port,
        client_id=f"bad-{protocol.name}",
        protocol=protocol,
        username="edge",
        password="wrong-password",
        reconnect_min_s=1,
    )
    agent = build_agent(config, options)
    agent.start()
    try:
        assert agent.wait(10), "the agent should stop on its own"
        assert agent.failure is not None
        assert "refused the login" in agent.failure
        time.sleep(2.5)  # two reconnect delays: a retrying client would have come back
    finally:
        agent.stop()
    attempts = log.read_text().count("Sending CONNACK")
    assert attempts == 1, log.read_text()
    assert agent.client.stats().connects == 0


def test_good_credentials_connect(secured_broker: tuple[int, Path], tenant: str) -> None:
    port, _ = secured_broker
    options = EdgeMqttSettings(
        host="127.0.0.1", port=port, client_id="good", username="edge", password="right-password"
    )
    agent = build_agent(simulated_agent_config(tenant, 1, 0.2), options)
    agent.start()
    try:
        assert agent.client.wait_connected(10)
        assert agent.failure is None
    finally:
        agent.stop()
