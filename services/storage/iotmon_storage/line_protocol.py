"""InfluxDB line protocol encoding for our fixed schema.

Hand-written rather than a client library's Point class: this is ingest's hot
path (hundreds of thousands of points a second), and our schema is fixed, so an
f-string per point with escaping only where the contract allows special
characters is several times faster than generic point builders.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from iotmon_contract import (
    DeadLetter,
    ReadingColumns,
    StatusEvent,
    ValidatedEvent,
    ValidatedReading,
)
from iotmon_storage.base import (
    MEASUREMENT_ALERT,
    MEASUREMENT_DEAD_LETTER,
    MEASUREMENT_EVENT,
    MEASUREMENT_SEEN,
    MEASUREMENT_STATUS,
    AlertEvent,
    event_data,
    event_time_ns,
)

# A newline becomes an escaped space: a bare one would end the tag set (and the
# line) early, and InfluxDB would refuse the point.
_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\ "})


def escape_tag(value: str) -> str:
    return value.translate(_TAG_ESCAPES)


def escape_string_field(value: str) -> str:
    # Influx 1.x rejects raw newlines inside string fields in some versions.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def encode_readings(readings: Sequence[ValidatedReading], seen_at_ns: int | None) -> str:
    """Lines for readings plus, unless ``seen_at_ns`` is None, one ``_device_seen`` line
    per device in the batch.

    Tenant, device and metric match the contract's identifier patterns, so they
    need no escaping; only the free-form unit does, once per distinct unit. Ingest's hot
    path: it reads ``ReadingColumns`` (rows are turned into columns first), one f-string
    per reading over the zipped columns, and counts the devices in C.
    """
    columns = ReadingColumns.of(readings)
    if not columns:
        return ""
    tenants, devices, metrics, values, units, stamps = columns.columns()
    distinct_units = set(units)
    if distinct_units == {None}:
        lines = [
            f"{metric},device={device},tenant={tenant} value={value!r} {ts_ns}"
            for metric, device, tenant, value, ts_ns in zip(
                metrics, devices, tenants, values, stamps, strict=True
            )
        ]
    else:
        tags = {unit: f",unit={escape_tag(unit)}" for unit in distinct_units if unit is not None}
        tags[None] = ""  # type: ignore[index]
        lines = [
            f"{metric},device={device},tenant={tenant}{tags[unit]} value={value!r} {ts_ns}"
            for metric, device, tenant, unit, value, ts_ns in zip(
                metrics, devices, tenants, units, values, stamps, strict=True
            )
        ]
    if seen_at_ns is not None:
        seen = Counter(zip(tenants, devices, strict=True))
        lines.extend(
            f"{MEASUREMENT_SEEN},device={device},tenant={tenant} readings={count}i {seen_at_ns}"
            for (tenant, device), count in seen.items()
        )
    return "\n".join(lines)


def encode_seen(readings_per_device: Mapping[tuple[str, str], int], seen_at_ns: int) -> str:
    """``_device_seen`` lines alone, as ``encode_readings`` writes them."""
    return "\n".join(
        f"{MEASUREMENT_SEEN},device={device},tenant={tenant} readings={count}i {seen_at_ns}"
        for (tenant, device), count in readings_per_device.items()
    )


def encode_statuses(statuses: Iterable[StatusEvent]) -> str:
    return "\n".join(
        f"{MEASUREMENT_STATUS},device={s.device},tenant={s.tenant} "
        f'state="{s.state.value}",online={"true" if s.state == "online" else "false"} {s.ts_ns}'
        for s in statuses
    )


def encode_dead_letters(letters: Iterable[DeadLetter], ts_ns: Iterable[int]) -> str:
    return "\n".join(
        f"{MEASUREMENT_DEAD_LETTER},reason={d.reason.value},service={escape_tag(d.service)} "
        f"detail={escape_string_field(d.detail)},topic={escape_string_field(d.topic)},"
        f"payload_excerpt={escape_string_field(d.payload_excerpt)},"
        f"payload_bytes={d.payload_bytes}i {ts}"
        for d, ts in zip(letters, ts_ns, strict=True)
    )


def encode_events(events: Iterable[ValidatedEvent]) -> str:
    """Tenant, device and type are contract identifiers: no escaping needed."""
    return "\n".join(
        f"{MEASUREMENT_EVENT},device={e.device},tenant={e.tenant},type={e.type} "
        f"seq={e.seq}i,data={escape_string_field(event_data(e))} {event_time_ns(e.ts_ns, e.seq)}"
        for e in events
    )


def encode_alert_events(events: Iterable[AlertEvent]) -> str:
    """``_alert`` points tagged by tenant, rule, state, severity and what they are about."""
    lines = []
    for e in events:
        tags = f"{MEASUREMENT_ALERT},rule={escape_tag(e.rule)},severity={escape_tag(e.severity)}"
        tags += f",state={escape_tag(e.state)},tenant={escape_tag(e.tenant)}"
        for name in ("bus", "child", "device", "site"):
            value = getattr(e, name)
            if value:
                tags += f",{name}={escape_tag(value)}"
        lines.append(
            f"{tags} fingerprint={escape_string_field(e.fingerprint)},"
            f"summary={escape_string_field(e.summary)},"
            f"notified={'true' if e.notified else 'false'},value=1i {e.ts_ns}"
        )
    return "\n".join(lines)
