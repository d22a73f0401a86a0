"""School-bus child safety: the pure core (events in, notifications out, clock handed in).

The alert service wires ``BusSafetyEngine`` to MQTT, SQL and webhooks; ``iotmon bus
replay`` drives the same engine on a simulated clock. See docs/school-bus.md.
"""

from iotmon_alerts.bus.engine import BusSafetyEngine
from iotmon_alerts.bus.events import BusEvent
from iotmon_alerts.bus.fleet import (
    Bus,
    Child,
    DeviceRole,
    Fleet,
    FleetDocument,
    FleetError,
    load_fleet,
    parse_fleet,
)
from iotmon_alerts.bus.lifecycle import UnknownAlert
from iotmon_alerts.bus.notifications import (
    NOTICE_KINDS,
    Evidence,
    Notification,
    NotificationKind,
    NotificationState,
    Reason,
    Recipient,
    RecipientRole,
    alert_fingerprint,
)
from iotmon_alerts.bus.rules import BusRules

__all__ = [
    "NOTICE_KINDS",
    "Bus",
    "BusEvent",
    "BusRules",
    "BusSafetyEngine",
    "Child",
    "DeviceRole",
    "Evidence",
    "Fleet",
    "FleetDocument",
    "FleetError",
    "Notification",
    "NotificationKind",
    "NotificationState",
    "Reason",
    "Recipient",
    "RecipientRole",
    "UnknownAlert",
    "alert_fingerprint",
    "load_fleet",
    "parse_fleet",
]
