"""A tenant's rule file (``rules/<tenant>.yaml``): rules, notification policy, maintenance.

Validated with pydantic (``extra="forbid"``: a misspelt key is an error naming it),
loaded through ``iotmon_runtime.config_files`` so every error names the file, the
key path and the line.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iotmon_contract import AlertSeverity
from iotmon_contract.payloads import METRIC_PATTERN
from iotmon_contract.topics import IDENTIFIER_PATTERN

RuleName = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, description="Rule id.")]
Pattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:*?\[\]!-]+$",
        description="An id or a shell-style pattern (env-*, plant-?).",
    ),
]
LABELS = ("tenant", "rule", "severity", "state", "device", "site", "bus", "child", "kind")
Label = Literal["tenant", "rule", "severity", "state", "device", "site", "bus", "child", "kind"]


class FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleBase(FileModel):
    name: RuleName
    devices: list[Pattern] = Field(
        default_factory=lambda: ["*"], description="Devices the rule watches (patterns)."
    )
    severity: AlertSeverity = Field(default=AlertSeverity.WARNING, description="Alert severity.")
    summary: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="One line for people; {device}, {value}, {metric} are filled in.",
    )
    repeat_interval_s: float | None = Field(
        default=None, gt=0, description="Remind this often while firing (default: the policy's)."
    )
    escalate_after_s: float | None = Field(
        default=None,
        gt=0,
        description="Escalate when not acknowledged this long (default: the policy's).",
    )


class ThresholdRule(RuleBase):
    """Fires when a metric stays beyond a level for ``for_s``; resolves past ``clear``."""

    type: Literal["threshold"]
    metric: str = Field(pattern=METRIC_PATTERN, description="Metric name.")
    above: float | None = Field(default=None, allow_inf_nan=False, description="Fire above.")
    below: float | None = Field(default=None, allow_inf_nan=False, description="Fire below.")
    clear: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Hysteresis: resolve only once the value is back past this level "
        "(default: the threshold itself).",
    )
    for_s: float = Field(default=0, ge=0, le=86_400, description="How long it must hold.")

    @model_validator(mode="after")
    def _one_direction(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of above or below")
        if self.clear is not None:
            if self.above is not None and self.clear > self.above:
                raise ValueError(f"clear ({self.clear}) must not be above above ({self.above})")
            if self.below is not None and self.clear < self.below:
                raise ValueError(f"clear ({self.clear}) must not be below below ({self.below})")
        return self


class AbsenceRule(RuleBase):
    """Fires when a device seen before sends nothing (of ``metric``) for ``after_s``."""

    type: Literal["absence"]
    metric: str | None = Field(
        default=None, pattern=METRIC_PATTERN, description="Only this metric counts (any: unset)."
    )
    after_s: float = Field(gt=0, le=30 * 86_400, description="Silence that counts as absence.")


class RateOfChangeRule(RuleBase):
    """Fires when a metric changes faster than ``max_per_s`` over ``window_s``."""

    type: Literal["rate_of_change"]
    metric: str = Field(pattern=METRIC_PATTERN)
    max_per_s: float = Field(gt=0, allow_inf_nan=False, description="Largest |change| per second.")
    window_s: float = Field(default=60, gt=0, le=86_400, description="Span the rate is taken over.")


class OfflineRule(RuleBase):
    """Fires when a device's availability says offline for ``for_s``."""

    type: Literal["offline"]
    for_s: float = Field(default=0, ge=0, le=86_400)


class FaultSeverityName(StrEnum):
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class FaultRule(RuleBase):
    """Fires on a device's ``fault`` event; the same fault ``cleared`` resolves it."""

    type: Literal["fault"]
    components: list[Pattern] = Field(default_factory=lambda: ["*"])
    min_severity: FaultSeverityName = Field(default=FaultSeverityName.WARNING)


Rule = Annotated[
    ThresholdRule | AbsenceRule | RateOfChangeRule | OfflineRule | FaultRule,
    Field(discriminator="type"),
]


class Policy(FileModel):
    """How alerts become notifications (Alertmanager's route, for one tenant)."""

    group_by: list[Label] = Field(
        default_factory=lambda: ["rule"],  # type: ignore[arg-type]
        description="Alerts with the same values of these labels go out together.",
    )
    group_wait_s: float = Field(
        default=0,
        ge=0,
        le=3600,
        description="Wait this long after a group's first change for more (0: at once).",
    )
    repeat_interval_s: float = Field(
        default=4 * 3600, gt=0, description="Remind this often while an alert fires."
    )
    escalate_after_s: float | None = Field(
        default=None, gt=0, description="Escalate alerts not acknowledged this long (none: never)."
    )


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class MaintenanceWindow(FileModel):
    """A time when matching alerts are recorded but nobody is notified.

    Either one-off (``start`` and ``end``) or recurring (``days`` with ``from`` and
    ``until``, UTC times of day; ``until`` before ``from`` crosses midnight).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: RuleName
    matchers: dict[Label, Pattern] = Field(
        default_factory=dict, description="Label → pattern; all must match (none: everything)."
    )
    start: datetime | None = None
    end: datetime | None = None
    days: list[Weekday] | None = None
    from_time: time | None = Field(default=None, alias="from")
    until: time | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        one_off = self.start is not None or self.end is not None
        recurring = self.days is not None or self.from_time is not None or self.until is not None
        if one_off == recurring:
            raise ValueError("give either start and end, or days with from and until")
        if one_off:
            if self.start is None or self.end is None:
                raise ValueError("a one-off window needs both start and end")
            if self.start.tzinfo is None or self.end.tzinfo is None:
                raise ValueError("start and end need a UTC offset (e.g. 2026-11-25T02:00:00Z)")
            if self.end <= self.start:
                raise ValueError("end must be after start")
        elif self.days is None or self.from_time is None or self.until is None:
            raise ValueError("a recurring window needs days, from and until")
        return self


class BusSection(FileModel):
    """The school-bus rules for this tenant: a fleet file and the rules' settings."""

    fleet: Path = Field(description="Fleet YAML (relative to the rule file's folder).")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Bus rule settings (delays, RSSI levels…)."
    )


class RuleFile(FileModel):
    """One tenant's rules."""

    tenant: str = Field(pattern=IDENTIFIER_PATTERN, description="Must match the file name.")
    policy: Policy = Field(default_factory=Policy)
    rules: list[Rule] = Field(default_factory=list)
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)
    bus: BusSection | None = Field(default=None, description="School-bus child safety.")

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ValueError(f"rule name {rule.name!r} is used twice")
            seen.add(rule.name)
        return self
