"""Build each demo part from the stack's endpoints: the one place that knows every service."""

from __future__ import annotations

from pathlib import Path

from iotmon_alerts.config import AlertsDatabaseSettings
from iotmon_api import ApiServer
from iotmon_api import Settings as ApiSettings
from iotmon_api.console.settings import ConsoleSettings
from iotmon_edge import (
    AgentConfig,
    EdgeAgent,
    EdgeMqttSettings,
    build_agent,
    simulated_agent_config,
)
from iotmon_ingest import IngestMqttSettings, IngestService, IngestSettings
from iotmon_ingest.config import IngestMetricsSettings, IngestRegistrySettings
from iotmon_tools.demo.broker import INGEST
from iotmon_tools.demo.options import DemoOptions, Endpoints


def agent_config(options: DemoOptions) -> AgentConfig:
    """The simulated agent: registered in the registry first, then started."""
    return simulated_agent_config(
        options.tenant, options.devices, options.interval, options.mode, seed=options.seed
    )


def build_devices(endpoints: Endpoints, config: AgentConfig) -> EdgeAgent:
    mqtt = EdgeMqttSettings(reconnect_max_s=5, **endpoints.mqtt(config.agent_id))
    return build_agent(config, mqtt)


def build_api(
    endpoints: Endpoints,
    port: int,
    alerts: AlertsDatabaseSettings | None = None,
    rules_dir: Path | None = None,
) -> ApiServer:
    # Warnings only: the demo's console shows the summary, not one line per request.
    settings = ApiSettings(
        host="127.0.0.1",
        port=port,
        store=endpoints.store,
        registry=endpoints.registry,
        alerts=alerts,
        # The simulated day lies in the past (up to a weekend back): the bus view reads far
        # enough back to find its runs.
        console=ConsoleSettings(rules_dir=rules_dir, bus_window_h=72),
        log_level="WARNING",
    )
    return ApiServer(settings)


def build_ingest(endpoints: Endpoints, state_dir: Path) -> IngestService:
    settings = IngestSettings(
        instance_id="demo",
        mqtt=IngestMqttSettings(**endpoints.mqtt(INGEST)),
        store=endpoints.store,
        spool_dir=state_dir / "ingest-spool",
        registry=IngestRegistrySettings(url=endpoints.registry.url),
        # A free port: the demo must start beside a running ingest (or anything on 9101).
        metrics=IngestMetricsSettings(port=0),
    )
    return IngestService(settings)
