"""Interval consumption from a meter's cumulative register (pure: no I/O).

A meter reports a running total (kWh, m3, pulses). What a dashboard wants is what was
used per interval, and that must never be negative or absurd, whatever the register
does: it wraps at its modulus (a 32-bit pulse counter, a 6-digit display), a meter is
replaced or reset (the total starts again near zero, or at a refurbished meter's
reading), or one read returns garbage.

The rule: a step is accepted when it is plausible, i.e. between zero and what the
meter can consume in the elapsed time at its ``max_rate_per_h``. A drop that is a
plausible wrap is a wrap. Anything else is held as *unconfirmed*: if the next read
continues from the old total, it was a glitch and is dropped; if it continues from
the new one, the meter was replaced and the new total is the baseline. The
consumption across an unconfirmed step is unknown, so it is not published (never
guessed as zero or as the jump).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

_FLOAT32_EPSILON = 2.0**-23
"""Relative resolution of a float32 register, as Modbus meters report totals."""


class StepKind(StrEnum):
    FIRST = "first"
    """The first read: a baseline, no interval yet."""
    NORMAL = "normal"
    WRAP = "wrap"
    """The register passed its modulus and started again from zero."""
    UNCONFIRMED = "unconfirmed"
    """An implausible value, held until the next read says glitch or replacement."""
    GLITCH = "glitch"
    """The next read went on from the old total: the odd value is dropped."""
    REPLACED = "replaced"
    """The next read went on from the odd value: a new meter (or a reset), new baseline."""


@dataclass(frozen=True, slots=True)
class MeterStep:
    kind: StepKind
    consumption: float | None
    """Used since the previous accepted read; None when unknown (first, unconfirmed)."""
    total: float
    """The register as read."""


@dataclass(frozen=True, slots=True)
class _Sample:
    total: float
    ts: datetime


class CumulativeRegister:
    """Tracks one meter's total and turns each read into a ``MeterStep``.

    ``rollover`` is the register's modulus (None: it never wraps in practice, e.g. a
    float32 kWh register); ``max_rate_per_h`` the most the meter can consume in an hour
    (its maximum flow or current); ``resolution`` the register's step, below which a
    decrease is read noise and counts as no consumption.
    """

    def __init__(
        self,
        *,
        max_rate_per_h: float,
        rollover: float | None = None,
        resolution: float = 0.0,
    ) -> None:
        if max_rate_per_h <= 0:
            raise ValueError("max_rate_per_h must be positive")
        if rollover is not None and rollover <= 0:
            raise ValueError("rollover must be positive")
        self._max_rate_per_h = max_rate_per_h
        self._rollover = rollover
        self._resolution = resolution
        self._baseline: _Sample | None = None
        self._pending: _Sample | None = None

    @property
    def total(self) -> float | None:
        """The accepted total (the baseline), None before the first read."""
        return None if self._baseline is None else self._baseline.total

    def update(self, total: float, ts: datetime) -> MeterStep:
        baseline = self._baseline
        if baseline is None:
            self._baseline = _Sample(total, ts)
            return MeterStep(StepKind.FIRST, None, total)
        used = self._plausible_use(baseline, total, ts)
        pending = self._pending
        if used is not None:
            self._pending = None
            self._baseline = _Sample(max(total, baseline.total) if used == 0 else total, ts)
            if pending is not None:
                return MeterStep(StepKind.GLITCH, used, total)
            wrapped = total < baseline.total - self._noise(baseline.total)
            return MeterStep(StepKind.WRAP if wrapped else StepKind.NORMAL, used, total)
        if pending is not None:
            used_since_pending = self._plausible_use(pending, total, ts)
            if used_since_pending is not None:
                self._pending = None
                self._baseline = _Sample(total, ts)
                return MeterStep(StepKind.REPLACED, used_since_pending, total)
        self._pending = _Sample(total, ts)
        return MeterStep(StepKind.UNCONFIRMED, None, total)

    def _plausible_use(self, since: _Sample, total: float, ts: datetime) -> float | None:
        """What was used from ``since`` to (total, ts), or None if no meter could do that."""
        # At least a second: a clock set back or two reads at one instant still allow
        # a step of the register's own noise.
        elapsed_h = max((ts - since.ts).total_seconds(), 1.0) / 3600.0
        most = self._max_rate_per_h * elapsed_h + self._noise(max(total, since.total))
        delta = total - since.total
        if 0 <= delta <= most:
            return delta
        if delta < 0 and -delta <= self._noise(since.total):
            return 0.0
        if delta < 0 and self._rollover is not None:
            wrapped = self._rollover - since.total + total
            if 0 <= wrapped <= most:
                return wrapped
        return None

    def _noise(self, total: float) -> float:
        return self._resolution + abs(total) * _FLOAT32_EPSILON
