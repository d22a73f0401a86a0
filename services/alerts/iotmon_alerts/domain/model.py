"""The records the alert domain speaks in: what comes in, the alerts it keeps, what goes out.

Pure data, no I/O: the service turns MQTT messages into these inputs and the
outputs into SQL rows, MQTT messages and webhooks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from iotmon_contract import AlertSeverity, AlertState


class Role(StrEnum):
    """Who a notification is for, as the bus rules name them."""

    DRIVER = "driver"
    OPERATOR = "operator"
    SCHOOL = "school"
    GUARDIAN = "guardian"
    FACILITY = "facility"


@dataclass(frozen=True, slots=True)
class Target:
    """One recipient of a notification (a role and, where it has one, an id)."""

    role: Role
    id: str = ""


# -- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadingIn:
    tenant: str
    device: str
    metric: str
    value: float
    ts: datetime


@dataclass(frozen=True, slots=True)
class StatusIn:
    tenant: str
    device: str
    online: bool
    ts: datetime


@dataclass(frozen=True, slots=True)
class FaultIn:
    tenant: str
    device: str
    component: str
    code: str
    severity: str
    cleared: bool
    detail: str | None
    ts: datetime


# -- alerts ---------------------------------------------------------------------------

SEVERITY_RANK = {AlertSeverity.INFO: 0, AlertSeverity.WARNING: 1, AlertSeverity.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Subject:
    device: str | None = None
    site: str | None = None
    bus: str | None = None
    child: str | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as it stands now; ``ts`` is when it entered ``state``."""

    tenant: str
    fingerprint: str
    rule: str
    state: AlertState
    severity: AlertSeverity
    subject: Subject
    summary: str
    starts_at: datetime
    ts: datetime
    details: Mapping[str, Any] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    """Who is to be told, when the rule says (bus rules); empty: the tenant's and sites'
    subscribers by scope."""
    acknowledged_by: str | None = None
    ack_reason: str | None = None
    closed: bool = False
    """Closed by the engine that drives it though not resolved: the bus rules take an
    operator's acknowledgement as the end of the alert (docs/school-bus.md)."""

    def labels(self) -> dict[str, str]:
        """What silences, maintenance windows and grouping match on."""
        found = {
            "tenant": self.tenant,
            "rule": self.rule,
            "severity": self.severity.value,
            "state": self.state.value,
        }
        for name in ("device", "site", "bus", "child"):
            value = getattr(self.subject, name)
            if value is not None:
                found[name] = value
        return found

    @property
    def guardians(self) -> frozenset[str]:
        return frozenset(t.id for t in self.targets if t.role is Role.GUARDIAN)

    @property
    def active(self) -> bool:
        return self.state is not AlertState.RESOLVED and not self.closed


@dataclass(frozen=True, slots=True)
class NoticeOut:
    """A one-off piece of news (a child boarded): delivered once, no lifecycle."""

    tenant: str
    kind: str
    key: str
    """Identity of this notice: the same notice decided twice is delivered once."""
    ts: datetime
    subject: Subject
    summary: str
    data: Mapping[str, Any] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()

    def labels(self) -> dict[str, str]:
        found = {"tenant": self.tenant, "rule": self.kind, "kind": self.kind}
        for name in ("device", "site", "bus", "child"):
            value = getattr(self.subject, name)
            if value is not None:
                found[name] = value
        return found

    @property
    def guardians(self) -> frozenset[str]:
        return frozenset(t.id for t in self.targets if t.role is Role.GUARDIAN)


# -- outputs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertChange:
    """An alert entered a state (or fired again after its repeat interval).

    ``notify`` is false when a silence or a maintenance window holds it back: the
    change is recorded, published on MQTT and written for dashboards, but nobody
    is woken.
    """

    alert: Alert
    notify: bool
    repeat: bool = False
    muted_by: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """What is sent to subscribers at once: the alerts of one group, or one notice."""

    tenant: str
    group: Mapping[str, str]
    alerts: tuple[Alert, ...] = ()
    notice: NoticeOut | None = None
    key: str = ""
    """Identity of the delivery: with the subscription, it makes the webhook-id."""


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One input the bus rules took, as a journal line to keep (see ``bus/journal.py``).

    Recorded with the outcome it decided, in one transaction: the journal then holds
    exactly what was decided, and rebuilding from it tells nothing twice.
    """

    tenant: str
    at: datetime
    kind: str
    line: str


@dataclass(slots=True)
class Outcome:
    """Everything one input (or tick) decided."""

    changes: list[AlertChange] = field(default_factory=list)
    notices: list[NoticeOut] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    journal: list[JournalRecord] = field(default_factory=list)

    def extend(self, other: Outcome) -> None:
        self.changes.extend(other.changes)
        self.notices.extend(other.notices)
        self.deliveries.extend(other.deliveries)
        self.journal.extend(other.journal)

    def __bool__(self) -> bool:
        return bool(self.changes or self.notices or self.deliveries or self.journal)
