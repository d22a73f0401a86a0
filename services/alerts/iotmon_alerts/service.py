"""The alert service: MQTT in, the domain in between, SQL, MQTT, InfluxDB and webhooks out.

``AlertService(settings, stop_event)`` is the worker (``start``/``stop``). One
thread, the engine thread, owns the domain (``AlertEngine``): MQTT handlers
only enqueue; the engine thread takes messages in small batches, evaluates
them, records the outcome (alerts, notices, outbox rows) in one SQL
transaction and only then acknowledges the messages to the broker, publishes
the alert changes on MQTT, writes them to the time-series store and wakes the
webhook dispatcher. Between messages it runs the timers (``tick``), applies
the API's actions (acknowledgements) and silences, and reloads changed rule
files.

API → service: the API writes an action row (``actions``) and bumps the
database's revision; the engine thread sees the revision move within
``actions_interval_s``, applies each pending action through the domain and
marks it done or failed with the reason. Durable (an acknowledgement made
while the service is down is applied when it starts) and needs no broker
credentials in the API.
"""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from prometheus_client.metrics_core import Metric

from iotmon_alerts.adapters.database import AlertsDatabase, DatabaseUnavailable
from iotmon_alerts.adapters.webhooks import DispatchCounters, WebhookDispatcher
from iotmon_alerts.clock import Clock, SimulatedClock, utc_now
from iotmon_alerts.config import SERVICE_NAME, AlertsSettings
from iotmon_alerts.counters import AlertsCounters
from iotmon_alerts.domain.engine import AlertEngine
from iotmon_alerts.domain.lifecycle import Manager, UnknownAlert
from iotmon_alerts.domain.model import FaultIn, Outcome, ReadingIn, StatusIn
from iotmon_alerts.metrics import AlertsGauges, alerts_families
from iotmon_alerts.routing import Subscription, Webhook, alert_message, notice_message, route
from iotmon_alerts.rules_loader import BusFactory, LoadedRules, RuleWatcher, load_all
from iotmon_contract import (
    ContractViolation,
    DeviceState,
    EventValidator,
    FaultEvent,
    TelemetryValidator,
    alert_topic,
    dead_letter_topic,
    event_filter,
    notice_topic,
    parse_status,
    service_status_topic,
    status_filter,
    telemetry_filter,
    topic_rule,
)
from iotmon_contract.payloads import DeviceStatus
from iotmon_contract.topics import DEAD_LETTER_RULE, SERVICE_STATUS_RULE, ServiceMessageKind
from iotmon_contract.validation import to_ns
from iotmon_registry import Registry, RegistryError
from iotmon_runtime.metrics import (
    MetricsServer,
    SnapshotCollector,
    mqtt_client_families,
    service_registry,
)
from iotmon_runtime.mqtt import (
    ConnectionEvent,
    InboundMessage,
    MqttClient,
    OutgoingMessage,
    RetainHandling,
)
from iotmon_runtime.workers import Supervisor
from iotmon_storage import AlertEvent, StoreError, TimeSeriesStore, open_store

logger = logging.getLogger(__name__)

_BATCH = 500
"""Messages taken per round: one transaction and one ack for all of them."""
_QUEUE_PAUSE_AT = 20_000
_DB_RETRY_MAX_S = 5.0
_SITE_CACHE_LIMIT = 100_000
_JOURNAL_PRUNE_INTERVAL_S = 600.0


class _Window(NamedTuple):
    future: timedelta
    age: timedelta
    clock: Callable[[], int]


class _Message(NamedTuple):
    kind: str
    message: InboundMessage


def _from_ns(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def default_bus_factory() -> BusFactory | None:
    """The school-bus rules' factory, when the bus package is installed with this one."""
    try:
        module = importlib.import_module("iotmon_alerts.bus_channel")
    except ImportError:
        return None
    factory: BusFactory = module.bus_channel
    return factory


class AlertService:
    def __init__(
        self,
        settings: AlertsSettings,
        stop_event: threading.Event | None = None,
        *,
        clock: Clock | None = None,
        bus_factory: BusFactory | None = None,
        store: TimeSeriesStore | None = None,
    ) -> None:
        self._settings = settings
        self._stop_event = stop_event or threading.Event()
        self._given_clock = clock
        self._clock: Clock = clock or utc_now
        self._bus_factory = bus_factory if bus_factory is not None else default_bus_factory()
        self._store = store
        self._owns_store = store is None
        self.counters = AlertsCounters()
        self._inbound: queue.SimpleQueue[_Message] = queue.SimpleQueue()
        self._engine: AlertEngine | None = None
        self._database: AlertsDatabase | None = None
        self._registry: Registry | None = None
        self._dispatcher: WebhookDispatcher | None = None
        self._client: MqttClient | None = None
        self._watcher: RuleWatcher | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._reload_requested = threading.Event()
        self._subscriptions: list[Subscription] = []
        self._revision: int | None = None
        self._sites: dict[tuple[str, str], str | None] = {}
        self._registry_revision: int | None = None
        self._validating: tuple[TelemetryValidator, EventValidator] | None = None
        self._metrics: MetricsServer | None = None
        self._active_alerts = 0
        self.failure: str | None = None

    # -- accessors ---------------------------------------------------------------------

    @property
    def settings(self) -> AlertsSettings:
        return self._settings

    @property
    def database(self) -> AlertsDatabase:
        if self._database is None:
            raise RuntimeError("the alert service is not started")
        return self._database

    @property
    def dispatcher(self) -> WebhookDispatcher | None:
        return self._dispatcher

    @property
    def client(self) -> MqttClient | None:
        return self._client

    def request_reload(self) -> None:
        """Reload every rule file at the next round (SIGHUP)."""
        self._reload_requested.set()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """What the service reads as "now" (the wall clock unless settings say otherwise)."""
        return self._clock

    def _make_clock(self) -> Clock:
        if self._given_clock is not None:
            return self._given_clock
        simulated = self._settings.clock
        if simulated is None:
            return utc_now
        clock = SimulatedClock(simulated.epoch, simulated.speed, simulated.starts_at)
        logger.warning("alerts run on a simulated clock: %r", clock)
        return clock

    @property
    def metrics_url(self) -> str | None:
        """Where /metrics answers while running (None when disabled or stopped)."""
        server = self._metrics
        return server.url if server is not None and server.running else None

    def start(self) -> None:
        """Start; raises ConfigError (bad rule files), DatabaseUnavailable, or
        MetricsServerError (the metrics port is taken)."""
        self._start_metrics()
        try:
            self._start()
        except BaseException:
            self._stop_metrics()
            raise

    def _start_metrics(self) -> None:
        """/metrics first: a taken port fails the start before anything connects."""
        settings = self._settings
        if not settings.metrics.enabled:
            return
        registry = service_registry(SERVICE_NAME, "iotmon-alerts")
        registry.register(SnapshotCollector(self._metric_families))
        server = MetricsServer(
            registry, settings.metrics, setting=AlertsSettings.variable("metrics", "port")
        )
        server.start()
        self._metrics = server

    def _stop_metrics(self) -> None:
        if self._metrics is not None:
            self._metrics.stop()
            self._metrics = None

    def _metric_families(self) -> list[Metric]:
        """Read on a scrape, on the metrics server's thread: snapshots only."""
        client, dispatcher = self._client, self._dispatcher
        gauges = AlertsGauges(
            inbound_messages=self._inbound.qsize(),
            active_alerts=self._active_alerts,
            webhook_endpoints_busy=dispatcher.in_flight_endpoints if dispatcher else 0,
        )
        webhooks = dispatcher.counters_snapshot() if dispatcher else DispatchCounters()
        return [
            *alerts_families(self.counters.snapshot(), webhooks, gauges),
            *mqtt_client_families([client] if client is not None else []),
        ]

    def _start(self) -> None:
        settings = self._settings
        self._clock = self._make_clock()
        loaded = load_all(settings.rules_dir, self._bus_factory)
        database = AlertsDatabase(settings.database).open()
        self._database = database
        try:
            self._registry = Registry(settings.registry).open()
        except RegistryError as exc:
            # Sites then stay unknown (facility subscriptions see device alerts only once
            # the registry is back): alerting itself must not wait for it.
            logger.warning("registry unavailable, alerts carry no site: %s", exc)
            self._registry = None
        if self._store is None and settings.store is not None:
            self._store = open_store(settings.store)
            try:
                self._store.ensure_schema()
            except StoreError as exc:
                logger.warning("time-series store not ready, alert events wait: %s", exc)
        now = self._clock()
        engine = AlertEngine(site_of=self._site_of)
        for rules in loaded:
            self._rebuild_bus(rules, now)
            engine.set_rules(rules.file, now, bus=rules.bus)
        engine.restore((s.alert, s.manager, s.last_notified_at) for s in database.active_alerts())
        engine.set_silences(database.silences(now=now))
        self._engine = engine
        self._active_alerts = len(engine.active_alerts)
        self._watcher = RuleWatcher(settings.rules_dir, self._bus_factory)
        self._watcher.start(loaded)
        self._subscriptions = database.subscriptions()
        self._revision = database.revision()
        self._dispatcher = WebhookDispatcher(database, settings.webhooks, clock=self._clock)
        self._dispatcher.start()
        self._client = self._build_client()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="alerts-engine", daemon=True)
        self._thread.start()
        self._client.start()
        logger.info(
            "alerts %s started: broker %s, database %s, %d tenant(s) with rules, "
            "%d active alert(s), %d subscription(s)",
            settings.client_id,
            settings.mqtt.address,
            database.where,
            len(loaded),
            len(engine.active_alerts),
            len(self._subscriptions),
        )

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        if self._client is not None:
            self._client.stop(offline=self._status_message(DeviceState.OFFLINE))
            self._client = None
        if self._dispatcher is not None:
            self._dispatcher.stop()
            self._dispatcher = None
        if self._store is not None and self._owns_store:
            self._store.close()
            self._store = None
        if self._registry is not None:
            self._registry.close()
            self._registry = None
        if self._database is not None:
            self._database.close()
            self._database = None
        self._stop_metrics()

    def run(self) -> int:
        """Start, wait for the stop event, stop: the process's main loop."""
        return Supervisor([("alerts", self)], self._stop_event).run()

    # -- MQTT ----------------------------------------------------------------------------

    def _status_message(self, state: DeviceState) -> OutgoingMessage:
        settings = self._settings
        ts = self._clock() if state is DeviceState.ONLINE else None
        payload = DeviceStatus(state=state, ts=ts, agent="iotmon-alerts").model_dump_json(
            exclude_none=True
        )
        return OutgoingMessage(
            service_status_topic(SERVICE_NAME, settings.instance_id),
            payload.encode(),
            SERVICE_STATUS_RULE.qos,
            SERVICE_STATUS_RULE.retain,
        )

    def _build_client(self) -> MqttClient:
        mqtt = self._settings.mqtt
        client = MqttClient(
            mqtt,
            client_id=self._settings.client_id,
            will=self._status_message(DeviceState.OFFLINE),
            online=self._status_message(DeviceState.ONLINE),
            manual_ack=True,
            fast_path=mqtt.fast_path,
            persistent_session=True,
            session_expiry_s=mqtt.session_expiry_s,
            name=f"alerts-{self._settings.instance_id}",
        )
        client.add_listener(self._on_connection)
        client.set_paused(lambda: self._inbound.qsize() > _QUEUE_PAUSE_AT)

        def enqueue(kind: str) -> Callable[[InboundMessage], None]:
            put = self._inbound.put

            def handler(message: InboundMessage) -> None:
                put(_Message(kind, message))

            return handler

        # Telemetry and events are never retained (contract): none on subscribe, and the
        # publisher's flag kept on live ones so a retained one is refused, not acted on.
        for kind, topic_filter in (("telemetry", telemetry_filter()), ("event", event_filter())):
            client.subscribe(
                topic_filter,
                enqueue(kind),
                share_group=mqtt.share_group,
                retain_handling=RetainHandling.NEVER,
                retain_as_published=True,
                inline=True,
            )
        # Status is state: retained ones tell the current availability on a new session.
        client.subscribe(
            status_filter(),
            enqueue("status"),
            retain_handling=RetainHandling.IF_NEW_SUBSCRIPTION,
            inline=True,
        )
        return client

    def _on_connection(self, event: ConnectionEvent) -> None:
        if event is ConnectionEvent.FAILED and self._client is not None:
            self.failure = self._client.failure
            self._stop_event.set()

    # -- the engine thread ---------------------------------------------------------------

    def _loop(self) -> None:
        settings = self._settings
        next_tick = next_actions = next_reload = next_stats = next_prune = time.monotonic()
        while not self._stopping.is_set():
            now_mono = time.monotonic()
            wait = max(0.0, min(next_tick, next_actions, next_reload) - now_mono)
            batch = self._take(wait)
            try:
                if batch:
                    self._handle_batch(batch)
                now_mono = time.monotonic()
                if now_mono >= next_tick:
                    next_tick = now_mono + settings.tick_interval_s
                    self._tick()
                if now_mono >= next_actions:
                    next_actions = now_mono + settings.actions_interval_s
                    self._apply_api_changes()
                if now_mono >= next_reload or self._reload_requested.is_set():
                    next_reload = now_mono + settings.reload_interval_s
                    self._reload(force=self._reload_requested.is_set())
                    self._reload_requested.clear()
                if now_mono >= next_prune:
                    next_prune = now_mono + _JOURNAL_PRUNE_INTERVAL_S
                    self._prune_journal()
                if now_mono >= next_stats:
                    next_stats = now_mono + settings.stats_interval_s
                    logger.info("alerts counters: %s", self.counters.snapshot())
            except Exception:
                # One round failing (a bug, a database that went away) must not end the
                # service: its messages stay unacknowledged and come back.
                self.counters.add(round_errors=1)
                logger.exception("alert engine round failed")
                self._stopping.wait(1.0)
        engine = self._engine
        if engine is not None:
            try:
                self._commit(engine.flush(self._clock()), [])
            except Exception:
                logger.exception("could not send the groups waiting at shutdown")

    def _take(self, wait: float) -> list[_Message]:
        try:
            first = self._inbound.get(timeout=max(wait, 0.001))
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < _BATCH:
            try:
                batch.append(self._inbound.get_nowait())
            except queue.Empty:
                break
        return batch

    def _validators(self) -> tuple[TelemetryValidator, EventValidator]:
        settings = self._settings
        clock = self._clock

        def ns() -> int:
            return to_ns(clock())

        rules = _Window(
            timedelta(seconds=settings.max_future_skew_s), timedelta(seconds=settings.max_age_s), ns
        )
        return (
            TelemetryValidator(max_future_skew=rules.future, max_age=rules.age, clock=rules.clock),
            EventValidator(max_future_skew=rules.future, max_age=rules.age, clock=rules.clock),
        )

    def _handle_batch(self, batch: list[_Message]) -> None:
        engine = self._engine
        assert engine is not None
        if self._validating is None:
            self._validating = self._validators()
        telemetry, events = self._validating
        outcome = Outcome()
        tokens = []
        tenants = set(engine.tenants)
        now = self._clock()
        for kind, message in batch:
            tokens.append(message.token)
            try:
                if kind == "telemetry":
                    self.counters.add(telemetry=1)
                    # Cheap before parsing: a tenant without rules has nothing to decide.
                    if message.topic.split("/", 3)[2] not in tenants:
                        continue
                    for reading in telemetry.validate(
                        message.topic, message.payload, retained=message.retained
                    ):
                        outcome.extend(
                            engine.reading(
                                ReadingIn(
                                    reading.tenant,
                                    reading.device,
                                    reading.metric,
                                    reading.value,
                                    _from_ns(reading.ts_ns),
                                ),
                                now,
                            )
                        )
                elif kind == "event":
                    self.counters.add(events=1)
                    event = events.validate(
                        message.topic, message.payload, retained=message.retained
                    )
                    if isinstance(event.event, FaultEvent):
                        fault = event.event
                        outcome.extend(
                            engine.fault(
                                FaultIn(
                                    event.tenant,
                                    event.device,
                                    fault.component,
                                    fault.code,
                                    fault.severity.value,
                                    fault.cleared,
                                    fault.detail,
                                    fault.ts,
                                ),
                                now,
                            )
                        )
                    outcome.extend(engine.bus_event(event, now))
                else:
                    self.counters.add(statuses=1)
                    status = parse_status(message.topic, message.payload, to_ns(now))
                    if status is not None:
                        outcome.extend(
                            engine.status(
                                StatusIn(
                                    status.tenant,
                                    status.device,
                                    status.state is DeviceState.ONLINE,
                                    _from_ns(status.ts_ns),
                                ),
                                now,
                            )
                        )
            except ContractViolation as violation:
                self._refuse(message, violation)
        self._commit(outcome, tokens)

    def _refuse(self, message: InboundMessage, violation: ContractViolation) -> None:
        """A bad message: counted by reason, logged, republished as a dead letter."""
        self.counters.refused(violation.reason.value)
        logger.warning(
            "refused message on %s: %s: %s",
            message.topic[:200],
            violation.reason.value,
            violation.detail[:300],
        )
        client = self._client
        if client is not None:
            letter = violation.dead_letter(SERVICE_NAME, message.topic, message.payload)
            client.publish(
                dead_letter_topic(SERVICE_NAME),
                letter.model_dump_json().encode(),
                DEAD_LETTER_RULE.qos,
                DEAD_LETTER_RULE.retain,
            )

    def _webhooks(self, outcome: Outcome, now: datetime) -> list[Webhook]:
        return [w for d in outcome.deliveries for w in route(d, self._subscriptions, now)]

    def _commit(self, outcome: Outcome, tokens: list[int]) -> None:
        """Record, then acknowledge, then tell: nothing acknowledged is unrecorded."""
        database, engine = self._database, self._engine
        assert database is not None
        assert engine is not None
        now = self._clock()
        new = 0
        if outcome:
            webhooks = self._webhooks(outcome, now)
            managers = {
                c.alert.fingerprint: engine.manager_of(c.alert.fingerprint) or Manager.RULES
                for c in outcome.changes
            }
            delay = 0.2
            while True:
                try:
                    new = database.record(
                        outcome.changes, outcome.notices, webhooks, managers, now, outcome.journal
                    )
                    break
                except DatabaseUnavailable as exc:
                    self.counters.add(database_failures=1)
                    if self._stopping.is_set():
                        # Unacknowledged: the broker delivers these messages again.
                        logger.error("alert database unavailable at shutdown: %s", exc)
                        return
                    logger.warning("alert database unavailable, retrying: %s", exc)
                    self._stopping.wait(delay)
                    delay = min(delay * 2, _DB_RETRY_MAX_S)
            self.counters.add(
                alert_changes=len(outcome.changes),
                notices=len(outcome.notices),
                webhooks_queued=new,
            )
        client = self._client
        if client is not None and tokens:
            client.ack(t for t in tokens if t)
        if not outcome:
            return
        if outcome.changes:
            self._active_alerts = len(engine.active_alerts)
        if new and self._dispatcher is not None:
            self._dispatcher.wake(w.subscription.id for w in webhooks)
        self._publish(outcome)
        self._write_events(outcome)

    def _publish(self, outcome: Outcome) -> None:
        client = self._client
        if client is None:
            return
        alert_rule = topic_rule(ServiceMessageKind.ALERT)
        for change in outcome.changes:
            alert = change.alert
            client.publish(
                alert_topic(alert.tenant, SERVICE_NAME),
                alert_message(alert).model_dump_json(exclude_none=True).encode(),
                alert_rule.qos,
                alert_rule.retain,
            )
        notice_rule = topic_rule(ServiceMessageKind.NOTICE)
        for notice in outcome.notices:
            client.publish(
                notice_topic(notice.tenant, SERVICE_NAME),
                notice_message(notice).model_dump_json(exclude_none=True).encode(),
                notice_rule.qos,
                notice_rule.retain,
            )

    def _write_events(self, outcome: Outcome) -> None:
        store = self._store
        if store is None:
            return
        events = [
            AlertEvent(
                tenant=c.alert.tenant,
                fingerprint=c.alert.fingerprint,
                rule=c.alert.rule,
                state=c.alert.state.value,
                severity=c.alert.severity.value,
                summary=c.alert.summary,
                ts_ns=to_ns(c.alert.ts),
                notified=c.notify,
                device=c.alert.subject.device,
                site=c.alert.subject.site,
                bus=c.alert.subject.bus,
                child=c.alert.subject.child,
            )
            for c in outcome.changes
            if not c.repeat
        ] + [
            AlertEvent(
                tenant=n.tenant,
                fingerprint=n.key[:64],
                rule=n.kind,
                state="notice",
                severity="info",
                summary=n.summary,
                ts_ns=to_ns(n.ts),
                notified=True,
                device=n.subject.device,
                site=n.subject.site,
                bus=n.subject.bus,
                child=n.subject.child,
            )
            for n in outcome.notices
        ]
        if not events:
            return
        try:
            store.write_alert_events(events)
            self.counters.add(events_written=len(events))
        except StoreError as exc:
            # Dashboards are a view: the alerts themselves are in SQL and on their way.
            self.counters.add(events_unwritten=len(events))
            logger.warning("could not write %d alert event(s) for dashboards: %s", len(events), exc)

    def _tick(self) -> None:
        engine = self._engine
        assert engine is not None
        self._commit(engine.tick(self._clock()), [])

    def _apply_api_changes(self) -> None:
        """Acknowledgements, silences and subscriptions the API wrote since the last look."""
        database, engine = self._database, self._engine
        assert database is not None
        assert engine is not None
        try:
            revision = database.revision()
        except DatabaseUnavailable as exc:
            self.counters.add(database_failures=1)
            logger.warning("alert database unavailable: %s", exc)
            return
        if revision == self._revision:
            return
        now = self._clock()
        self._subscriptions = database.subscriptions()
        engine.set_silences(database.silences(now=now))
        for action in database.pending_actions():
            if action.kind != "acknowledge":
                database.finish_action(action.id, False, f"unknown action {action.kind!r}", now)
                self.counters.refused("action")
                continue
            try:
                outcome = engine.acknowledge(
                    action.tenant, action.fingerprint, action.by, action.reason, now
                )
            except (UnknownAlert, ValueError) as exc:
                database.finish_action(action.id, False, str(exc), now)
                self.counters.refused("action")
                continue
            self._commit(outcome, [])
            database.finish_action(action.id, True, "acknowledged", now)
            self.counters.add(actions_applied=1)
        self._revision = revision

    def _reload(self, *, force: bool) -> None:
        watcher, engine = self._watcher, self._engine
        assert watcher is not None
        assert engine is not None
        report = watcher.poll(force=force)
        now = self._clock()
        for error in report.errors:
            self.counters.refused("rule_file")
            logger.error("rule file refused: %s", error)
        for rules in report.loaded:
            self._rebuild_bus(rules, now)
            self._commit(engine.set_rules(rules.file, now, bus=rules.bus), [])
            self.counters.add(rule_reloads=1)
            logger.info("rules of tenant %s (re)loaded from %s", rules.file.tenant, rules.path)
        for tenant in report.removed:
            self._commit(engine.remove_tenant(tenant, now), [])
            logger.info("rules of tenant %s removed (its file is gone)", tenant)
        self._refresh_sites()

    def _rebuild_bus(self, rules: LoadedRules, now: datetime) -> None:
        """A tenant's new bus rules rebuilt from its journal: runs in progress go on."""
        channel, database = rules.bus, self._database
        if channel is None or database is None:
            return
        since = now - timedelta(seconds=self._settings.bus_journal_retention_s)
        records = database.journal(rules.file.tenant, since)
        started = time.monotonic()
        rebuilt = channel.engine.rebuild(records)
        self.counters.add(journal_rebuilt=rebuilt.entries, journal_unreadable=rebuilt.unreadable)
        logger.info(
            "bus rules of tenant %s rebuilt from %d journal line(s) since %s in %.2fs "
            "(%d decision(s) already told, %d unreadable line(s), %d acknowledgement(s) refused)",
            rules.file.tenant,
            rebuilt.entries,
            since.isoformat(),
            time.monotonic() - started,
            rebuilt.notifications,
            rebuilt.unreadable,
            rebuilt.refused,
        )

    def _prune_journal(self) -> None:
        database = self._database
        assert database is not None
        before = self._clock() - timedelta(seconds=self._settings.bus_journal_retention_s)
        try:
            pruned = database.prune_journal(before)
        except DatabaseUnavailable as exc:
            logger.warning("could not prune the bus journal: %s", exc)
            return
        if pruned:
            logger.info("bus journal: %d line(s) before %s forgotten", pruned, before.isoformat())

    # -- sites ---------------------------------------------------------------------------

    def _refresh_sites(self) -> None:
        registry = self._registry
        if registry is None:
            return
        try:
            revision = registry.revision()
        except RegistryError:
            return
        if revision != self._registry_revision:
            self._registry_revision = revision
            self._sites.clear()

    def _site_of(self, tenant: str, device: str) -> str | None:
        key = (tenant, device)
        if key in self._sites:
            return self._sites[key]
        registry = self._registry
        site = None
        if registry is not None:
            try:
                found = registry.device(tenant, device)
            except RegistryError as exc:
                logger.warning("registry lookup of %s/%s failed: %s", tenant, device, exc)
                return None
            site = found.effective_site if found is not None else None
        if len(self._sites) >= _SITE_CACHE_LIMIT:
            self._sites.clear()
        self._sites[key] = site
        return site
