"""Alerts and notices services publish for a tenant, under ``.../_service/<service>/``.

An alert has a lifecycle (firing, escalated, acknowledged, resolved) keyed by its
fingerprint; a notice is a one-off piece of news (a run summary, a child boarded).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from iotmon_contract.fields import OPAQUE_ID_PATTERN, PRINTABLE_PATTERN
from iotmon_contract.payloads import ContractModel, Timestamp
from iotmon_contract.topics import IDENTIFIER_PATTERN

MAX_SUMMARY_CHARS = 500

Name = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
Summary = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_SUMMARY_CHARS,
        pattern=PRINTABLE_PATTERN,
        description="One line for people (notifications, dashboards); printable characters.",
    ),
]


class Subject(ContractModel):
    """What an alert or notice is about; every part is optional (a tenant-wide alert has none)."""

    device: Name | None = Field(default=None, description="Device id.")
    site: Name | None = Field(default=None, description="Site id.")
    bus: Name | None = Field(default=None, description="Bus (vehicle) id.")
    child: Name | None = Field(default=None, description="Child id.")


class AlertState(StrEnum):
    FIRING = "firing"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class AlertSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertMessage(ContractModel):
    """A change in an alert's state; consumers key alerts by fingerprint."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "fingerprint": "a1f09c3e5b7d4e21",
                    "rule": "child-left-on-bus",
                    "state": "firing",
                    "severity": "critical",
                    "subject": {"bus": "bus-12", "child": "c-0042"},
                    "summary": "Child c-0042 still on bus-12 after the run ended",
                    "details": {"last_tag_read": "2026-11-25T07:41:55Z"},
                    "starts_at": "2026-11-25T07:47:10Z",
                    "ts": "2026-11-25T07:47:10Z",
                }
            ]
        }
    )

    fingerprint: str = Field(
        pattern=OPAQUE_ID_PATTERN, description="Identity of the alert across its state changes."
    )
    rule: Name = Field(description="Rule that raised it.")
    state: AlertState
    severity: AlertSeverity
    subject: Subject = Field(default_factory=Subject)
    summary: Summary
    details: dict[str, Any] = Field(
        default_factory=dict, description="Rule-specific evidence, for people and tools."
    )
    starts_at: Timestamp = Field(description="When the alert first fired.")
    ts: Timestamp = Field(description="When it entered this state.")


class Notice(ContractModel):
    """A one-off piece of news for a tenant, e.g. a run summary."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "run_summary",
                    "ts": "2026-11-25T08:05:00Z",
                    "subject": {"bus": "bus-12"},
                    "summary": "Run 2026-11-25-am-12 ended: 23 children boarded, 23 left",
                    "data": {"boarded": 23, "alighted": 23},
                }
            ]
        }
    )

    kind: Name = Field(description="What sort of notice, e.g. run_summary.")
    ts: Timestamp = Field(description="When it happened.")
    subject: Subject = Field(default_factory=Subject)
    summary: Summary
    data: dict[str, Any] = Field(default_factory=dict, description="Kind-specific data.")
