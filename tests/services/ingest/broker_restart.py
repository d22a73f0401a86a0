"""Broker SIGTERM under load, restarted on the same port and persistence: is every PUBACK stored?

A harness of real processes, used by ``test_broker_restart.py`` and runnable on
its own for many rounds with a timeline of whatever was lost::

    .venv/bin/python -m tests.services.ingest.broker_restart --rounds 20 --out /tmp/restart

A round: a fresh mosquitto (persistence on) and ``iotmon ingest`` as a
subprocess; a paho publisher that records which readings got a PUBACK and
when; an independent persistent QoS 1 subscriber (the witness of what the
broker accepted); then, ``stops`` times, SIGTERM to mosquitto while the
publisher runs and a restart with the same port and persistence folder.
Afterwards every PUBACKed reading must be in InfluxDB.

An ingest patched for an investigation may write ``<round>/ingest.trace`` (one
line per received PUBLISH: ``<time> <thread> recv_publish gen=.. mid=.. dup=..
seq=..``); the timeline then says which lost readings ingest received, else
``untraced``. (No setting asks for it: ingest refuses variables it does not read.)
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from iotmon_contract import telemetry_filter, telemetry_topic
from iotmon_storage import StoreSettings, TimeSeriesStore, open_store
from iotmon_storage.influx import InfluxStore, quote_identifier, quote_literal
from iotmon_tools.localstack import InfluxdProcess, find_program, free_port
from iotmon_tools.localstack.processes import port_open
from tests.services.ingest.support import wait_until

DEVICE = "env-0001"
METRIC = "temperature"
WARM_UP_METRIC = "humidity"
_CONNECTED = " connected to MQTT broker 127.0.0.1:"

# The local stack's broker settings (iotmon_tools.localstack.mosquitto), written
# here because rounds restart it themselves and may want its debug log.
BROKER_CONFIG = """\
user {user}
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data_dir}/
autosave_interval 30
max_inflight_messages 0
max_queued_messages 2000000
max_queued_bytes 0
max_packet_size 1048576
persistent_client_expiration 1d
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
{debug}
connection_messages true
"""


@dataclass(frozen=True, slots=True)
class RoundSettings:
    """One round's load and timing."""

    stops: int = 1
    """Broker SIGTERM/restart cycles in the round."""
    rate: float = 400.0
    """Readings per second from the publisher."""
    before_stop_s: float = 0.6
    """Publishing time before each SIGTERM once ingest is storing."""
    restart_delays_s: tuple[float, ...] = (0.0,)
    """How long the broker stays down after it exited, per stop (the last one repeats)."""
    after_resubscribe_s: float = 1.0
    """Publishing time after ingest is connected again."""
    settle_s: float = 40.0
    """Longest wait for ingest to store what was acknowledged."""
    stale_backlog: int = 0
    """Messages queued for a stale offline session first: a bigger database, a slower exit."""
    broker_debug: bool = False
    """mosquitto's debug log (every packet) in the round's folder."""
    ingest_env: dict[str, str] = field(default_factory=dict)
    """Extra IOTMON_INGEST_* settings."""


@dataclass(slots=True)
class Published:
    seq: int
    mid: int
    sent_at: float


@dataclass(frozen=True, slots=True)
class BrokerStop:
    """One SIGTERM/restart cycle, in wall-clock seconds."""

    sigterm_at: float
    exited_at: float
    restarted_at: float
    ingest_connected_at: float | None
    """When ingest logged its reconnection (it subscribes right after)."""


@dataclass(slots=True)
class RoundResult:
    folder: Path
    stops: list[BrokerStop]
    published: int
    acknowledged: list[int]
    stored: set[int]
    lost: list[int]
    acked_at: dict[int, float]
    """Sequence number → when its PUBACK arrived."""
    witnessed: dict[int, float]
    timeline: list[str] = field(default_factory=list)

    def acked_between(self, start: float, end: float) -> list[int]:
        return [seq for seq, at in self.acked_at.items() if start <= at <= end]

    def accepted_before_resubscribe(self) -> list[int]:
        """Readings the restarted broker PUBACKed before ingest could have resubscribed."""
        return [
            seq
            for stop in self.stops
            for seq in self.acked_between(
                stop.restarted_at, stop.ingest_connected_at or float("inf")
            )
        ]

    def summary(self) -> str:
        parts = [
            f"published={self.published} acked={len(self.acknowledged)} "
            f"stored={len(self.stored)} lost={len(self.lost)} "
            f"acked_before_ingest_resubscribed={len(self.accepted_before_resubscribe())}"
        ]
        for stop in self.stops:
            reconnect = (
                f"{stop.ingest_connected_at - stop.restarted_at:.2f}s"
                if stop.ingest_connected_at
                else "never"
            )
            after_sigterm = self.acked_between(stop.sigterm_at, stop.exited_at)
            parts.append(
                f"stop: broker exit {stop.exited_at - stop.sigterm_at:.2f}s, "
                f"old broker acked {len(after_sigterm)} after SIGTERM "
                f"({len(set(after_sigterm) & set(self.lost))} lost), "
                f"ingest reconnected {reconnect} after restart"
            )
        return "; ".join(parts)


class Broker:
    """mosquitto as a child process we SIGTERM ourselves (to time it) and restart in place."""

    def __init__(self, folder: Path, *, debug: bool) -> None:
        self.folder = folder
        self.port = free_port()
        self._debug = debug
        self.log = folder / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        program = find_program("mosquitto")
        assert program is not None, "mosquitto is not installed"
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.folder / "mosquitto.conf"
        config.write_text(
            BROKER_CONFIG.format(
                user=getpass.getuser(),
                port=self.port,
                data_dir=data,
                debug="log_type debug" if self._debug else "",
            )
        )
        with self.log.open("ab") as log:
            log.write(f"=== start {time.time():.6f}\n".encode())
            self._process = subprocess.Popen(
                [program, "-c", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", self.port):
            assert self._process.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "mosquitto did not open its port"
            time.sleep(0.01)

    def sigterm(self) -> float:
        assert self._process is not None
        at = time.time()
        self._process.send_signal(signal.SIGTERM)
        return at

    def wait(self) -> float:
        assert self._process is not None
        self._process.wait(60)
        return time.time()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)


class Publisher:
    """QoS 1 at a steady rate through broker restarts; which readings got a PUBACK, and when."""

    def __init__(self, port: int, tenant: str, base_us: int) -> None:
        self._topic = telemetry_topic(tenant, DEVICE)
        self._base_us = base_us
        self.sent: list[Published] = []
        self.acks: dict[int, float] = {}
        """mid → first successful PUBACK (mids are unique: a round stays under 65,535)."""
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{tenant}", protocol=paho.MQTTv5
        )
        self._client.max_inflight_messages_set(1000)
        # Retries every second, like a device that was not down for long; paho
        # keeps unacknowledged QoS 1 messages and resends them on reconnect.
        self._client.reconnect_delay_set(1, 1)
        self._client.on_publish = self._on_publish
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _on_publish(
        self, _c: paho.Client, _u: Any, mid: int, reason: ReasonCode, _p: Properties
    ) -> None:
        # paho's network thread with its message lock held: a dict store only.
        if not reason.is_failure:
            self.acks.setdefault(mid, time.time())

    def payload(self, seq: int) -> bytes:
        body = {"metric": METRIC, "value": float(seq), "ts": _iso(self._base_us + seq), "seq": seq}
        return json.dumps(body, separators=(",", ":")).encode()

    def warm_up(self, store: TimeSeriesStore, tenant: str) -> bool:
        """Publish a reading of another metric; True once one is stored."""
        body = {"metric": WARM_UP_METRIC, "value": 1.0, "ts": _iso(time.time_ns() // 1000)}
        self._client.publish(self._topic, json.dumps(body).encode(), qos=1)
        return store.count_readings(tenant, WARM_UP_METRIC) > 0

    def start(self, rate: float) -> None:
        self._thread = threading.Thread(target=self._run, args=(rate,), daemon=True)
        self._thread.start()

    def _run(self, rate: float) -> None:
        started = time.monotonic()
        seq = 0
        while not self._stop.is_set() and seq < 65_000:
            delay = started + seq / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            info = self._client.publish(self._topic, self.payload(seq), qos=1)
            self.sent.append(Published(seq, info.mid, time.time()))
            seq += 1

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        wait_until(lambda: all(item.mid in self.acks for item in self.sent), timeout, 0.1)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def acked_at(self) -> dict[int, float]:
        return {item.seq: self.acks[item.mid] for item in self.sent if item.mid in self.acks}


class Witness:
    """An independent persistent QoS 1 subscriber: what the broker delivered to anyone."""

    def __init__(self, port: int, tenant: str) -> None:
        self.seen: dict[int, float] = {}
        self._subscribed = threading.Event()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"witness-{tenant}", protocol=paho.MQTTv5
        )
        self._client.reconnect_delay_set(1, 1)
        self._client.on_connect = lambda c, *_: c.subscribe(telemetry_filter(tenant), qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self._client.connect("127.0.0.1", port, clean_start=False, properties=properties)
        self._client.loop_start()
        assert self._subscribed.wait(10), "witness did not subscribe"

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        seq = json.loads(message.payload).get("seq")  # warm-up readings have none
        if isinstance(seq, int):
            self.seen.setdefault(seq, time.time())

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def fill_stale_session(port: int, messages: int) -> None:
    """An offline persistent session with ``messages`` queued: mosquitto saves them on exit."""
    topic = "stale/backlog"
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    subscriber = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="stale-session", protocol=paho.MQTTv5
    )
    subscriber.connect("127.0.0.1", port, clean_start=False, properties=properties)
    subscriber.subscribe(topic, qos=1)
    subscriber.loop_start()
    time.sleep(0.3)
    subscriber.disconnect()
    subscriber.loop_stop()
    publisher = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    publisher.max_inflight_messages_set(0)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    for start in range(0, messages, 20_000):
        # Packet ids are 16 bits: a chunk's PUBACKs come back before the next chunk.
        chunk = min(20_000, messages - start)
        infos = [publisher.publish(topic, b"x" * 100, qos=1) for _ in range(chunk)]
        for info in infos:
            info.wait_for_publish(60)
    publisher.disconnect()
    publisher.loop_stop()


def _iso(microseconds: int) -> str:
    seconds, micro = divmod(microseconds, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micro:06d}+00:00"


def stored_sequence(store: TimeSeriesStore, tenant: str) -> set[int]:
    assert isinstance(store, InfluxStore)
    statement = (
        f"SELECT value FROM {quote_identifier(METRIC)} "  # noqa: S608 - InfluxQL, quoted
        f"WHERE tenant = {quote_literal(tenant)} AND device = {quote_literal(DEVICE)}"
    )
    return {int(value) for series in store.query(statement) for _ts, value in series["values"]}


def start_ingest(
    port: int, influx_url: str, database: str, folder: Path, settings: RoundSettings
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "IOTMON_INGEST_MQTT__HOST": "127.0.0.1",
        # A free port: other ingests (a test beside this one) may hold the default.
        "IOTMON_INGEST_METRICS__PORT": "0",
        "IOTMON_INGEST_MQTT__PORT": str(port),
        "IOTMON_INGEST_MQTT__CLIENT_ID": "restart-test-ingest",
        "IOTMON_INGEST_STORE__URL": influx_url,
        "IOTMON_INGEST_STORE__DATABASE": database,
        "IOTMON_INGEST_SPOOL_DIR": str(folder / "spool"),
        "IOTMON_INGEST_FLUSH_INTERVAL_S": "0.05",
        "IOTMON_INGEST_STATS_INTERVAL_S": "5",
        **settings.ingest_env,
    }
    code = "from iotmon_tools.cli.main import run; run()"
    with (folder / "ingest.log").open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-c", code, "ingest"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def ingest_connections(log: Path) -> list[float]:
    """When ingest logged each connection (the log's leading ISO 8601 UTC timestamps)."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        if _CONNECTED in line:
            stamp = datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))
            times.append(stamp.timestamp())
    return times


def _stop_and_restart(broker: Broker, ingest_log: Path, delay: float) -> BrokerStop:
    """SIGTERM, wait for the exit, stay down ``delay`` seconds, restart, wait for ingest."""
    connections = len(ingest_connections(ingest_log))
    sigterm_at = broker.sigterm()
    exited_at = broker.wait()
    time.sleep(delay)
    broker.start()
    restarted_at = time.time()

    def reconnected() -> bool:
        return len(ingest_connections(ingest_log)) > connections

    connected_at = (
        ingest_connections(ingest_log)[connections] if wait_until(reconnected, 60, 0.05) else None
    )
    return BrokerStop(sigterm_at, exited_at, restarted_at, connected_at)


def run_round(influx_url: str, folder: Path, tenant: str, settings: RoundSettings) -> RoundResult:
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(StoreSettings(url=influx_url, database=f"restart_{tenant}"))
    store.ensure_schema()
    broker = Broker(folder, debug=settings.broker_debug)
    broker.start()
    if settings.stale_backlog:
        fill_stale_session(broker.port, settings.stale_backlog)
    ingest = start_ingest(broker.port, influx_url, f"restart_{tenant}", folder, settings)
    ingest_log = folder / "ingest.log"
    publisher: Publisher | None = None
    witness: Witness | None = None
    try:
        started = wait_until(lambda: len(ingest_connections(ingest_log)) == 1, 30)
        assert started, ingest_log.read_text()[-3000:]
        witness = Witness(broker.port, tenant)
        publisher = Publisher(broker.port, tenant, time.time_ns() // 1000 - 600_000_000)
        # Ingest does not log its SUBACK: it is subscribed once a warm-up reading is stored.
        storing = wait_until(lambda: publisher.warm_up(store, tenant), 20, 0.3)
        assert storing, ingest_log.read_text()[-3000:]
        publisher.start(settings.rate)
        stops = []
        delays = settings.restart_delays_s
        for index in range(settings.stops):
            time.sleep(settings.before_stop_s)
            stops.append(_stop_and_restart(broker, ingest_log, delays[min(index, len(delays) - 1)]))
            time.sleep(settings.after_resubscribe_s)
        publisher.stop()
        acked_at = publisher.acked_at()
        wait_until(
            lambda: acked_at.keys() <= stored_sequence(store, tenant), settings.settle_s, 0.25
        )
        stored = stored_sequence(store, tenant)
        result = RoundResult(
            folder=folder,
            stops=stops,
            published=len(publisher.sent),
            acknowledged=sorted(acked_at),
            stored=stored,
            lost=sorted(acked_at.keys() - stored),
            acked_at=acked_at,
            witnessed=dict(witness.seen),
        )
        result.timeline = _timeline(result, publisher)
        _save(result, publisher)
        return result
    finally:
        if publisher is not None:
            publisher.close()
        if witness is not None:
            witness.close()
        ingest.send_signal(signal.SIGTERM)
        try:
            ingest.wait(30)
        except subprocess.TimeoutExpired:
            ingest.kill()
            ingest.wait(10)
        broker.stop()
        store.close()


def _save(result: RoundResult, publisher: Publisher) -> None:
    """The round's raw record, for analysis after the fact."""
    record = {
        "stops": [
            {
                "sigterm_at": stop.sigterm_at,
                "exited_at": stop.exited_at,
                "restarted_at": stop.restarted_at,
                "ingest_connected_at": stop.ingest_connected_at,
            }
            for stop in result.stops
        ],
        "sent": [[item.seq, item.mid, item.sent_at] for item in publisher.sent],
        "acked_at": result.acked_at,
        "witnessed": result.witnessed,
        "lost": result.lost,
    }
    (result.folder / "round.json").write_text(json.dumps(record))


def _ingest_trace(folder: Path) -> dict[int, list[str]]:
    """What a trace-patched ingest logged per sequence number (empty without the patch)."""
    path = folder / "ingest.trace"
    received: dict[int, list[str]] = {}
    if not path.exists():
        return received
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[2] == "recv_publish":
            fields = dict(part.split("=", 1) for part in parts[3:])
            if fields["seq"].isdigit():
                received.setdefault(int(fields["seq"]), []).append(
                    f"gen{fields['gen']}/m{fields['mid']}/d{fields['dup']}@{parts[0]}"
                )
    return received


def _timeline(result: RoundResult, publisher: Publisher) -> list[str]:
    """One line per lost reading, times relative to the SIGTERM before it."""
    by_seq = {item.seq: item for item in publisher.sent}
    received = _ingest_trace(result.folder)
    lines = []
    for seq in result.lost:
        item = by_seq[seq]
        stop = max(
            (s for s in result.stops if s.sigterm_at <= result.acked_at[seq]),
            key=lambda s: s.sigterm_at,
            default=result.stops[0],
        )
        zero = stop.sigterm_at
        witnessed = result.witnessed.get(seq)
        ingest_at = stop.ingest_connected_at
        lines.append(
            f"seq={seq} pub_mid={item.mid} published={item.sent_at - zero:+.3f}s "
            f"puback={result.acked_at[seq] - zero:+.3f}s "
            f"witness={f'{witnessed - zero:+.3f}s' if witnessed else 'no'} "
            f"ingest_received={received.get(seq, 'no') if received else 'untraced'} "
            f"[broker exited {stop.exited_at - zero:+.3f}s, restarted "
            f"{stop.restarted_at - zero:+.3f}s, ingest reconnected "
            f"{f'{ingest_at - zero:+.3f}s' if ingest_at else 'never'}]"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--stops", type=int, default=1, help="broker restarts per round")
    parser.add_argument("--out", type=Path, default=Path("/tmp/broker-restart"))
    parser.add_argument("--rate", type=float, default=400.0)
    parser.add_argument("--before-stop", type=float, default=0.6)
    parser.add_argument(
        "--restart-delay", type=float, action="append", help="seconds down, per stop"
    )
    parser.add_argument("--stale-backlog", type=int, default=0)
    parser.add_argument("--broker-debug", action="store_true")
    parser.add_argument("--ingest-env", action="append", default=[], help="NAME=VALUE")
    args = parser.parse_args()
    settings = RoundSettings(
        stops=args.stops,
        rate=args.rate,
        before_stop_s=args.before_stop,
        restart_delays_s=tuple(args.restart_delay or [0.0]),
        stale_backlog=args.stale_backlog,
        broker_debug=args.broker_debug,
        ingest_env=dict(item.split("=", 1) for item in args.ingest_env),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    influxd = InfluxdProcess(args.out / "influxd")
    influxd.start()
    failures = 0
    try:
        for index in range(args.rounds):
            tenant = f"r{os.getpid()}x{index}"
            result = run_round(influxd.url, args.out / f"round-{index:03d}", tenant, settings)
            failures += bool(result.lost)
            print(f"round {index}: {result.summary()}", flush=True)  # noqa: T201
            for line in result.timeline[:20]:
                print(f"  lost {line}", flush=True)  # noqa: T201
            if len(result.timeline) > 20:
                print(f"  ... {len(result.timeline) - 20} more", flush=True)  # noqa: T201
    finally:
        influxd.stop()
    print(f"{failures}/{args.rounds} rounds lost acknowledged readings", flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
