"""Build each demo part from the stack's endpoints: the one place that knows every service."""

from __future__ import annotations

from pathlib import Path

from iotmon_edge import EdgeAgent, MqttProtocol, build_simulated_agent
from iotmon_services.api import ApiServer
from iotmon_services.api import Settings as ApiSettings
from iotmon_services.demo.stack import DemoOptions, Endpoints
from iotmon_services.ingest.config import IngestSettings, MqttSettings
from iotmon_services.ingest.config import MqttProtocol as IngestProtocol
from iotmon_services.ingest.service import IngestService


def build_devices(endpoints: Endpoints, options: DemoOptions) -> EdgeAgent:
    return build_simulated_agent(
        tenant=options.tenant,
        devices=options.devices,
        interval=options.interval,
        mode=options.mode,
        mqtt_host=endpoints.mqtt_host,
        mqtt_port=endpoints.mqtt_port,
        seed=options.seed,
        protocol_version=MqttProtocol.V5 if endpoints.mqtt_v5 else MqttProtocol.V311,
    )


def build_api(endpoints: Endpoints, port: int) -> ApiServer:
    # Warnings only: the demo's console shows the summary, not one line per request.
    settings = ApiSettings(host="127.0.0.1", port=port, store=endpoints.store, log_level="warning")
    return ApiServer(settings)


def build_ingest(endpoints: Endpoints, state_dir: Path) -> IngestService:
    settings = IngestSettings(
        instance_id="demo",
        mqtt=MqttSettings(
            host=endpoints.mqtt_host,
            port=endpoints.mqtt_port,
            protocol=IngestProtocol.V5 if endpoints.mqtt_v5 else IngestProtocol.V311,
        ),
        store=endpoints.store,
        spool_dir=state_dir / "ingest-spool",
    )
    return IngestService(settings)
