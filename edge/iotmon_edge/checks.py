"""What ``iotmon-edge config check`` (and ``run``, before connecting) verifies beyond the schema.

The YAML and the environment can each be valid and the agent still unable to
run: a TLS file that is missing or is not PEM, a key that does not match its
certificate, a queue folder it cannot write. Each problem names where it was set:
the environment variable or the file and key path.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from iotmon_edge.config import AgentConfig, Settings
from iotmon_runtime.mqtt import MqttSettings


def deployment_problems(config: AgentConfig, settings: Settings, source: str) -> list[str]:
    return [*tls_problems(settings.mqtt), *queue_problems(config, source)]


def tls_problems(mqtt: MqttSettings) -> list[str]:
    if not mqtt.tls:
        return []
    problems: list[str] = []
    for name, path in (
        ("ca_file", mqtt.ca_file),
        ("cert_file", mqtt.cert_file),
        ("key_file", mqtt.key_file),
    ):
        if path is not None and not _readable(path):
            problems.append(f"{Settings.variable('mqtt', name)}: cannot read {path}")
    if problems:
        return problems
    context = ssl.create_default_context()
    if mqtt.ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(mqtt.ca_file))
        except (ssl.SSLError, OSError) as exc:
            problems.append(
                f"{Settings.variable('mqtt', 'ca_file')}: {mqtt.ca_file} is not a PEM CA bundle "
                f"({exc})"
            )
    if mqtt.cert_file is not None:
        try:
            context.load_cert_chain(
                str(mqtt.cert_file), str(mqtt.key_file) if mqtt.key_file else None
            )
        except (ssl.SSLError, OSError) as exc:
            names = Settings.variable("mqtt", "cert_file")
            if mqtt.key_file is not None:
                names += " / " + Settings.variable("mqtt", "key_file")
            problems.append(f"{names}: the certificate and key do not load together ({exc})")
    return problems


def queue_problems(config: AgentConfig, source: str) -> list[str]:
    queue = config.queue
    if queue is None:
        return []
    path = queue.path
    if path.exists():
        if not path.is_file():
            return [f"{source}: queue.path: {path} is not a file"]
        if not _writable(path):
            return [f"{source}: queue.path: {path} is not writable by this user"]
        return []
    folder = _existing_parent(path.parent.absolute())
    if not folder.is_dir() or not _writable(folder):
        return [f"{source}: queue.path: cannot create {path}: {folder} is not a writable folder"]
    return []


def _readable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _existing_parent(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def describe(config: AgentConfig, settings: Settings, username: str | None) -> list[str]:
    """What the agent will do, one line each, for ``config check``."""
    mqtt = settings.mqtt
    scheme = "mqtts" if mqtt.tls else "mqtt"
    identity = f" as {username}" if username else " anonymously"
    tls = ""
    if mqtt.tls:
        tls = " (TLS" + (", client certificate" if mqtt.cert_file else "") + ")"
    lines = [f"broker: {scheme}://{mqtt.address}{identity}{tls}, MQTT {mqtt.protocol.value}"]
    queue = config.queue
    if queue is None:
        lines.append("queue: none: messages wait in memory and are lost if the agent stops")
    else:
        rate = f"{queue.drain_rate:g} msg/s" if queue.drain_rate else "full speed"
        lines.append(
            f"queue: {queue.path} (at most {queue.max_bytes.human_readable()} and "
            f"{queue.max_age_s / 86400:g} days; backlog drained at {rate}, live data first)"
        )
    health = config.health
    lines.append(
        f"health: every {health.interval_s:g}s as agent_* telemetry of {config.agent_id}"
        if health.enabled
        else "health: off"
    )
    return lines
