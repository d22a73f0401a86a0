"""A broker SIGTERMed under load and restarted in place: every reading it acknowledged is stored.

mosquitto 2.0 saves persistent sessions, and their plain subscriptions, on exit,
but not shared subscriptions: after a restart a share group has no members
until ingest resubscribes, and telemetry published meanwhile is acknowledged
to the publisher and dropped. Ingest's single session subscribes plainly, so
the restored session queues it instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from iotmon_tools.localstack import InfluxdProcess
from tests.services.ingest.broker_restart import RoundSettings, run_round
from tests.services.ingest.support import unique

# Down 1.5 s, the broker comes back between ingest's reconnect attempts (paho
# backs off 1 s, then 2 s) while the publisher retries every second: a second
# of publishing before ingest is back, every time. The immediate restarts are
# the race from the field (ingest and publisher both back after ~1 s).
STOPS = RoundSettings(stops=3, restart_delays_s=(0.0, 1.5, 0.0), settle_s=30.0)


@pytest.mark.slow
def test_readings_acknowledged_around_broker_restarts_are_all_stored(
    influxd: InfluxdProcess, tmp_path: Path
) -> None:
    result = run_round(influxd.url, tmp_path / "round", unique("t"), STOPS)

    # The scenario happened: the restarted broker acknowledged readings before
    # ingest could have subscribed again, and ingest reconnected each time.
    assert all(stop.ingest_connected_at is not None for stop in result.stops), result.summary()
    assert result.accepted_before_resubscribe(), result.summary()
    assert len(result.acknowledged) == result.published, result.summary()
    assert not result.lost, "\n".join([result.summary(), *result.timeline[:20]])
