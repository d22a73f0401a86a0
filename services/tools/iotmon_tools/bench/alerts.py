"""``iotmon bench alerts``: from the triggering MQTT message to the signed webhook at a receiver.

A real mosquitto, the alert service as its own process (``iotmon-alerts run``,
SQLite database), a loopback HTTP receiver that verifies every signature, and
background telemetry from another process at a fixed rate on the same broker
and tenant (the alert service parses every message of a tenant with rules).
Triggers are sent one at a time, alternating above and below a threshold, so
each one makes exactly one webhook (firing, then resolved); the latency is
from just before the publish to the request read at the receiver, both on
this process's ``perf_counter``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from iotmon_alerts.adapters.database import AlertsDatabase, new_secret
from iotmon_alerts.config import AlertsDatabaseSettings
from iotmon_alerts.routing import Owner
from iotmon_contract import telemetry_topic
from iotmon_runtime.mqtt import MqttClient, MqttSettings
from iotmon_tools.bench.machine import Machine, machine_info
from iotmon_tools.localstack import MosquittoProcess, WebhookReceiver

TENANT = "bench"
RULES = """\
tenant: bench
rules:
  - name: trigger
    type: threshold
    metric: trigger
    above: 0
"""

_BACKGROUND = """
import sys, time, json
from datetime import UTC, datetime
from iotmon_contract import telemetry_topic
from iotmon_runtime.mqtt import MqttClient, MqttSettings
host, port, index = sys.argv[1], int(sys.argv[2]), sys.argv[5]
rate, seconds = float(sys.argv[3]), float(sys.argv[4])
client = MqttClient(MqttSettings(host=host, port=port), client_id=f"bench-bg-{index}")
client.start(); client.wait_connected(10)
topics = [telemetry_topic("bench", f"bg-{index}-{d}") for d in range(50)]
sent = 0; start = time.perf_counter(); step = 0.01; per_step = rate * step
while time.perf_counter() - start < seconds:
    due = int((time.perf_counter() - start) * rate)
    stamp = datetime.now(UTC).isoformat()
    while sent < due:
        payload = '{"metric":"temperature","value":%d,"ts":"%s"}' % (sent % 40, stamp)
        client.publish(topics[sent % 50], payload.encode(), qos=0)
        sent += 1
    time.sleep(step)
client.flush(10); client.stop()
print(json.dumps({"sent": sent, "seconds": time.perf_counter() - start}))
"""


@dataclass(frozen=True, slots=True)
class AlertBenchOptions:
    triggers: int = 300
    background_rate: float = 10_000.0
    background_processes: int = 2
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class AlertBenchResult:
    started: datetime
    machine: Machine
    options: AlertBenchOptions
    latencies_ms: list[float]
    decided_ms: list[float]
    """From the publish to the service's decision (the webhook's ``timestamp``, wall clock)."""
    delivered_ms: list[float]
    """From the decision to the webhook read at the receiver (wall clock)."""
    lost: int
    background_sent: int
    background_seconds: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    bad_signatures: int

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.latencies_ms if values is None else values)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def background_rate(self) -> float:
        return self.background_sent / self.background_seconds if self.background_seconds else 0.0


def _service_env(broker: MosquittoProcess, folder: Path, database_url: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")}
    return {
        **keep,
        "IOTMON_ALERTS_INSTANCE_ID": "bench",
        "IOTMON_ALERTS_MQTT__HOST": broker.host,
        "IOTMON_ALERTS_MQTT__PORT": str(broker.port),
        "IOTMON_ALERTS_MQTT__SHARE_GROUP": "",
        "IOTMON_ALERTS_DATABASE__URL": database_url,
        "IOTMON_ALERTS_REGISTRY__URL": f"sqlite:///{folder / 'registry.db'}",
        "IOTMON_ALERTS_RULES_DIR": str(folder / "rules"),
        "IOTMON_ALERTS_LOG_LEVEL": "WARNING",
        "IOTMON_ALERTS_METRICS__PORT": "0",
    }


def run_alert_benchmark(options: AlertBenchOptions, repo: Path) -> AlertBenchResult:
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="iotmon-bench-alerts-") as tmp:
        folder = Path(tmp)
        (folder / "rules").mkdir()
        (folder / "rules" / f"{TENANT}.yaml").write_text(RULES)
        database_url = f"sqlite:///{folder / 'alerts.db'}"
        receiver = WebhookReceiver()
        secret = new_secret()
        url = receiver.add_endpoint("/bench", secret)
        with AlertsDatabase(AlertsDatabaseSettings(url=SecretStr(database_url))) as database:
            database.add_subscription(
                TENANT, Owner.TENANT, url, secret=secret, now=datetime.now(UTC)
            )
        broker = MosquittoProcess(folder / "mosquitto")
        broker.start()
        receiver.start()
        log = (folder / "alerts.log").open("wb")
        service = subprocess.Popen(
            [sys.executable, "-c", "from iotmon_alerts.cli import run; run()", "run"],
            env=_service_env(broker, folder, database_url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = MqttClient(MqttSettings(host=broker.host, port=broker.port), client_id="bench-pub")
        background: list[subprocess.Popen[str]] = []
        try:
            client.start()
            client.wait_connected(10)
            topic = telemetry_topic(TENANT, "trigger-1")
            # Warm-up: the service is subscribed once a trigger makes a webhook.
            value = 1.0
            deadline = time.monotonic() + 60
            while not receiver.received():
                if time.monotonic() > deadline or service.poll() is not None:
                    raise RuntimeError(f"the alert service did not answer; log in {log.name}")
                client.publish(topic, _reading(value))
                receiver.wait_for(1, 1.0)
            value = -1.0
            client.publish(topic, _reading(value))
            receiver.wait_for(2, options.timeout_s)
            duration = options.triggers / 20 + 15
            per_process = options.background_rate / options.background_processes
            for index in range(options.background_processes):
                background.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _BACKGROUND, broker.host, str(broker.port),
                         str(per_process), str(duration), str(index)],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )  # fmt: skip
            time.sleep(3.0)
            load_before = os.getloadavg()
            latencies: list[float] = []
            decided: list[float] = []
            delivered: list[float] = []
            lost = 0
            for _ in range(options.triggers):
                value = -value
                expected = len(receiver.received()) + 1
                sent_wall, sent_at = time.time(), time.perf_counter()
                client.publish(topic, _reading(value))
                arrived = receiver.wait_for(expected, options.timeout_s)
                if len(arrived) < expected:
                    lost += 1
                    continue
                webhook = arrived[expected - 1]
                latencies.append((webhook.arrived_perf - sent_at) * 1000)
                decided_at = datetime.fromisoformat(webhook.payload["timestamp"]).timestamp()
                decided.append((decided_at - sent_wall) * 1000)
                delivered.append((webhook.arrived - decided_at) * 1000)
                time.sleep(0.05)
            load_after = os.getloadavg()
            sent = seconds = 0.0
            for process in background:
                out, _ = process.communicate(timeout=duration + 60)
                report = json.loads(out.strip().splitlines()[-1])
                sent += report["sent"]
                seconds = max(seconds, report["seconds"])
        finally:
            for process in background:
                if process.poll() is None:
                    process.kill()
            client.stop()
            service.terminate()
            try:
                service.wait(20)
            except subprocess.TimeoutExpired:
                service.kill()
            log.close()
            receiver.stop()
            broker.stop()
    return AlertBenchResult(
        started=started,
        machine=machine_info(repo),
        options=options,
        latencies_ms=latencies,
        decided_ms=decided,
        delivered_ms=delivered,
        lost=lost,
        background_sent=int(sent),
        background_seconds=seconds,
        load_before=load_before,
        load_after=load_after,
        bad_signatures=receiver.bad_signatures,
    )


def _reading(value: float) -> bytes:
    stamp = datetime.now(UTC).isoformat()
    return f'{{"metric":"trigger","value":{value},"ts":"{stamp}"}}'.encode()


def markdown(result: AlertBenchResult) -> str:
    lat = result.latencies_ms
    mean = statistics.fmean(lat) if lat else float("nan")
    load = ", ".join(f"{x:.2f}" for x in result.load_before)
    load_after = ", ".join(f"{x:.2f}" for x in result.load_after)
    return (
        f"\n## Alert latency, {result.started:%Y-%m-%d %H:%M} UTC\n\n"
        f"`iotmon bench alerts` on {result.machine.describe()}, commit {result.machine.commit}. "
        "Triggering MQTT message (QoS 1) → alert service (own process, SQLite) → signed "
        "webhook read by a loopback receiver that verifies it; "
        f"{result.background_rate:,.0f} msg/s of background telemetry (QoS 0, "
        f"{result.options.background_processes} processes) on the same broker and tenant. "
        f"Load average (1, 5, 15 min) {load} before the triggers, {load_after} after "
        "(the machine is shared with other work).\n\n"
        "| triggers | lost | p50 ms | p99 ms | max ms | mean ms | bad signatures |\n"
        "|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {len(lat)} | {result.lost} | {result.percentile(50):.1f} | "
        f"{result.percentile(99):.1f} | {max(lat) if lat else float('nan'):.1f} | {mean:.1f} | "
        f"{result.bad_signatures} |\n\n"
        "Of which (wall clock, the webhook's `timestamp` is the decision): publish → decision "
        f"p50 {result.percentile(50, result.decided_ms):.1f} ms, p99 "
        f"{result.percentile(99, result.decided_ms):.1f} ms; decision → webhook read p50 "
        f"{result.percentile(50, result.delivered_ms):.1f} ms, p99 "
        f"{result.percentile(99, result.delivered_ms):.1f} ms.\n"
    )
