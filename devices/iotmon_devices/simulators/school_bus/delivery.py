"""From what devices sent to what the platform received: device clocks off by seconds,
network latency, edge link outages whose backlog arrives late and out of order across
devices, and the broker's occasional redelivery. Lines are the replay's input format."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from iotmon_devices.simulators.school_bus.config import SchoolBusSimConfig
from iotmon_devices.simulators.school_bus.day import Emit, Outage
from iotmon_devices.simulators.school_bus.world import World


def iso(t: float) -> str:
    """Epoch seconds as RFC 3339 in UTC with milliseconds."""
    stamp = dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")
    return stamp.removesuffix("+00:00") + "Z"


@dataclass(slots=True)
class Line:
    """One line of events.jsonl: delivered at ``at`` (epoch seconds)."""

    at: float
    order: int
    data: dict[str, Any]


class Delivery:
    """Turns a day's emissions into delivered lines; keeps sequence numbers across days."""

    def __init__(self, world: World, config: SchoolBusSimConfig) -> None:
        self._world = world
        self._config = config
        self._seq: dict[str, int] = {}
        self._bus_of = {
            device: bus.id
            for bus in world.buses
            for device in (
                bus.telematics, bus.door_reader, bus.cabin_scanner, bus.gateway, bus.presence,
            )
            if device is not None
        }  # fmt: skip

    def deliver(self, day: dt.date, emits: Iterable[Emit], outages: list[Outage]) -> list[Line]:
        rng = random.Random(f"school-bus:{self._config.seed}:{day.isoformat()}:delivery")
        skew_limit = self._config.faults.clock_skew_s
        skew: dict[str, float] = {}
        lines: list[Line] = []
        backlog: dict[tuple[int, str], list[tuple[Emit, dict[str, Any]]]] = {}
        ordered = sorted(emits, key=lambda e: e.true)
        for emit in ordered:
            if emit.device not in skew:
                skew[emit.device] = rng.uniform(-skew_limit, skew_limit)
            payload = self._payload(emit, emit.true + skew[emit.device])
            bus = self._bus_of.get(emit.device)
            held = next(
                (
                    i
                    for i, o in enumerate(outages)
                    if o.bus == bus and o.start <= emit.true < o.end and not emit.will
                ),
                None,
            )
            if held is not None:
                backlog.setdefault((held, emit.device), []).append((emit, payload))
                continue
            lines.append(Line(emit.true + rng.uniform(0.05, 1.5), len(lines), payload))
        for index, outage in enumerate(outages):
            sim_bus = next(b for b in self._world.buses if b.id == outage.bus)
            gateway = sim_bus.gateway
            # the broker notices the vanished agent after 1.5 keep-alives: its will
            will_at = outage.start + rng.uniform(60, 90)
            if will_at < outage.end:
                lines.append(Line(will_at, len(lines), self._status_line(gateway, "offline", None)))
            online = self._status_line(gateway, "online", outage.end + skew.get(gateway, 0))
            lines.append(Line(outage.end + 0.2, len(lines), online))
            devices = sorted({device for (i, device) in backlog if i == index})
            rng.shuffle(devices)
            at = outage.end + 1.0
            for device in devices:
                for _emit, payload in backlog[(index, device)]:
                    lines.append(Line(at, len(lines), payload))
                    at += 0.01
        for line in list(lines):
            if rng.random() < self._config.faults.redelivery:
                lines.append(Line(line.at + rng.uniform(0.2, 5.0), len(lines), line.data))
        lines.sort(key=lambda line: (line.at, line.order))
        for line in lines:
            line.data = {"at": iso(line.at), **line.data}
        return lines

    def _payload(self, emit: Emit, ts: float) -> dict[str, Any]:
        if emit.kind == "status":
            return self._status_line(
                emit.device, str(emit.body["state"]), None if emit.will else ts
            )
        seq = self._seq.get(emit.device, 0) + 1
        self._seq[emit.device] = seq
        event = {"type": emit.body["type"], "ts": iso(ts), "seq": seq}
        event.update((k, v) for k, v in emit.body.items() if k != "type")
        return {"tenant": self._world.tenant, "device": emit.device, "event": event}

    def _status_line(self, device: str, state: str, ts: float | None) -> dict[str, Any]:
        status: dict[str, Any] = {"state": state}
        if ts is not None:
            status["ts"] = iso(ts)
        return {"tenant": self._world.tenant, "device": device, "status": status}
