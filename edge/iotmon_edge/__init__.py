"""iotmon edge agent: read device drivers, publish their readings over MQTT per the contract."""

from iotmon_edge.agent import EdgeAgent, build_agent, build_simulated_agent, simulated_agent_config
from iotmon_edge.config import (
    AgentConfig,
    ConfigError,
    EdgeMqttSettings,
    PublishMode,
    Settings,
    load_agent_config,
)
from iotmon_edge.outbox import DirectOutbox, Outbox

__all__ = [
    "AgentConfig",
    "ConfigError",
    "DirectOutbox",
    "EdgeAgent",
    "EdgeMqttSettings",
    "Outbox",
    "PublishMode",
    "Settings",
    "build_agent",
    "build_simulated_agent",
    "load_agent_config",
    "simulated_agent_config",
]
