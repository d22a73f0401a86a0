"""A stand-in for Zigbee2MQTT on the demo broker: four of the school's Zigbee sensors (a
climate sensor in the staff room, CO2 in classroom 3, the hall's front-door contact, the
boiler room's leak sensor), published in Zigbee2MQTT's own shapes (bridge/state,
bridge/devices with the converters' exposes, per-device availability and state JSON) for
the school's edge agent's Zigbee2MQTT bridge to map into the contract.

The device entries are Zigbee2MQTT 2.14.1's (zigbee_devices.json, the same as the edge
tests' fixtures); the values follow the demo clock: CO2 rises while classes are in, the
front door opens when the school opens and closes, and the boiler room floods at
BOILER_LEAK for twenty minutes.
"""

from __future__ import annotations

import json
import math
import threading
from datetime import datetime, time, timedelta
from importlib.resources import files
from typing import Any

from iotmon_runtime.mqtt import MqttClient, MqttSettings
from iotmon_tools.demo.clock import DemoClock

BASE_TOPIC = "zigbee2mqtt"
BOILER_LEAK = time(13, 0)
BOILER_LEAK_FOR = timedelta(minutes=20)


def bridge_devices() -> list[dict[str, Any]]:
    text = files("iotmon_tools.demo").joinpath("zigbee_devices.json").read_text()
    devices: list[dict[str, Any]] = json.loads(text)["devices"]
    return devices


def _hour(at: datetime) -> float:
    return at.hour + at.minute / 60 + at.second / 3600


def states(at: datetime) -> dict[str, dict[str, Any]]:
    """Each sensor's state JSON at ``at`` (its friendly name → payload)."""
    hour = _hour(at)
    in_class = 8.5 <= hour < 15.5
    seen = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    leak_start = at.replace(hour=BOILER_LEAK.hour, minute=BOILER_LEAK.minute, second=0)
    flooded = leak_start <= at < leak_start + BOILER_LEAK_FOR
    return {
        "staff room/climate": {
            "battery": 90, "humidity": round(45 + 5 * math.sin(hour / 3), 2),
            "linkquality": 127, "pressure": 1008.3, "voltage": 2985,
            "temperature": round(20.5 + 1.5 * math.sin((hour - 9) / 24 * 2 * math.pi), 2),
            "last_seen": seen,
        },
        "classroom 3": {
            "battery": 95, "co2": round(450 + (700 * min(1.0, hour - 8.5) if in_class else 0)),
            "humidity": 52.3, "temperature": 22.5 if in_class else 19.0, "linkquality": 130,
            "last_seen": seen,
        },
        "hall/front door": {
            "battery": 100, "contact": not (7.4 <= hour < 8.6 or 15.4 <= hour < 16.2),
            "device_temperature": 23, "linkquality": 121, "voltage": 3005, "last_seen": seen,
        },
        "boiler room/leak": {
            "battery": 100, "battery_low": False, "device_temperature": 19, "linkquality": 132,
            "voltage": 3015, "water_leak": flooded, "last_seen": seen,
        },
    }  # fmt: skip


class Zigbee2MqttStandIn:
    """Publishes like Zigbee2MQTT on the broker the school's agent bridges from."""

    def __init__(self, mqtt: MqttSettings, clock: DemoClock, interval: float) -> None:
        self._client = MqttClient(mqtt, client_id="iotmon-demo-zigbee2mqtt", name="zigbee2mqtt")
        self._clock = clock
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zigbee2mqtt", daemon=True)
        self.published = 0

    def start(self) -> None:
        client = self._client
        client.start()
        client.publish(f"{BASE_TOPIC}/bridge/state", json.dumps({"state": "online"}), retain=True)
        devices = bridge_devices()
        client.publish(f"{BASE_TOPIC}/bridge/devices", json.dumps(devices), retain=True)
        for device in devices:
            if device.get("type") != "Coordinator":
                topic = f"{BASE_TOPIC}/{device['friendly_name']}/availability"
                client.publish(topic, json.dumps({"state": "online"}), retain=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for name, state in states(self._clock()).items():
                if self._client.publish(f"{BASE_TOPIC}/{name}", json.dumps(state), qos=0):
                    self.published += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        # Retained state goes, as when Zigbee2MQTT is removed: the next demo starts clean.
        for device in bridge_devices():
            if device.get("type") != "Coordinator":
                topic = f"{BASE_TOPIC}/{device['friendly_name']}/availability"
                self._client.publish(topic, b"", retain=True)
        self._client.publish(f"{BASE_TOPIC}/bridge/devices", b"", retain=True)
        self._client.publish(f"{BASE_TOPIC}/bridge/state", b"", retain=True)
        self._client.stop()
