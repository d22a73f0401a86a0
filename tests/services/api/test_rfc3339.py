"""The strict RFC 3339 reader of the API's time parameters (property tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from iotmon_api.rfc3339 import NotRfc3339, parse_rfc3339

offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(1678, 1, 1), max_value=datetime(2262, 1, 1), timezones=offsets
)


@given(instants)
def test_every_isoformat_with_an_offset_reads_back_exactly(moment: datetime) -> None:
    assert parse_rfc3339(moment.isoformat()) == moment
    as_z = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert parse_rfc3339(as_z) == moment


@given(st.one_of(st.integers(), st.floats(allow_nan=False)).map(str))
def test_numbers_are_never_instants(text: str) -> None:
    try:
        parse_rfc3339(text)
    except NotRfc3339:
        return
    raise AssertionError(f"{text!r} was read as an instant")


@given(st.text(max_size=40))
def test_any_text_is_an_aware_instant_or_a_clean_refusal(text: str) -> None:
    try:
        parsed = parse_rfc3339(text)
    except NotRfc3339:
        return
    assert parsed.utcoffset() is not None


@given(instants, st.integers(min_value=7, max_value=9))
def test_nanosecond_fractions_are_truncated_to_microseconds(moment: datetime, digits: int) -> None:
    whole = moment.replace(microsecond=0).isoformat()
    date_time, offset = whole[:19], whole[19:]
    text = f"{date_time}.{'9' * digits}{offset}"
    assert parse_rfc3339(text) == moment.replace(microsecond=999_999)
