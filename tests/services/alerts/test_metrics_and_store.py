"""After a real run (mosquitto, SQLite, a signed-webhook receiver, influxd): the service's
/metrics read through prometheus-client's own parser, and its alert events in InfluxDB's
``_alert`` measurement."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_alerts.routing import Owner
from iotmon_alerts.service import AlertService
from iotmon_contract import telemetry_topic
from iotmon_runtime.version import distribution_version
from iotmon_storage import StoreSettings, open_store
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess, WebhookReceiver
from tests.services.alerts.support import make_settings, reading, wait_until, write_rules
from tests.utils.mqtt_peer import Peer

RULES = """\
tenant: acme
rules:
  - name: hot
    type: threshold
    metric: temperature
    above: 30
    clear: 28
"""
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    text = response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_and_influx_alert_events_after_a_real_run(
    tmp_path: Path, mosquitto: MosquittoProcess, influxd: InfluxdProcess
) -> None:
    store_settings = StoreSettings(url=influxd.url, database=f"alerts_{uuid.uuid4().hex[:10]}")
    settings = make_settings(tmp_path, mosquitto, store=store_settings)
    write_rules(settings, "acme", RULES)
    receiver = WebhookReceiver()
    url = receiver.add_endpoint("/ops", SECRET)
    with AlertsDatabase(settings.database) as database:
        database.add_subscription("acme", Owner.TENANT, url, secret=SECRET, now=datetime.now(UTC))
    receiver.start()
    peer = Peer(mosquitto.port, None)
    peer.connect()
    service = AlertService(settings)
    service.start()
    try:
        assert service.client is not None
        assert service.client.wait_subscribed(10)
        assert service.metrics_url is not None
        before = scrape(service.metrics_url)
        assert before[("iotmon_alerts_webhooks_delivered_total", ())] == 0
        # every refusal reason is there from the start, at 0
        assert before[("iotmon_alerts_refused_total", (("reason", "not_json"),))] == 0
        topic = telemetry_topic("acme", "env-1")
        peer.publish(topic, reading("temperature", 31))  # fires
        peer.publish(topic, reading("temperature", 20))  # resolves
        peer.publish(topic, b"not json")
        assert len(receiver.wait_for(2, 20, "/ops")) == 2
        wait_until(lambda: service.counters.get("events_written") >= 2, what="_alert written")
        wait_until(lambda: service.counters.refused_count() >= 1, what="the refusal")
        dispatcher = service.dispatcher
        assert dispatcher is not None
        # the receiver has read both; the dispatcher counts each once the answer is back
        wait_until(lambda: dispatcher.counters_snapshot().delivered >= 2, what="deliveries")
        after = scrape(service.metrics_url)
    finally:
        service.stop()
        receiver.stop()
        peer.close()

    assert after[("iotmon_alerts_messages_total", (("kind", "telemetry"),))] == 3
    assert after[("iotmon_alerts_refused_total", (("reason", "not_json"),))] == 1
    assert after[("iotmon_alerts_alert_changes_total", ())] == 2
    assert after[("iotmon_alerts_webhooks_queued_total", ())] == 2
    assert after[("iotmon_alerts_webhooks_delivered_total", ())] == 2
    assert after[("iotmon_alerts_events_written_total", ())] == 2
    assert after[("iotmon_alerts_active_alerts", ())] == 0
    assert (
        after[
            (
                "iotmon_build_info",
                (("service", "alerts"), ("version", distribution_version("iotmon-alerts"))),
            )
        ]
        == 1
    )
    client = (("client", settings.client_id),)
    assert after[("iotmon_mqtt_connected", client)] == 1
    assert after[("iotmon_mqtt_messages_received_total", client)] >= 3

    store = open_store(store_settings)
    try:
        events = store.alert_events("acme")
    finally:
        store.close()
    assert sorted(e.state for e in events) == ["firing", "resolved"]
    assert {(e.rule, e.device, e.severity) for e in events} == {("hot", "env-1", "warning")}
    assert all(e.notified for e in events)
