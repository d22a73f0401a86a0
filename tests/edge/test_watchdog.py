"""systemd notifications over a real NOTIFY_SOCKET: readiness, watchdog pings, and no ping
when the outbox hangs (so systemd restarts the agent)."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from iotmon_devices import FaultProfile
from iotmon_edge.agent import build_agent, simulated_agent_config
from iotmon_edge.config import EdgeMqttSettings, QueueConfig
from iotmon_edge.watchdog import SystemdNotifier
from iotmon_tools.localstack import MosquittoProcess

EDGE_COMMAND = str(Path(sys.executable).with_name("iotmon-edge"))
NO_FAULTS = FaultProfile(dropout_rate=0, spike_rate=0, stuck_rate=0)


class NotifySocket:
    """What systemd listens on: a Unix datagram socket; keeps each datagram with its time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self.datagrams: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            with self._lock:
                self.datagrams.append((time.monotonic(), data.decode()))

    def states(self, prefix: str = "") -> list[tuple[float, str]]:
        with self._lock:
            return [(at, d) for at, d in self.datagrams if d.startswith(prefix)]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.states(prefix)) >= count:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    yield listener
    listener.close()


def test_the_environment_says_whether_and_how_often_to_ping() -> None:
    assert SystemdNotifier.from_environment({}) is None
    plain = SystemdNotifier.from_environment({"NOTIFY_SOCKET": "/run/x"})
    assert plain is not None
    assert plain.ping_interval_s is None
    armed = SystemdNotifier.from_environment(
        {"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, pid=42
    )
    assert armed is not None
    assert armed.ping_interval_s == 15.0
    other = SystemdNotifier.from_environment(
        {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "41"}, pid=42
    )
    assert other is not None
    assert other.ping_interval_s is None  # armed for another process


def test_a_missing_socket_is_logged_not_fatal(tmp_path: Path) -> None:
    assert not SystemdNotifier(str(tmp_path / "absent.sock")).notify("WATCHDOG=1")


def test_the_agent_process_says_ready_pings_the_watchdog_and_says_stopping(
    mosquitto: MosquittoProcess, notify_socket: NotifySocket, tmp_path: Path, tenant: str
) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(
        f"tenant: {tenant}\nagent_id: gw-1\npublish_interval_s: 5\n"
        f"queue:\n  path: {tmp_path / 'queue.db'}\n"
        "drivers:\n  - type: simulated_environment\n    count: 2\n"
    )
    env = {
        **os.environ,
        "IOTMON_EDGE_MQTT__HOST": mosquitto.host,
        "IOTMON_EDGE_MQTT__PORT": str(mosquitto.port),
        "NOTIFY_SOCKET": str(notify_socket.path),
        "WATCHDOG_USEC": "400000",  # a ping every 0.2 s
    }
    process = subprocess.Popen(
        [EDGE_COMMAND, "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert notify_socket.wait_for("READY=1"), process.stdout
        (_, ready), *_ = notify_socket.states("READY=1")
        assert f"STATUS=agent {tenant}/gw-1: 2 devices" in ready
        # Pings keep coming although the agent's cycle is 5 s long.
        assert notify_socket.wait_for("WATCHDOG=1", count=8, timeout=10)
        pings = [at for at, _ in notify_socket.states("WATCHDOG=1")]
        assert max(b - a for a, b in itertools.pairwise(pings)) < 1.5
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, output.decode()
    assert notify_socket.states("STOPPING=1")


@contextmanager
def _database_locked(path: Path) -> Iterator[None]:
    """Another writer holding the queue file: the outbox's next commit waits on it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def test_no_ping_while_the_outbox_hangs(
    mosquitto: MosquittoProcess, notify_socket: NotifySocket, tmp_path: Path, tenant: str
) -> None:
    queue = QueueConfig(path=tmp_path / "queue.db")
    config = simulated_agent_config(tenant, 2, 0.2, agent_id="gw-1", faults=NO_FAULTS, queue=queue)
    notifier = SystemdNotifier(str(notify_socket.path), watchdog_usec=500_000)
    agent = build_agent(config, EdgeMqttSettings(port=mosquitto.port), notifier=notifier)
    agent.start()
    try:
        assert notify_socket.wait_for("WATCHDOG=1", count=3)
        with _database_locked(queue.path):
            time.sleep(0.3)  # the outbox is now stuck in its next commit
            blocked_at = time.monotonic()
            time.sleep(5.0)
            pings = [at for at, _ in notify_socket.states("WATCHDOG=1") if at > blocked_at + 3.2]
            # Silent for 3 s (the floor of the watchdog timeout), the outbox counts as hung.
            assert pings == []
        resumed_at = time.monotonic()
        assert notify_socket.wait_for("WATCHDOG=1", count=1 + len(notify_socket.states("W")))
        assert notify_socket.states("WATCHDOG=1")[-1][0] > resumed_at
    finally:
        agent.stop()
