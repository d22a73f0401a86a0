"""The telemetry models as msgspec structs, and the bulk checks that make them answer as the models.

For consumers' hot paths (``TelemetryValidator.validate_many``): msgspec decodes a
payload straight from bytes into structs about ten times faster than pydantic-core
builds the TypedDict mirrors, and the checks msgspec does not make the contract's way
are made in bulk, once per group of messages instead of once per reading:

* identifiers, metric names and units once per *distinct* value, by the models' own
  pydantic field validators (so the same Rust regex, lengths and nulls);
* timestamps with the contract's own pattern over all of them joined, one regex call,
  then ``datetime.fromisoformat``, which reads exactly the RFC 3339 subset the pattern
  lets through and truncates digits beyond the microsecond as pydantic does.

The structs are generated from the models: field names, which fields are required and
their defaults come from ``model_fields``, so a field added to a model without a
fast-path type here fails at import. Everything here may refuse more than the models
(a payload with a JSON escape, ``"seq": 3.0``): the caller then asks the models, so the
fast path only ever decides what it can decide identically.
tests/contract/test_bulk_validation.py holds the two to the same answers.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import floordiv, mul, sub
from typing import Annotated, Any

import msgspec
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from iotmon_contract.payloads import (
    MAX_BATCH_READINGS,
    SEQUENCE_MAX,
    TIMESTAMP_PATTERN,
    Reading,
    ReadingBatch,
    SingleReading,
)

_FLOAT_MAX = sys.float_info.max
_FINITE = Annotated[float, msgspec.Meta(ge=-_FLOAT_MAX, le=_FLOAT_MAX)]
# Stricter than the model's WireInteger, which also takes 3.0: such a payload goes to
# the models.
_SEQUENCE = Annotated[int, msgspec.Meta(ge=0, le=SEQUENCE_MAX)] | None


class NotFast(Exception):
    """This group is not for the fast path: the models decide each of its messages."""


def model_struct(
    model: type[BaseModel], types: Mapping[str, Any], name: str
) -> type[msgspec.Struct]:
    """A msgspec struct with ``model``'s fields (names, required, defaults) and ``types``."""
    fields = model.model_fields
    missing, extra = set(fields) - set(types), set(types) - set(fields)
    if missing or extra:
        raise TypeError(
            f"{model.__name__}'s fast-path struct is out of date: fields without a type "
            f"{sorted(missing)}, types without a field {sorted(extra)}"
        )
    if model.model_config.get("extra") != "forbid":
        raise TypeError(f"{model.__name__} must forbid extra fields, as its struct does")
    members: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field_name, info in fields.items():
        if info.alias not in (None, field_name) or info.default_factory is not None:
            raise TypeError(f"{model.__name__}.{field_name}: aliases and factories unsupported")
        if info.is_required():
            members.append((field_name, types[field_name]))
        else:
            members.append((field_name, types[field_name], info.default))
    return msgspec.defstruct(
        name, members, kw_only=True, forbid_unknown_fields=True, frozen=True, gc=False
    )


_READING_FIELDS = {
    "metric": str,
    "value": _FINITE,
    "ts": str,
    "unit": str | None,
    "device": str | None,
}
FastReading = model_struct(Reading, _READING_FIELDS, "FastReading")
FastSingle = model_struct(
    SingleReading,
    {"metric": str, "value": _FINITE, "ts": str, "unit": str | None, "seq": _SEQUENCE},
    "FastSingle",
)
FastBatch = model_struct(
    ReadingBatch,
    {
        "readings": Annotated[
            list[FastReading],  # type: ignore[valid-type]
            msgspec.Meta(min_length=1, max_length=MAX_BATCH_READINGS),
        ],
        "seq": _SEQUENCE,
    },
    "FastBatch",
)

decode_single: Callable[[bytes], Any] = msgspec.json.Decoder(FastSingle).decode
decode_batch: Callable[[bytes], Any] = msgspec.json.Decoder(FastBatch).decode
DecodeErrors = (msgspec.ValidationError, msgspec.DecodeError)


def _field_validator(model: type[BaseModel], name: str) -> Callable[[Any], Any]:
    """The model's own validation of one field, for values msgspec decoded as plain str."""
    info = model.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:
        annotation = Annotated[annotation, *info.metadata]
    adapter: TypeAdapter[Any] = TypeAdapter(annotation, config=ConfigDict(strict=True))
    return adapter.validate_python


class DistinctValues:
    """Accepts a set of values when the field's validator accepts each; remembers the good ones.

    A batch names a handful of metrics, units and devices thousands of times: checking each
    distinct value once, and each only the first time it is seen, costs next to nothing.
    """

    def __init__(self, validate: Callable[[Any], Any], limit: int = 4096) -> None:
        self._validate = validate
        self._good: set[Any] = set()
        self._limit = limit

    @classmethod
    def of(cls, model: type[BaseModel], field: str) -> DistinctValues:
        return cls(_field_validator(model, field))

    def accepts(self, values: Iterable[Any]) -> bool:
        new = set(values) - self._good
        if not new:
            return True
        try:
            for value in new:
                self._validate(value)
        except ValidationError:
            return False
        if len(self._good) + len(new) > self._limit:
            self._good.clear()
        self._good |= new
        return True


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ONE_TIMESTAMP = TIMESTAMP_PATTERN.removeprefix("^").removesuffix("$")
# No timestamp the pattern accepts holds a newline, so each joined line must be one.
_TIMESTAMPS = re.compile(f"(?:{_ONE_TIMESTAMP}\n)*{_ONE_TIMESTAMP}")


def timestamps_ns(stamps: list[str]) -> list[int]:
    """Nanoseconds since the epoch of RFC 3339 strings, as the models read them; NotFast
    if any is not one the contract's pattern and calendar accept."""
    if _TIMESTAMPS.fullmatch("\n".join(stamps)) is None:
        raise NotFast
    try:
        parsed = list(map(datetime.fromisoformat, stamps))
    except ValueError:  # the calendar: 30 February
        raise NotFast from None
    micros = map(floordiv, map(sub, parsed, repeat(_EPOCH)), repeat(_MICROSECOND))
    return list(map(mul, micros, repeat(1000)))


__all__ = [
    "DecodeErrors",
    "DistinctValues",
    "FastBatch",
    "FastReading",
    "FastSingle",
    "NotFast",
    "decode_batch",
    "decode_single",
    "model_struct",
    "timestamps_ns",
]
