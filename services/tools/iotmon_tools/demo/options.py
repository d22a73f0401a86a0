"""What the demo is asked to run, and where its parts listen once started."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from iotmon_registry import RegistrySettings
from iotmon_runtime.mqtt import MqttProtocol
from iotmon_storage import StoreSettings
from iotmon_tools.demo.broker import DemoIdentities
from iotmon_tools.localstack import free_port
from iotmon_tools.localstack.processes import port_open


@dataclass(frozen=True)
class DemoOptions:
    state_dir: Path = Path(".state/demo")
    embedded: bool = False
    devices: int = 200
    interval: float = 1.0
    tenant: str = "demo"
    mode: str = "single"
    api_port: int = 8000
    mqtt_port: int = 1883
    influx_port: int = 8086
    seed: int = 1
    scenario: str = "day"
    """day: the day in the life (every layer); sensors: environment sensors only."""
    speed: float = 60.0
    """Simulated seconds per real second (the day scenario)."""
    video_model: Path | None = None
    """Detector weights (ONNX) for the demo cameras; none: motion-only."""
    video_clip: Path | None = None
    """Footage the demo cameras loop; none: a clip drawn at start."""
    receiver_port: int = 8099

    @property
    def day(self) -> bool:
        return self.scenario == "day"


def port_or_free(preferred: int) -> int:
    """The well-known port when it is free, so the printed URLs are the usual ones."""
    return free_port() if port_open("127.0.0.1", preferred) else preferred


@dataclass
class Endpoints:
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 0
    mqtt_v5: bool = True
    broker: str = ""
    identities: DemoIdentities | None = None
    """The secured broker's logins; none: the embedded broker, which is anonymous."""
    zigbee_port: int = 0
    """The school's own broker, where Zigbee2MQTT publishes (0: the demo's broker)."""
    store: StoreSettings = field(default_factory=StoreSettings)
    store_label: str = ""
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    api_url: str = ""
    ingest_metrics_url: str = ""
    api_token: str = ""
    """An operator token of the demo tenant, minted for this run."""
    receiver_url: str = ""
    """The loopback webhook receiver of the day scenario (GET /received lists them)."""
    webhooks_file: str = ""
    video_media_url: str = ""
    detector: str = ""
    day_label: str = ""

    @property
    def protocol(self) -> MqttProtocol:
        return MqttProtocol.V5 if self.mqtt_v5 else MqttProtocol.V311

    def mqtt(self, part: str) -> dict[str, Any]:
        """MQTT settings fields of the demo's broker for one part of the demo (``ingest``,
        a gateway's id…): address, protocol and, on the secured broker, its login."""
        fields: dict[str, Any] = {
            "host": self.mqtt_host,
            "port": self.mqtt_port,
            "protocol": self.protocol,
        }
        if self.identities is not None:
            login = self.identities.login(part)
            fields |= {"username": login.username, "password": SecretStr(login.password)}
        return fields
