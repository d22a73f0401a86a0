"""Edge agent configs into the registry: the agent is the gateway of what its drivers declare."""

from __future__ import annotations

from iotmon_edge import AgentConfig
from iotmon_registry import GatewayImport, Registry


def import_agent(
    registry: Registry, config: AgentConfig, *, site: str | None = None
) -> GatewayImport:
    """Register ``config``'s agent as the gateway of exactly its declared devices."""
    children = [device for driver in config.drivers for device in driver.declared_device_ids()]
    return registry.import_gateway(config.tenant, config.agent_id, children, site=site)
