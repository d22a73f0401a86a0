"""Field types shared by the payload models: printable text, tokens, wire integers.

Each is written so that pydantic-core and the published JSON Schema accept exactly
the same JSON (tests/contract/test_schema_agreement*.py hold them to it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

_UNPRINTABLE_CLASS = (
    r"\u0000-\u001F\u007F-\u009F\u061C\u200B-\u200F\u2028-\u202E\u2066-\u2069\uFEFF"
)
PRINTABLE_PATTERN = rf"^[^{_UNPRINTABLE_CLASS}]*$"
"""Free-form text that is safe to store as a tag and to show back: no control characters.

A deliberate restriction, made for a security issue: strings a device sends (units,
event details, labels) end up as InfluxDB tags, in log lines, dashboards and alert
messages. Refused are the C0 and C1 controls and DEL (line breaks and escape sequences
forge log lines and terminal output), the bidirectional embedding, override and
isolate marks U+202A-U+202E and U+2066-U+2069 and the Arabic letter mark U+061C
("Trojan Source": text that displays differently from what it is), the zero-width
characters and direction marks U+200B-U+200F, the line and paragraph separators
U+2028/U+2029 and the byte-order mark U+FEFF.

Written so that Rust's regex (pydantic-core), ECMA-262 (JSON Schema, with or without
the ``u`` flag) and Python's ``re`` read it the same: ``\\uXXXX`` escapes of BMP code
points only, in one negated class under ``*``. Lengths are left to ``minLength`` and
``maxLength``, which count code points on both sides (ECMA-262 without ``u`` counts an
emoji as two characters, so a ``{1,16}`` here would not agree).
"""

UNIT_PATTERN = rf"^[^{_UNPRINTABLE_CLASS}\u005C]*$"
"""Printable text without a backslash: a unit becomes an InfluxDB tag, and InfluxDB 1.x
refuses a tag value that ends in a backslash (it escapes the space after it) while 2.x
reads a doubled one as a single one, so no escaping stores it the same everywhere."""

# Lone surrogates too: Python strings can hold them (e.g. from surrogateescape), JSON
# text cannot, and pydantic refuses them.
_UNPRINTABLE = re.compile(rf"[{_UNPRINTABLE_CLASS}\ud800-\udfff]+")


def to_printable(text: str, max_length: int) -> str:
    """``text`` made to fit a printable field: each run of refused characters (and of
    lone surrogates) becomes a space, and the result is cut to ``max_length``. For text
    a service did not choose, e.g. an exception's message put in an error reply."""
    return _UNPRINTABLE.sub(" ", text)[:max_length]


OPAQUE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
"""Opaque ids chosen by a producer (transactions, runs, sweeps, alert fingerprints):
ASCII letters, digits and ``_ . : -``, so a UUID, a hex digest or a ULID fits."""


@dataclass(frozen=True, slots=True)
class WireInteger:
    """An integer in ``[minimum, maximum]``; on the wire a JSON number with no fraction.

    JSON Schema counts ``3.0`` as an integer and the published schema says integer, so
    the model takes it too (as 3); strings and booleans are refused. From Python it
    must be an ``int`` already. Use as ``Annotated[int, WireInteger(0, 255)]``.
    """

    minimum: int
    maximum: int
    error_type: str = "integer_range"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        exact = core_schema.int_schema(ge=self.minimum, le=self.maximum, strict=True)
        integral_float = core_schema.chain_schema(
            [
                core_schema.float_schema(strict=True),
                core_schema.int_schema(ge=self.minimum, le=self.maximum, strict=False),
            ]
        )
        return core_schema.json_or_python_schema(
            json_schema=core_schema.union_schema(
                [exact, integral_float],
                mode="left_to_right",
                custom_error_type=self.error_type,
                custom_error_message=(
                    f"Input should be an integer from {self.minimum} to {self.maximum}"
                ),
            ),
            python_schema=exact,
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
