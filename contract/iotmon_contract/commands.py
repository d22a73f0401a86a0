"""Commands to devices: a request on ``.../request/<action>``, answered on
``.../response/<action>``.

The shape is Zigbee2MQTT's bridge API: ``{transaction, data}`` in,
``{status, data, error, transaction}`` out, the transaction echoed so the requester
can match the answer. A handler's failure becomes an error response, never silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from iotmon_contract.fields import OPAQUE_ID_PATTERN, PRINTABLE_PATTERN, to_printable
from iotmon_contract.payloads import ContractModel

MAX_ERROR_CHARS = 1000

Transaction = Annotated[
    str,
    Field(
        pattern=OPAQUE_ID_PATTERN,
        description="Chosen by the requester, echoed in the response; e.g. a UUID.",
    ),
]
ErrorText = Annotated[
    str, Field(min_length=1, max_length=MAX_ERROR_CHARS, pattern=PRINTABLE_PATTERN)
]


class CommandRequest(ContractModel):
    """Ask a device to do the topic's action."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"transaction": "7f3c2a10-sweep", "data": {"duration_s": 10}},
                {"transaction": "01JDQ5ZC7W2V3K1M4N5P6Q7R8S"},
            ]
        }
    )

    transaction: Transaction
    data: dict[str, Any] = Field(
        default_factory=dict, description="Arguments of the action, as the action defines them."
    )


class CommandStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


_ERROR_IFF_FAILED: JsonDict = {
    "if": {"properties": {"status": {"const": CommandStatus.ERROR.value}}},
    "then": {"required": ["error"], "properties": {"error": {"type": "string"}}},
    "else": {"properties": {"error": {"type": "null"}}},
}


class CommandResponse(ContractModel):
    """A device's answer: ``ok`` with data, or ``error`` with a message."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [_ERROR_IFF_FAILED],
            "examples": [
                {"status": "ok", "data": {"reads": 12}, "transaction": "7f3c2a10-sweep"},
                {
                    "status": "error",
                    "data": {},
                    "error": "reader busy: a sweep is running",
                    "transaction": "7f3c2a10-sweep",
                },
            ],
        }
    )

    status: CommandStatus
    data: dict[str, Any] = Field(default_factory=dict, description="Result of the action.")
    error: ErrorText | None = Field(
        default=None,
        description="Why the action failed: set when status is error, and only then. "
        "Printable characters only.",
    )
    transaction: Transaction | None = Field(
        default=None,
        description="The request's transaction; absent only when the request could not be "
        "read (then the error says why).",
    )

    @model_validator(mode="after")
    def _error_iff_failed(self) -> Self:
        if (self.status is CommandStatus.ERROR) != (self.error is not None):
            raise ValueError("error is required when status is error, and refused otherwise")
        return self


def ok_response(request: CommandRequest, data: Mapping[str, Any] | None = None) -> CommandResponse:
    """The success answer to ``request``."""
    return CommandResponse(
        status=CommandStatus.OK, data=dict(data or {}), transaction=request.transaction
    )


def error_response(request: CommandRequest | None, message: str) -> CommandResponse:
    """The failure answer to ``request`` (None when it could not be parsed).

    Takes any text, e.g. ``str(exc)``: it is made printable and cut to fit, so building
    the answer to a failure cannot fail in turn.
    """
    error = to_printable(message, MAX_ERROR_CHARS).strip() or "failed"
    return CommandResponse(
        status=CommandStatus.ERROR,
        error=error,
        transaction=request.transaction if request is not None else None,
    )
