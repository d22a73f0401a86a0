"""Stream rules: each takes readings, availability, faults and ticks, and says what fires.

An evaluator keeps per-device state and answers with ``Signal``s: "this alert
condition holds" or "it no longer does". The lifecycle (``AlertBook``) turns
signals into alerts; an evaluator never decides who is told.

Durations (``for_s``, ``after_s``) run on the service clock (``now``), the time
a message is handled, as Prometheus evaluates ``for`` at evaluation time: a
reading that arrives late cannot make an alert older than it is. A reading
older than the newest one already seen from its device is ignored (the edge
replays its backlog out of order).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from iotmon_alerts.domain.model import FaultIn, ReadingIn, StatusIn
from iotmon_alerts.rulefile import (
    AbsenceRule,
    FaultRule,
    FaultSeverityName,
    OfflineRule,
    RateOfChangeRule,
    Rule,
    RuleBase,
    ThresholdRule,
)
from iotmon_contract import AlertSeverity

_FAULT_RANK = {
    FaultSeverityName.WARNING: 0,
    FaultSeverityName.ERROR: 1,
    FaultSeverityName.CRITICAL: 2,
}


def fingerprint(tenant: str, rule: str, *key: str) -> str:
    """A stable alert identity: the same condition on the same thing is the same alert."""
    text = "\x1f".join((tenant, rule, *key))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class Signal:
    """A rule's verdict on one alert condition."""

    fingerprint: str
    rule: str
    firing: bool
    device: str
    summary: str
    severity: AlertSeverity
    details: dict[str, Any] = field(default_factory=dict)


def matches(patterns: list[str], value: str) -> bool:
    return any(fnmatchcase(value, pattern) for pattern in patterns)


class Evaluator(ABC):
    """One rule of one tenant; hooks return the signals an input caused."""

    def __init__(self, tenant: str, rule: RuleBase) -> None:
        self.tenant = tenant
        self.rule = rule
        self._watched: dict[str, bool] = {}

    def watches(self, device: str) -> bool:
        found = self._watched.get(device)
        if found is None:
            found = self._watched[device] = matches(self.rule.devices, device)
        return found

    def summary(self, default: str, **values: object) -> str:
        template = self.rule.summary
        if template is None:
            return default[:500]
        try:
            return template.format(**values)[:500]
        except (KeyError, IndexError, ValueError):
            # A placeholder the rule file got wrong must not lose the alert.
            return template[:500]

    def signal(self, device: str, firing: bool, summary: str, *key: str, **details: Any) -> Signal:
        return Signal(
            fingerprint=fingerprint(self.tenant, self.rule.name, device, *key),
            rule=self.rule.name,
            firing=firing,
            device=device,
            summary=summary,
            severity=self.rule.severity,
            details=details,
        )

    @abstractmethod
    def adopt(self, device: str, details: Mapping[str, Any], since: datetime) -> None:
        """An alert of this rule a previous run left firing: take it as firing, so the
        condition clearing resolves it."""

    def on_reading(self, reading: ReadingIn, now: datetime) -> list[Signal]:
        return []

    def on_status(self, status: StatusIn, now: datetime) -> list[Signal]:
        return []

    def on_fault(self, fault: FaultIn, now: datetime) -> list[Signal]:
        return []

    def on_tick(self, now: datetime) -> list[Signal]:
        return []


@dataclass(slots=True)
class _Level:
    last_ts: datetime | None = None
    value: float = 0.0
    pending_since: datetime | None = None
    firing: bool = False


class ThresholdEvaluator(Evaluator):
    rule: ThresholdRule

    def __init__(self, tenant: str, rule: ThresholdRule) -> None:
        super().__init__(tenant, rule)
        self._devices: dict[str, _Level] = {}

    def adopt(self, device: str, details: Mapping[str, Any], since: datetime) -> None:
        self._devices[device] = _Level(firing=True)

    def _beyond(self, value: float) -> bool:
        rule = self.rule
        return value > rule.above if rule.above is not None else value < rule.below  # type: ignore[operator]

    def _cleared(self, value: float) -> bool:
        rule = self.rule
        if rule.above is not None:
            return value <= (rule.clear if rule.clear is not None else rule.above)
        assert rule.below is not None
        return value >= (rule.clear if rule.clear is not None else rule.below)

    def _fire(self, device: str, state: _Level, firing: bool) -> Signal:
        rule = self.rule
        level = rule.above if rule.above is not None else rule.below
        word = "above" if rule.above is not None else "below"
        state.firing = firing
        text = (
            f"{device} {rule.metric} {state.value:g} {word} {level:g}"
            if firing
            else f"{device} {rule.metric} back to {state.value:g}"
        )
        return self.signal(
            device,
            firing,
            self.summary(text, device=device, value=state.value, metric=rule.metric),
            metric=rule.metric,
            value=state.value,
            threshold=level,
            last_reading=state.last_ts.isoformat() if state.last_ts else None,
        )

    def on_reading(self, reading: ReadingIn, now: datetime) -> list[Signal]:
        if reading.metric != self.rule.metric or not self.watches(reading.device):
            return []
        state = self._devices.setdefault(reading.device, _Level())
        if state.last_ts is not None and reading.ts < state.last_ts:
            return []
        state.last_ts = reading.ts
        state.value = reading.value
        if state.firing:
            if self._cleared(reading.value):
                state.pending_since = None
                return [self._fire(reading.device, state, False)]
            return []
        if not self._beyond(reading.value):
            state.pending_since = None
            return []
        if state.pending_since is None:
            state.pending_since = now
        if (now - state.pending_since).total_seconds() >= self.rule.for_s:
            return [self._fire(reading.device, state, True)]
        return []

    def on_tick(self, now: datetime) -> list[Signal]:
        fired = []
        for device, state in self._devices.items():
            if (
                not state.firing
                and state.pending_since is not None
                and (now - state.pending_since).total_seconds() >= self.rule.for_s
            ):
                fired.append(self._fire(device, state, True))
        return fired


@dataclass(slots=True)
class _Seen:
    last: datetime
    firing: bool = False


class AbsenceEvaluator(Evaluator):
    """Only devices seen since the service started can be missed: it cannot know the rest."""

    rule: AbsenceRule

    def __init__(self, tenant: str, rule: AbsenceRule) -> None:
        super().__init__(tenant, rule)
        self._devices: dict[str, _Seen] = {}

    def adopt(self, device: str, details: Mapping[str, Any], since: datetime) -> None:
        self._devices[device] = _Seen(since, firing=True)

    def on_reading(self, reading: ReadingIn, now: datetime) -> list[Signal]:
        metric = self.rule.metric
        if (metric is not None and reading.metric != metric) or not self.watches(reading.device):
            return []
        state = self._devices.get(reading.device)
        if state is None:
            self._devices[reading.device] = _Seen(now)
            return []
        state.last = now
        if state.firing:
            state.firing = False
            return [
                self.signal(
                    reading.device, False, f"{reading.device} reports again", since=now.isoformat()
                )
            ]
        return []

    def on_tick(self, now: datetime) -> list[Signal]:
        fired = []
        for device, state in self._devices.items():
            silent = (now - state.last).total_seconds()
            if not state.firing and silent >= self.rule.after_s:
                state.firing = True
                what = self.rule.metric or "data"
                fired.append(
                    self.signal(
                        device,
                        True,
                        self.summary(
                            f"no {what} from {device} for {silent:.0f} s",
                            device=device,
                            metric=what,
                            value=silent,
                        ),
                        last_seen=state.last.isoformat(),
                    )
                )
        return fired


@dataclass(slots=True)
class _Samples:
    points: deque[tuple[datetime, float]] = field(default_factory=deque)
    firing: bool = False


class RateOfChangeEvaluator(Evaluator):
    rule: RateOfChangeRule

    def __init__(self, tenant: str, rule: RateOfChangeRule) -> None:
        super().__init__(tenant, rule)
        self._devices: dict[str, _Samples] = {}

    def adopt(self, device: str, details: Mapping[str, Any], since: datetime) -> None:
        self._devices[device] = _Samples(firing=True)

    def on_reading(self, reading: ReadingIn, now: datetime) -> list[Signal]:
        rule = self.rule
        if reading.metric != rule.metric or not self.watches(reading.device):
            return []
        state = self._devices.setdefault(reading.device, _Samples())
        points = state.points
        if points and reading.ts <= points[-1][0]:
            return []
        points.append((reading.ts, reading.value))
        while (reading.ts - points[0][0]).total_seconds() > rule.window_s:
            points.popleft()
        if len(points) < 2:
            return []
        (t0, v0), (t1, v1) = points[0], points[-1]
        rate = (v1 - v0) / (t1 - t0).total_seconds()
        exceeded = abs(rate) > rule.max_per_s
        if exceeded == state.firing:
            return []
        state.firing = exceeded
        text = (
            f"{reading.device} {rule.metric} changing {rate:+.3g}/s"
            if exceeded
            else f"{reading.device} {rule.metric} steady again ({rate:+.3g}/s)"
        )
        return [
            self.signal(
                reading.device,
                exceeded,
                self.summary(text, device=reading.device, value=rate, metric=rule.metric),
                metric=rule.metric,
                rate_per_s=round(rate, 6),
                limit_per_s=rule.max_per_s,
            )
        ]


@dataclass(slots=True)
class _Availability:
    last_ts: datetime
    offline_since: datetime | None = None
    firing: bool = False


class OfflineEvaluator(Evaluator):
    rule: OfflineRule

    def __init__(self, tenant: str, rule: OfflineRule) -> None:
        super().__init__(tenant, rule)
        self._devices: dict[str, _Availability] = {}

    def adopt(self, device: str, details: Mapping[str, Any], since: datetime) -> None:
        self._devices[device] = _Availability(since, offline_since=since, firing=True)

    def _offline(self, device: str, state: _Availability) -> Signal:
        state.firing = True
        since = state.offline_since.isoformat() if state.offline_since else None
        return self.signal(
            device,
            True,
            self.summary(f"{device} is offline", device=device, value="offline", metric="status"),
            offline_since=since,
        )

    def on_status(self, status: StatusIn, now: datetime) -> list[Signal]:
        if not self.watches(status.device):
            return []
        state = self._devices.get(status.device)
        if state is None:
            state = self._devices[status.device] = _Availability(status.ts)
        elif status.ts < state.last_ts:
            return []
        state.last_ts = status.ts
        if status.online:
            state.offline_since = None
            if state.firing:
                state.firing = False
                return [self.signal(status.device, False, f"{status.device} is online again")]
            return []
        if state.offline_since is None:
            state.offline_since = now
        if not state.firing and self.rule.for_s == 0:
            return [self._offline(status.device, state)]
        return []

    def on_tick(self, now: datetime) -> list[Signal]:
        return [
            self._offline(device, state)
            for device, state in self._devices.items()
            if not state.firing
            and state.offline_since is not None
            and (now - state.offline_since).total_seconds() >= self.rule.for_s
        ]


class FaultEvaluator(Evaluator):
    rule: FaultRule

    def __init__(self, tenant: str, rule: FaultRule) -> None:
        super().__init__(tenant, rule)
        self._active: set[tuple[str, str, str]] = set()

    def adopt(self, device: str, details: Mapping[str, Any], since: datetime) -> None:
        component, code = details.get("component"), details.get("code")
        if isinstance(component, str) and isinstance(code, str):
            self._active.add((device, component, code))

    def on_fault(self, fault: FaultIn, now: datetime) -> list[Signal]:
        rule = self.rule
        if not self.watches(fault.device) or not matches(rule.components, fault.component):
            return []
        try:
            rank = _FAULT_RANK[FaultSeverityName(fault.severity)]
        except ValueError:
            rank = 0
        if rank < _FAULT_RANK[rule.min_severity]:
            return []
        key = (fault.device, fault.component, fault.code)
        if fault.cleared:
            if key not in self._active:
                return []
            self._active.discard(key)
            text = f"{fault.device} {fault.component} {fault.code} cleared"
            return [self.signal(fault.device, False, text, fault.component, fault.code)]
        if key in self._active:
            return []
        self._active.add(key)
        text = f"{fault.device} {fault.component} fault {fault.code}" + (
            f": {fault.detail}" if fault.detail else ""
        )
        signal = self.signal(
            fault.device,
            True,
            self.summary(text, device=fault.device, value=fault.code, metric=fault.component),
            fault.component,
            fault.code,
            component=fault.component,
            code=fault.code,
            fault_severity=fault.severity,
            detail=fault.detail,
        )
        if fault.severity == FaultSeverityName.CRITICAL.value:
            return [
                Signal(
                    signal.fingerprint,
                    signal.rule,
                    True,
                    signal.device,
                    signal.summary,
                    AlertSeverity.CRITICAL,
                    signal.details,
                )
            ]
        return [signal]


def evaluator_for(tenant: str, rule: Rule) -> Evaluator:
    if isinstance(rule, ThresholdRule):
        return ThresholdEvaluator(tenant, rule)
    if isinstance(rule, AbsenceRule):
        return AbsenceEvaluator(tenant, rule)
    if isinstance(rule, RateOfChangeRule):
        return RateOfChangeEvaluator(tenant, rule)
    if isinstance(rule, OfflineRule):
        return OfflineEvaluator(tenant, rule)
    return FaultEvaluator(tenant, rule)
