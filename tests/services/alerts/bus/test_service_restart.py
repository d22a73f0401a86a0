"""The bus rules across a restart: the alert service killed (SIGKILL) mid-run rebuilds them
from its journal, so a child who boarded before the kill is still counted at the run end,
and nothing told before the kill is told again."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iotmon_alerts.adapters.database import AlertsDatabase, DeliveryState
from iotmon_alerts.clock import SimulatedClock
from iotmon_alerts.routing import Owner
from iotmon_tools.localstack import MosquittoProcess, WebhookReceiver
from tests.services.alerts.support import (
    ClockFeeder,
    ServiceProcess,
    bus_notifications,
    make_settings,
    service_environment,
    wait_online,
    wait_until,
    write_rules,
)
from tests.utils.bus import FLEET_YAML, Day, at
from tests.utils.mqtt_peer import Peer

RULES = """\
tenant: demo
bus:
  fleet: {fleet}
"""
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEED = 60.0
END = 1100.0
"""The run ends (run_end, then ignition off) 1100 s after the day's first event."""


def test_a_run_in_progress_survives_a_kill_9(
    tmp_path: Path, fresh_mosquitto: MosquittoProcess
) -> None:
    settings = make_settings(tmp_path, fresh_mosquitto)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET_YAML)
    write_rules(settings, "demo", RULES.format(fleet=fleet))
    receiver = WebhookReceiver()
    url = receiver.add_endpoint("/operator", SECRET)
    with AlertsDatabase(settings.database) as database:
        database.add_subscription("demo", Owner.TENANT, url, secret=SECRET, now=at(0))
    # Cid boards at stop-b (600 s) and his alighting read at school is missed.
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], end=END)
    lines = [json.loads(line) for line in day.lines]
    # one clock for the test and the service: it reads 10 s before the day 3 s from now
    starts_at = datetime.now(UTC) + timedelta(seconds=3)
    epoch = at(-10)
    clock = SimulatedClock(epoch, SPEED, starts_at)
    environment = service_environment(
        settings,
        IOTMON_ALERTS_CLOCK__EPOCH=epoch.isoformat(),
        IOTMON_ALERTS_CLOCK__SPEED=str(SPEED),
        IOTMON_ALERTS_CLOCK__STARTS_AT=starts_at.isoformat(),
        IOTMON_ALERTS_TICK_INTERVAL_S="0.05",
    )
    log = tmp_path / "alerts.log"
    service = ServiceProcess(environment, log)
    peer = Peer(fresh_mosquitto.port, None)
    peer.connect()
    receiver.start()
    service.start()
    try:
        wait_online(peer, settings, service.process)
        feeder = ClockFeeder(peer, clock, lines)
        feeder.publish_until(at(700))

        def told(kind: str, tag: str) -> bool:
            return any(
                (n["kind"], n["child_tag"]) == (kind, tag)
                for n in bus_notifications(receiver.received())
            )

        # Cid's boarding was decided and recorded (its notice is out): now kill.
        wait_until(lambda: told("boarded", "TAG-CID"), 20, "Cid's boarding notice")
        service.kill()
        service.start()
        feeder.publish_until(at(END + 3600))
        # the decision comes 30 s after the run end; then the deliveries drain
        feeder.sleep_until(at(END + 120))
        with AlertsDatabase(settings.database) as database:
            wait_until(
                lambda: DeliveryState.PENDING.value not in database.outbox_counts(),
                20,
                "the outbox drained",
            )
        notifications = bus_notifications(receiver.received())
        left = [
            (n["child_tag"], n["state"], sorted(r["role"] for r in n["recipients"]))
            for n in notifications
            if n["kind"] == "child_left_aboard"
        ]
        assert left == [("TAG-CID", "firing", ["driver", "operator"])], notifications
        notices = Counter(
            (n["kind"], n["child_tag"]) for n in notifications if n["kind"] != "child_left_aboard"
        )
        assert notices == {
            ("boarded", "TAG-ANN"): 1,
            ("boarded", "TAG-BEN"): 1,
            ("boarded", "TAG-CID"): 1,
            ("alighted", "TAG-ANN"): 1,
            ("alighted", "TAG-BEN"): 1,
        }
        assert receiver.bad_signatures == 0
        text = log.read_text()
        assert "alerts run on a simulated clock" in text
        rebuilt = [line for line in text.splitlines() if "rebuilt from" in line]
        assert len(rebuilt) == 2, rebuilt
        assert "rebuilt from 0 journal line(s)" in rebuilt[0]
        assert "rebuilt from 0 journal line(s)" not in rebuilt[1]
    finally:
        service.stop()
        receiver.stop()
        peer.close()
