"""Availability messages as consumers read them: ``parse_status`` and its ``StatusEvent``."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from iotmon_contract.payloads import DeadLetterReason, DeviceState, DeviceStatus
from iotmon_contract.topics import MessageKind
from iotmon_contract.validation import ContractViolation, expect_topic, to_ns


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A device's (or agent's) availability at a time, as stored."""

    tenant: str
    device: str
    state: DeviceState
    ts_ns: int


def _status_violation(exc: ValidationError) -> ContractViolation:
    if any(e["type"] == "json_invalid" for e in exc.errors()):
        return ContractViolation(DeadLetterReason.NOT_JSON, "status payload is not valid JSON")
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "<root>"
    return ContractViolation(DeadLetterReason.SCHEMA, f"status {where}: {first['msg']}")


def parse_status(topic: str, payload: bytes, received_ns: int) -> StatusEvent | None:
    """A status message as a StatusEvent; None for an empty payload (a cleared retained status).

    A last will carries no ``ts``: the time it was received stands in.
    """
    info = expect_topic(topic, MessageKind.STATUS)
    if not payload:
        return None
    try:
        status = DeviceStatus.model_validate_json(payload)
    except ValidationError as exc:
        raise _status_violation(exc) from None
    ts_ns = to_ns(status.ts) if status.ts is not None else received_ns
    return StatusEvent(info.tenant, info.device, status.state, ts_ns)


__all__ = ["StatusEvent", "parse_status"]
