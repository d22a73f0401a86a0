"""``iotmon demo`` as a user runs it: a subprocess, live data through the API, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from iotmon_tools.localstack import free_port

IOTMON = Path(sys.executable).with_name("iotmon")


TOKEN = re.compile(r"export IOTMON_TOKEN=(iotmon_[0-9a-f]{12}_[A-Za-z0-9_-]{43})$", re.M)


def get_json(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url)  # noqa: S310
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.load(response)


def printed_token(log: Path, timeout: float = 90.0) -> str:
    """The token the demo's summary prints, once it has printed it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if match := TOKEN.search(log.read_text(errors="replace")):
            return match.group(1)
        time.sleep(0.5)
    raise AssertionError(f"the demo printed no token:\n{log.read_text()[-3000:]}")


def poll(url: str, ready: Any, timeout: float = 60.0, token: str | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = get_json(url, token)
            if ready(last):
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"{url} never became ready; last answer: {last!r}")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("embedded", "mode"),
    [(False, "single"), (True, "batch")],
    ids=["mosquitto-influxd", "embedded-batch"],
)
def test_demo_serves_live_data_and_stops_cleanly(tmp_path: Path, embedded: bool, mode: str) -> None:
    # Batch mode: the agent speaks for its sensors, which the demo registered as its children.
    api_port = free_port()
    argv = [
        str(IOTMON), "demo", "--devices", "20", "--interval", "0.5",
        "--state-dir", str(tmp_path / "state"), "--api-port", str(api_port),
        "--mqtt-port", str(free_port()), "--influx-port", str(free_port()),
    ]  # fmt: skip
    argv += ["--mode", mode, "--scenario", "sensors"]
    if embedded:
        argv.append("--embedded")
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        base = f"http://127.0.0.1:{api_port}"
        poll(f"{base}/health", lambda body: body.get("status") == "ok", timeout=90)
        token = printed_token(log)
        # The ready-made line is there too, with the same token.
        assert f'curl -s -H "Authorization: Bearer {token}" {base}/api/v1/devices' in (
            log.read_text()
        )
        with pytest.raises(urllib.error.HTTPError, match="401"):
            get_json(f"{base}/api/v1/devices?tenant=demo")
        sensors = {f"env-{i:04d}" for i in range(1, 21)}
        devices = poll(
            f"{base}/api/v1/devices?tenant=demo",
            lambda body: (
                sensors
                <= {d["device"] for d in body["data"] if d["last_seen"] and d["state"] == "online"}
            ),
            token=token,
        )
        # The sensors plus the edge agent that serves them: it reports its availability and its
        # own health (queue depth and the like) under its id.
        assert {d["device"] for d in devices["data"]} == {*sensors, "sim-0001"}
        agent = next(d for d in devices["data"] if d["device"] == "sim-0001")
        assert agent["state"] == "online"
        poll(
            f"{base}/api/v1/devices/demo/sim-0001/latest",
            lambda body: "agent_queue_depth" in {r["metric"] for r in body["data"]},
            token=token,
        )
        first = poll(
            f"{base}/api/v1/devices/demo/env-0001/latest",
            lambda body: {"temperature", "humidity", "co2"} <= {r["metric"] for r in body["data"]},
            token=token,
        )
        # Live: a later answer carries newer readings than the first one.
        newer = poll(
            f"{base}/api/v1/devices/demo/env-0001/latest",
            lambda body: max(r["ts"] for r in body["data"]) > max(r["ts"] for r in first["data"]),
            token=token,
        )
        temperature = next(r for r in newer["data"] if r["metric"] == "temperature")
        assert -30 < temperature["value"] < 60
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    output = log.read_text()
    assert code == 0, output
    assert "demo stopped cleanly" in output
    assert ("embedded amqtt" in output) is embedded
