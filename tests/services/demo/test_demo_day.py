"""``iotmon demo`` (the day scenario) as a user runs it: every layer live within a minute of
the summary, at the default speed, on mosquitto + influxd and embedded, seen from outside
through the API and the receiver."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from iotmon_tools.localstack import free_port
from tests.services.demo.test_demo import IOTMON, get_json, printed_token
from tests.utils.mqtt_peer import NOT_AUTHORIZED, Peer


def get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        text: str = response.read().decode()
        return text


LIVE_WITHIN_S = 60.0
ZIGBEE_CLIMATE = "zb-00158d0002b3c007"
"""The staff room's Aqara climate sensor: zb-<IEEE address> (zigbee_devices.json)."""


def latest_metrics(base: str, token: str, device: str) -> set[str]:
    body = get_json(f"{base}/api/v1/devices/demo/{device}/latest", token)
    return {r["metric"] for r in body["data"]}


def until(deadline: float, what: str, check: Callable[[], Any]) -> Any:
    """``check()`` until it returns something truthy; fails naming ``what`` at the deadline."""
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:  # 404 until the first reading, connection refused…
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{what} not live within {LIVE_WITHIN_S:.0f} s; last: {last!r}")


WATCH_LINE = re.compile(r"mosquitto_sub -p (\d+) -u (\S+) -P\s*\W*'([^']+)'")
"""The summary's watch command (the table may fold it between -P and the password)."""


def check_the_trust_model(output: str, state: Path, tenant_topic: str) -> None:
    """The demo's mosquitto runs the production trust model: nobody anonymous, each agent
    and service its own identity, and the printed watcher reads only what a service may."""
    folded = re.sub(r"\s*│\s*", " ", output)
    found = WATCH_LINE.search(folded)
    assert found, "the summary prints no mosquitto_sub line with a login"
    port, username, password = int(found[1]), found[2], found[3]
    assert Peer(port, None).connect().is_failure, "an anonymous client was let in"
    assert Peer(port, username, password + "x").connect().is_failure
    watcher = Peer(port, username, password)
    assert not watcher.connect().is_failure, "the printed login was refused"
    try:
        assert watcher.subscribe_code("#") == NOT_AUTHORIZED
        watcher.subscribe(f"{tenant_topic}/+/telemetry")
        assert watcher.messages.get(timeout=10).topic.endswith("/telemetry")
    finally:
        watcher.close()
    # The broker's own file (it rewrites it on every change): one client per agent and
    # service, each with its own role, and no client without a password.
    saved = json.loads((state / "mosquitto" / "dynamic-security.json").read_text())
    clients = {c["username"]: c for c in saved["clients"]}
    expected = {
        "iotmon-ingest", "iotmon-alerts", "demo/school-gw", "demo/depot-gw",
        "demo/bus-1-edge", "demo/bus-2-edge", "demo/bus-3-edge", "demo/video-demo",
    }  # fmt: skip
    assert expected <= set(clients), sorted(clients)
    for name in expected:
        assert clients[name]["password"], name
        assert [r["rolename"] for r in clients[name]["roles"]] != []


@pytest.mark.integration
@pytest.mark.parametrize("embedded", [False, True], ids=["mosquitto-influxd", "embedded"])
def test_every_layer_is_live_within_a_minute(tmp_path: Path, embedded: bool) -> None:
    api_port, receiver_port = free_port(), free_port()
    state = tmp_path / "state"
    argv = [
        # The default speed (60x): what a user who runs scripts/demo sees within a minute.
        str(IOTMON), "demo", "--state-dir", str(state),
        "--api-port", str(api_port), "--mqtt-port", str(free_port()),
        "--influx-port", str(free_port()), "--receiver-port", str(receiver_port),
    ]  # fmt: skip
    if embedded:
        argv.append("--embedded")
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        token = printed_token(log)
        started = time.monotonic()
        deadline = started + LIVE_WITHIN_S
        base = f"http://127.0.0.1:{api_port}"
        output = log.read_text()
        assert f"http://127.0.0.1:{receiver_port}/received" in output
        # Sensors in the rooms, the meters of both sites.
        until(
            deadline,
            "room sensors",
            lambda: {"temperature", "co2"} <= latest_metrics(base, token, "room-0001"),
        )
        until(
            deadline,
            "the depot's water meter",
            lambda: "water_m3" in latest_metrics(base, token, "meter-depot-water"),
        )
        until(
            deadline,
            "the school's gas meter",
            lambda: "gas_m3_total" in latest_metrics(base, token, "meter-school-gas"),
        )
        # The school's Zigbee sensors, through Zigbee2MQTT's shapes and the agent's bridge.
        until(
            deadline,
            "the Zigbee climate sensor",
            lambda: {"temperature", "humidity"} <= latest_metrics(base, token, ZIGBEE_CLIMATE),
        )
        # Buses: the vehicle's position from its agent, and children boarding as the
        # alert service's bus rules saw them (the readers' events, end to end).
        until(
            deadline,
            "bus positions",
            lambda: {"latitude", "longitude"} <= latest_metrics(base, token, "bus-1"),
        )
        notices = until(deadline, "boarding notices", lambda: [
            n for n in get_json(f"{base}/api/v1/notices?tenant=demo", token)["data"]
            if n["kind"] == "boarded"
        ])  # fmt: skip
        assert all(n["subject"]["bus"].startswith("bus-") for n in notices)
        # Cameras: the video service's metrics of the looping clip.
        until(
            deadline,
            "camera metrics",
            lambda: "video_input_fps" in latest_metrics(base, token, "cam-gate"),
        )
        # The depot's leak reaches the facility as a signed webhook.
        secrets = {
            e["path"]: e["secret"] for e in json.loads((state / "webhooks.json").read_text())
        }
        receiver = f"http://127.0.0.1:{receiver_port}/received"

        def leak_webhooks() -> list[dict[str, Any]]:
            return [
                r for r in get_json(receiver)
                if r["path"] == "/facility"
                and any(a["rule"] == "water-leak" for a in r["payload"]["data"].get("alerts", []))
            ]  # fmt: skip

        (first, *_) = until(deadline, "the facility's leak webhook", leak_webhooks)
        elapsed = time.monotonic() - started
        headers = {
            "webhook-id": first["webhook_id"],
            "webhook-timestamp": first["timestamp"],
            "webhook-signature": first["signature"],
        }
        # Verified here again with the subscription's secret: the receiver's check is not
        # taken on trust, and a changed byte of the body would fail.
        assert Webhook(secrets["/facility"]).verify(first["body"], headers)["data"]["alerts"]
        with pytest.raises(Exception, match="signature"):
            Webhook(secrets["/facility"]).verify(first["body"].replace("leak", "leek"), headers)
        assert elapsed < LIVE_WITHIN_S
        # The fleet's children are registered: the API (and the console) know them.
        children = get_json(f"{base}/api/v1/children?tenant=demo", token)["data"]
        assert {c["child"] for c in children} >= {n["subject"]["child"] for n in notices}
        alerts = get_json(f"{base}/api/v1/alerts?tenant=demo", token)["data"]
        assert "water-leak" in {a["rule"] for a in alerts}
        # The operator console serves the day: its bus view knows the fleet and the buses
        # under way or done, from the alert service's own rule files and the stored events.
        assert get_text(f"{base}/console").lstrip().lower().startswith("<!doctype html")
        buses = until(deadline, "the console's bus view", lambda: [
            b for b in get_json(f"{base}/api/v1/console/buses?tenant=demo", token)["data"]
            if b["events"] > 0
        ])  # fmt: skip
        assert {b["bus"] for b in buses} <= {"bus-1", "bus-2", "bus-3"}
        if not embedded:
            check_the_trust_model(log.read_text(), state, "iotmon/v1/demo")
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "demo stopped cleanly" in output
    assert "webhook facility ← water-leak firing" in output
    # No traceback through the platform's code (amqtt, the embedded broker, may log its own
    # and the client it dropped reconnects).
    assert not re.search(r'File "[^"]*/iotmon_\w+/', output), output[-5000:]


def test_receiver_page_is_json(tmp_path: Path) -> None:
    """The receiver's page answers JSON even before anything arrived."""
    from iotmon_tools.localstack.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver()
    receiver.start()
    try:
        with urllib.request.urlopen(receiver.url("/received"), timeout=5) as response:  # noqa: S310
            assert json.load(response) == []
    finally:
        receiver.stop()
