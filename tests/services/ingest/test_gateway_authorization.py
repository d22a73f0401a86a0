"""Who may speak for which device, through real mosquitto and influxd.

A batch on a device's topic may name other devices only if the registry makes the
publishing device their gateway. Otherwise the whole message is one dead letter
(``unauthorized_device``): a message is accepted or refused as a unit, as with
every other contract violation, so a gateway never gets half a batch stored.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from iotmon_contract import DeadLetterReason, dead_letter_topic, telemetry_topic
from iotmon_registry import Registry
from iotmon_storage import TimeSeriesStore
from iotmon_tools.localstack import MosquittoProcess
from tests.services.ingest.conftest import StartIngest
from tests.services.ingest.support import (
    Collector,
    Publisher,
    batch,
    now_us,
    registry_url,
    stored_values,
    ts_from_us,
    unique,
    wait_until,
)

MISS_REFRESH_S = 0.3


def test_only_a_registered_gateway_speaks_for_its_children(
    start_ingest: StartIngest,
    fresh_mosquitto: MosquittoProcess,
    store: TimeSeriesStore,
    tmp_path: Path,
) -> None:
    tenant = unique("t")
    service = start_ingest(
        registry={"url": registry_url(tmp_path), "miss_refresh_interval_s": MISS_REFRESH_S}
    )
    with Registry(service.settings.registry) as registry:
        registry.import_gateway(tenant, "gw-a", ["a-1", "a-2"])
        registry.import_gateway(tenant, "gw-b", ["b-1"])
    dead = Collector(fresh_mosquitto, dead_letter_topic("ingest"))
    publisher = Publisher(fresh_mosquitto)
    base = now_us() - 60_000_000
    ts: list[datetime] = [ts_from_us(base + i) for i in range(20)]

    # Stored: gw-a for itself and its two children.
    good = [(None, "power_w", 1.0, ts[0]), ("a-1", "power_w", 2.0, ts[1]),
            ("a-2", "power_w", 3.0, ts[2]), ("gw-a", "power_w", 4.0, ts[3])]  # fmt: skip
    publisher.publish(telemetry_topic(tenant, "gw-a"), batch(good))
    # Refused whole: gw-a naming gw-b's child, next to a reading of its own child.
    publisher.publish(
        telemetry_topic(tenant, "gw-a"),
        batch([("a-1", "power_w", 5.0, ts[4]), ("b-1", "power_w", 6.0, ts[5])]),
    )
    # Refused: a child nobody registered.
    publisher.publish(telemetry_topic(tenant, "gw-a"), batch([("ghost", "power_w", 7.0, ts[6])]))
    # Refused: a plain device naming itself and someone else (the reported hole).
    publisher.publish(
        telemetry_topic(tenant, "env-2"),
        batch([("env-2", "power_w", 8.0, ts[7]), ("someone-else", "power_w", 9.0, ts[8])]),
    )
    # Stored: the same device naming only itself.
    publisher.publish(telemetry_topic(tenant, "env-2"), batch([("env-2", "power_w", 10.0, ts[9])]))
    publisher.flush()

    def stored() -> dict[tuple[str, int], float]:
        return stored_values(store, tenant, "power_w")

    expected = {
        ("gw-a", base * 1000): 1.0,
        ("a-1", (base + 1) * 1000): 2.0,
        ("a-2", (base + 2) * 1000): 3.0,
        ("gw-a", (base + 3) * 1000): 4.0,
        ("env-2", (base + 9) * 1000): 10.0,
    }
    assert wait_until(lambda: len(dead.messages) >= 3 and len(stored()) >= 5, 15)
    assert stored() == expected  # a-1's reading from the refused batch is not there
    letters = dead.payloads()
    assert [p["reason"] for p in letters] == [DeadLetterReason.UNAUTHORIZED_DEVICE.value] * 3
    details = [p["detail"] for p in letters]
    assert details == [
        f"readings.1.device 'b-1' is not a child of 'gw-a' in tenant '{tenant}'",
        f"readings.0.device 'ghost' is not a child of 'gw-a' in tenant '{tenant}'",
        f"readings.1.device 'someone-else' is not a child of 'env-2' in tenant '{tenant}'",
    ]
    assert [p["topic"] for p in letters] == [telemetry_topic(tenant, d) for d in
                                             ("gw-a", "gw-a", "env-2")]  # fmt: skip
    assert service.counters.dead_letters == {"unauthorized_device": 3}

    # Registered now: once the miss interval has passed since the last look (the refused
    # batches above made one), the next batch naming it is accepted, with no poll (10 s).
    with Registry(service.settings.registry) as registry:
        registry.import_gateway(tenant, "gw-a", ["a-1", "a-2", "ghost"])
    time.sleep(MISS_REFRESH_S)
    publisher.publish(telemetry_topic(tenant, "gw-a"), batch([("ghost", "power_w", 11.0, ts[10])]))
    publisher.close()
    assert wait_until(lambda: ("ghost", (base + 10) * 1000) in stored(), 10)
    assert service.counters.dead_letters == {"unauthorized_device": 3}
    dead.close()
