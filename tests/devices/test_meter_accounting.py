"""Interval consumption from cumulative registers: wraps, replacements and glitches.

Property tests: whatever the register does, no interval is negative or more than
the meter could pass; with only wraps, the intervals add up to what was consumed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iotmon_devices.meters.accounting import CumulativeRegister, StepKind
from iotmon_devices.meters.metrics import Medium, meter_readings
from tests.devices.support import T0

MAX_RATE = 50.0  # units per hour
STEP = timedelta(minutes=15)
MOST_PER_STEP = MAX_RATE * STEP.total_seconds() / 3600


def test_normal_wrap_and_first_reads() -> None:
    register = CumulativeRegister(max_rate_per_h=MAX_RATE, rollover=1000.0)
    assert register.update(990.0, T0).kind is StepKind.FIRST
    step = register.update(995.5, T0 + STEP)
    assert step.kind is StepKind.NORMAL
    assert step.consumption == pytest.approx(5.5)
    wrapped = register.update(2.0, T0 + 2 * STEP)
    assert wrapped.kind is StepKind.WRAP
    assert wrapped.consumption == pytest.approx(6.5)


def test_replacement_is_confirmed_by_the_next_read_and_never_negative() -> None:
    register = CumulativeRegister(max_rate_per_h=MAX_RATE)
    register.update(5400.0, T0)
    held = register.update(3.0, T0 + STEP)  # a new meter, starting near zero
    assert (held.kind, held.consumption) == (StepKind.UNCONFIRMED, None)
    confirmed = register.update(5.0, T0 + 2 * STEP)
    assert confirmed.kind is StepKind.REPLACED
    assert confirmed.consumption == pytest.approx(2.0)
    assert register.total == 5.0


def test_a_single_garbage_read_is_dropped_as_a_glitch() -> None:
    register = CumulativeRegister(max_rate_per_h=MAX_RATE)
    register.update(100.0, T0)
    assert register.update(9.9e9, T0 + STEP).kind is StepKind.UNCONFIRMED
    step = register.update(104.0, T0 + 2 * STEP)
    assert step.kind is StepKind.GLITCH
    assert step.consumption == pytest.approx(4.0)


def test_float_register_noise_is_no_consumption_and_does_not_move_the_baseline() -> None:
    register = CumulativeRegister(max_rate_per_h=MAX_RATE, resolution=0.01)
    register.update(12345.67, T0)
    step = register.update(12345.665, T0 + STEP)
    assert (step.kind, step.consumption) == (StepKind.NORMAL, 0.0)
    assert register.total == 12345.67


def test_meter_readings_name_the_medium_and_leave_out_unknown_intervals() -> None:
    register = CumulativeRegister(max_rate_per_h=MAX_RATE)
    first = meter_readings("water-1", Medium.WATER, register.update(10.0, T0), T0)
    assert [(r.metric, r.unit) for r in first] == [("water_m3_total", "m3")]
    second = meter_readings("water-1", Medium.WATER, register.update(10.25, T0 + STEP), T0)
    assert [(r.metric, r.value) for r in second] == [("water_m3_total", 10.25), ("water_m3", 0.25)]
    held = meter_readings("water-1", Medium.WATER, register.update(0.5, T0 + 2 * STEP), T0)
    assert held == []  # nothing published while a jump waits for confirmation
    gas = meter_readings("gas-1", Medium.GAS, register.update(0.75, T0 + 3 * STEP), T0)
    assert [r.metric for r in gas] == ["gas_m3_total", "gas_m3"]


uses = st.lists(st.floats(0, MOST_PER_STEP, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    start=st.floats(0, 10_000, allow_nan=False),
    rollover=st.sampled_from([None, 10_000.0, 2.0**32 * 0.001, 99_999.9]),
    used=uses,
)
def test_intervals_add_up_to_what_was_used_across_wraps(
    start: float, rollover: float | None, used: list[float]
) -> None:
    if rollover is not None:
        start %= rollover
    register = CumulativeRegister(max_rate_per_h=MAX_RATE, rollover=rollover)
    register.update(start, T0)
    total, published = start, 0.0
    for n, amount in enumerate(used, start=1):
        total += amount
        shown = total % rollover if rollover is not None else total
        step = register.update(shown, T0 + n * STEP)
        assert step.consumption is not None, step
        assert 0 <= step.consumption <= MOST_PER_STEP + 1e-6
        published += step.consumption
    assert published == pytest.approx(sum(used), abs=1e-6 * len(used) * max(1.0, start))


events = st.lists(
    st.one_of(
        st.tuples(st.just("use"), st.floats(0, MOST_PER_STEP, allow_nan=False)),
        st.tuples(st.just("replace"), st.floats(0, 50_000, allow_nan=False)),
        st.tuples(st.just("glitch"), st.floats(-1e9, 1e12, allow_nan=False)),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(start=st.floats(0, 50_000, allow_nan=False), script=events)
def test_no_interval_is_negative_or_huge_whatever_the_register_does(
    start: float, script: list[tuple[str, float]]
) -> None:
    register = CumulativeRegister(max_rate_per_h=MAX_RATE, rollover=100_000.0, resolution=0.001)
    register.update(start, T0)
    shown, published, used = start, 0.0, 0.0
    accepted_at = T0
    for n, (what, amount) in enumerate(script, start=1):
        at = T0 + n * STEP
        if what == "use":
            shown = (shown + amount) % 100_000.0
            used += amount
            read = shown
        elif what == "replace":
            shown = amount  # a new meter with its own reading
            read = shown
        else:
            read = amount  # one read of garbage; the meter itself is unchanged
        step = register.update(read, at)
        if step.consumption is not None:
            # Never negative, never more than the meter passes since the last accepted read.
            most = MAX_RATE * (at - accepted_at).total_seconds() / 3600 + 0.01
            assert 0 <= step.consumption <= most, (what, step)
            published += step.consumption
            accepted_at = at
    # A replacement or glitch that looks like ordinary use is taken for it: each can add
    # at most two intervals' worth, never a jump's.
    odd = sum(1 for what, _ in script if what != "use")
    assert published <= used + odd * 2 * (MOST_PER_STEP + 0.01) + 0.01 * len(script)
