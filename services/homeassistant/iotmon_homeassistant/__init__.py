"""iotmon's Home Assistant bridge (opt-in): MQTT discovery for the registry's devices.

Publishes a retained ``<prefix>/sensor/<node>/<metric>/config`` per device and
metric seen, a state topic per metric, and removes the entities of devices that
leave the registry. See the README's "Home Assistant" section.
"""

from iotmon_homeassistant.bridge import HomeAssistantBridge
from iotmon_homeassistant.config import Settings

__all__ = ["HomeAssistantBridge", "Settings"]
