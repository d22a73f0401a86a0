"""``iotmon-homeassistant`` as a process: settings checked, run until SIGTERM, /metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from iotmon_tools.localstack import MosquittoProcess, free_port
from tests.services.ingest.support import unique, wait_until
from tests.utils.prometheus import scrape

PROGRAM = [sys.executable, "-m", "iotmon_homeassistant.cli"]


def environment(**values: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")}
    return {**clean, **values}


def test_config_check_names_a_bad_variable() -> None:
    good = subprocess.run(
        [*PROGRAM, "config", "check"], env=environment(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    bad = subprocess.run(
        [*PROGRAM, "config", "check"],
        env=environment(IOTMON_HOMEASSISTANT_TENANTS="home"),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "IOTMON_HOMEASSISTANT_TENANTS: not a setting" in bad.stderr
    assert "did you mean IOTMON_HOMEASSISTANT_TENANT?" in bad.stderr


def test_runs_until_sigterm_with_metrics(fresh_mosquitto: MosquittoProcess, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*PROGRAM, "run"],
        env=environment(
            IOTMON_HOMEASSISTANT_INSTANCE_ID=unique("cli"),
            IOTMON_HOMEASSISTANT_MQTT__PORT=str(fresh_mosquitto.port),
            IOTMON_HOMEASSISTANT_REGISTRY__URL=f"sqlite:///{tmp_path / 'registry.db'}",
            IOTMON_HOMEASSISTANT_METRICS__PORT=str(port),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def connected() -> bool:
            try:
                # No sample until the bridge has built its client.
                return set(scrape(url).by_label("iotmon_mqtt_connected", "client").values()) == {1}
            except OSError:
                return False

        assert wait_until(connected, 30), "the bridge never served /metrics connected"
        assert scrape(url).value("iotmon_build_info", {"service": "homeassistant"}) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
