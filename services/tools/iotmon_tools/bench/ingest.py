"""``iotmon bench ingest``: the broker's own ceiling, then ingest end to end, in one run.

(a) C clients: ``mosquitto_pub -l -q 1`` publishers and one ``mosquitto_sub -q 1``
    counting; msg/s from the first to the last message received.
(b) ingest: the same publishers, ``iotmon ingest`` as a separate process, timed
    from the first publish until InfluxDB holds every reading; single readings
    (msg/s) and gateway batches (points/s), counts and value sums verified.
(a') InfluxDB alone: the gateway batches' points, pre-encoded as line protocol,
    posted in 5,000-point requests by two concurrent writers; points/s until the
    last write is acknowledged.
(c) the ratios of (b) to (a) for single readings and to (a') for batches; ingest's CPU
    per message beside mosquitto's in the same step; ingest's peak RSS per step.
(d) with ``--soak``: the batches published round after round for ten minutes (each
    round with its own timestamps) into ingest with the most workers asked for, paced
    so that at most two rounds are outstanding; its RSS sampled throughout.
"""

from __future__ import annotations

import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import httpx
from pydantic import SecretStr
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from iotmon_contract import TelemetryValidator, ValidatedReading, telemetry_filter, telemetry_topic
from iotmon_registry import Registry, RegistrySettings
from iotmon_storage import StoreSettings, open_store
from iotmon_storage.base import MEASUREMENT_SEEN
from iotmon_storage.influx import InfluxStore, quote_identifier, quote_literal
from iotmon_storage.line_protocol import encode_readings
from iotmon_tools.bench.machine import (
    Machine,
    find_pid,
    machine_info,
    peak_rss_bytes,
    process_cpu_seconds,
    reset_peak_rss,
    rss_bytes,
)
from iotmon_tools.bench.payloads import PayloadSet, batch_children, write_batches, write_singles
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess, find_program

_POLL_S = 0.1
# The soak's progress query sums a growing number of _device_seen points.
_SOAK_POLL_S = 0.25
_FULL_COUNT_EVERY_S = 2.0
_INFLUX_BATCH_POINTS = 5000
_INFLUX_WRITERS = 2


@dataclass(frozen=True, slots=True)
class BenchOptions:
    messages: int = 200_000
    publishers: int = 4
    workers: tuple[int, ...] = (1, 2)
    batch_messages: int = 300
    batch_readings: int = 2000
    ingest_batch_size: int = 5000
    publisher_inflight: int = 1000
    timeout_s: float = 300.0
    state_dir: Path | None = None
    soak_s: float = 0.0
    """Length of the soak (d); 0 leaves it out."""


@dataclass(slots=True)
class StepResult:
    name: str
    items: int
    unit: str
    seconds: float
    verified: bool
    detail: str = ""
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    peak_rss: int = 0
    """Ingest's peak resident memory in the step, bytes (each process's peak, summed)."""
    workers: int = 0

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class BenchResult:
    started: datetime
    machine: Machine
    options: BenchOptions
    versions: dict[str, str]
    ceiling: StepResult | None = None
    store_ceiling: StepResult | None = None
    steps: list[StepResult] = field(default_factory=list)
    soak: SoakResult | None = None
    load: str = ""
    """The machine's 1-minute load average at the start and the end (it is shared)."""

    @property
    def nothing_lost(self) -> bool:
        measured = [self.ceiling, self.store_ceiling, *self.steps]
        if self.soak is not None:
            measured.append(self.soak.step)
        return all(step.verified for step in measured if step is not None)


class RssSample(NamedTuple):
    seconds: float
    """Since the soak started."""
    rss: int
    """Ingest's resident memory then, bytes (its processes summed)."""


@dataclass(slots=True)
class SoakResult:
    step: StepResult
    rounds: int
    samples: list[RssSample]

    def peak_between(self, start_s: float, end_s: float) -> int:
        inside = [s.rss for s in self.samples if start_s <= s.seconds < end_s]
        return max(inside, default=0)

    @property
    def bounded(self) -> bool:
        """The second half's highest RSS sample within 10 % (and 16 MiB) of the first half's
        after its first minute (start-up and the first batches' allocations excluded)."""
        half = self.step.seconds / 2
        first = self.peak_between(min(60.0, half / 2), half)
        second = self.peak_between(half, math.inf)
        return second <= first * 1.10 + 16 * 2**20


class BenchError(RuntimeError):
    pass


def _program(name: str) -> str:
    found = find_program(name)
    if found is None:
        raise BenchError(f"{name} not found: apt-get install mosquitto-clients mosquitto influxdb")
    return found


def _version(argv: list[str]) -> str:
    try:
        output = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    text = (output.stdout or output.stderr).strip().splitlines()
    return text[0] if text else "unknown"


class _Bench:
    def __init__(self, options: BenchOptions, console: Console, state: Path) -> None:
        self._options = options
        self._console = console
        self._state = state
        self._registry = RegistrySettings(url=SecretStr(f"sqlite:///{state / 'registry.db'}"))
        self._run_id = uuid.uuid4().hex[:6]
        self._pub = _program("mosquitto_pub")
        self._sub = _program("mosquitto_sub")
        self.broker = MosquittoProcess(state / "mosquitto")
        self.influxd = InfluxdProcess(state / "influxd")

    # -- helpers ---------------------------------------------------------------

    def _cpu(self) -> dict[str, float]:
        found = {}
        for name, config in (
            ("mosquitto", self._state / "mosquitto" / "mosquitto.conf"),
            ("influxd", self._state / "influxd" / "influxdb.conf"),
        ):
            pid = find_pid(str(config))
            if pid is not None:
                found[name] = process_cpu_seconds(pid)
        return found

    def _connection_args(self) -> list[str]:
        """What every C client here is given: our broker, MQTT 5, QoS 1."""
        return ["-h", self.broker.host, "-p", str(self.broker.port), "-V", "mqttv5", "-q", "1"]

    def _publishers(
        self, files: list[Path], tenant: str, device_prefix: str
    ) -> list[subprocess.Popen[bytes]]:
        processes = []
        for index, path in enumerate(files):
            with path.open("rb") as source:
                processes.append(
                    subprocess.Popen(
                        [
                            self._pub,
                            *self._connection_args(),
                            "-M",
                            str(self._options.publisher_inflight),
                            "-t",
                            telemetry_topic(tenant, f"{device_prefix}{index}"),
                            "-l",
                        ],
                        stdin=source,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                )
        return processes

    @staticmethod
    def _wait_publishers(processes: list[subprocess.Popen[bytes]], timeout: float) -> None:
        for process in processes:
            _, error = process.communicate(timeout=timeout)
            if process.returncode != 0:
                raise BenchError(f"mosquitto_pub failed: {error.decode(errors='replace')[:500]}")

    def _publish_one(self, topic: str, payload: str, *, retain: bool = False) -> None:
        argv = [self._pub, "-h", self.broker.host, "-p", str(self.broker.port), "-q", "1"]
        argv += ["-t", topic, "-m", payload] + (["-r"] if retain else [])
        subprocess.run(argv, check=True, timeout=10, capture_output=True)

    # -- (a) the C clients' ceiling ------------------------------------------------

    def c_clients(self, payloads: PayloadSet, progress: Progress) -> StepResult:
        tenant = f"bench-c-{self._run_id}"
        probe = f"bench/probe/{self._run_id}"
        # A retained probe tells us the subscriber is subscribed (it has no ready signal).
        self._publish_one(probe, "ready", retain=True)
        output = self._state / "c-clients.out"
        total = payloads.messages
        task = progress.add_task("(a) C clients: mosquitto_pub → mosquitto_sub", total=total)
        # The subscriber's own CPU: the only child reaped between these two readings.
        children_before = _children_cpu()
        with output.open("wb") as sink:
            subscriber = subprocess.Popen(
                [
                    self._sub,
                    *self._connection_args(),
                    "-C",
                    str(total + 1),
                    "-F",
                    "%t %U",
                    "-t",
                    probe,
                    "-t",
                    telemetry_filter(tenant),
                ],
                stdout=sink,
                stderr=subprocess.DEVNULL,
            )
        try:
            _wait(lambda: output.stat().st_size > 0, 10, "mosquitto_sub did not subscribe")
            cpu_before = self._cpu()
            started = time.time()
            publishers = self._publishers(payloads.files, tenant, "dev-")
            deadline = time.monotonic() + self._options.timeout_s
            while subscriber.poll() is None:
                if time.monotonic() > deadline:
                    raise BenchError("mosquitto_sub did not receive every message in time")
                size = output.stat().st_size
                # ~40 bytes a line: progress only, the count comes from the file.
                progress.update(task, completed=min(total, size // 40))
                time.sleep(_POLL_S)
            subscriber_cpu = _children_cpu() - children_before
            self._wait_publishers(publishers, 30)
            cpu_after = self._cpu()
        finally:
            if subscriber.poll() is None:
                subscriber.kill()
                subscriber.wait()
        times = [
            float(line.rsplit(" ", 1)[1])
            for line in output.read_text().splitlines()
            if not line.startswith(probe)
        ]
        progress.update(task, completed=total)
        seconds = times[-1] - times[0] if len(times) > 1 else 0.0
        return StepResult(
            name="(a) C clients, single readings",
            items=len(times),
            unit="msg",
            seconds=seconds,
            verified=len(times) == total,
            detail=f"first→last received; publish start→last {times[-1] - started:.2f}s",
            cpu_seconds={
                **{k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after},
                "mosquitto_sub": subscriber_cpu,
            },
        )

    # -- (a') InfluxDB's own ceiling ----------------------------------------------

    def influx_ceiling(self, payloads: PayloadSet, progress: Progress) -> StepResult:
        """The batches' points straight into InfluxDB: what ingest's batched path aims at."""
        tenant = f"bench-lp-{self._run_id}"
        validator = TelemetryValidator(max_age=timedelta(days=3650))
        readings: list[ValidatedReading] = []
        for index, path in enumerate(payloads.files):
            topic = telemetry_topic(tenant, f"gw-{index}")
            for line in path.read_bytes().splitlines():
                readings.extend(validator.validate(topic, line))
        seen_at = time.time_ns()
        bodies = [
            encode_readings(readings[start : start + _INFLUX_BATCH_POINTS], seen_at).encode()
            for start in range(0, len(readings), _INFLUX_BATCH_POINTS)
        ]
        database = f"bench_{self._run_id}_lp"
        store = open_store(StoreSettings(url=self.influxd.url, database=database))
        assert isinstance(store, InfluxStore)
        store.ensure_schema()
        task = progress.add_task("(a') InfluxDB alone: line protocol, 5,000-point writes")
        progress.update(task, total=len(readings))
        failures: list[str] = []
        written = [0]
        lock = threading.Lock()

        def writer(share: list[bytes]) -> None:
            with httpx.Client(base_url=self.influxd.url, timeout=60) as client:
                for body in share:
                    response = client.post(
                        "/write", params={"db": database, "precision": "ns"}, content=body
                    )
                    if response.status_code != 204:
                        failures.append(f"{response.status_code}: {response.text[:200]}")
                        return
                    with lock:
                        written[0] += body.count(b"\n") + 1
                        progress.update(task, completed=min(written[0], len(readings)))

        threads = [
            threading.Thread(target=writer, args=(bodies[i::_INFLUX_WRITERS],))
            for i in range(_INFLUX_WRITERS)
        ]
        cpu_before = self._cpu()
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        cpu_after = self._cpu()
        try:
            stored = store.count_readings(tenant, "power_w")
            stored_sum = _sum(store, tenant, "power_w")
        finally:
            store.close()
        if failures:
            raise BenchError(f"InfluxDB refused a line-protocol write: {failures[0]}")
        progress.update(task, completed=len(readings))
        sums_match = math.isclose(stored_sum, payloads.value_sum, rel_tol=1e-9)
        return StepResult(
            name=f"(a') InfluxDB alone, {_INFLUX_BATCH_POINTS:,}-point writes",
            items=len(readings),
            unit="points",
            seconds=seconds,
            verified=stored == payloads.readings and sums_match,
            detail=f"{_INFLUX_WRITERS} writers, bodies pre-encoded; stored {stored}",
            cpu_seconds={k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after},
        )

    # -- (b) ingest --------------------------------------------------------------

    @contextmanager
    def ingest(self, workers: int, database: str) -> Iterator[subprocess.Popen[bytes]]:
        log = self._state / f"ingest-w{workers}.log"
        env = {
            **os.environ,
            "IOTMON_INGEST_MQTT__HOST": self.broker.host,
            "IOTMON_INGEST_MQTT__PORT": str(self.broker.port),
            "IOTMON_INGEST_MQTT__CLIENT_ID": f"bench-ingest-{self._run_id}-w{workers}",
            "IOTMON_INGEST_MQTT__SHARE_GROUP": f"bench-{self._run_id}-w{workers}",
            "IOTMON_INGEST_STORE__URL": self.influxd.url,
            "IOTMON_INGEST_STORE__DATABASE": database,
            "IOTMON_INGEST_SPOOL_DIR": str(self._state / "spool"),
            "IOTMON_INGEST_REGISTRY__URL": self._registry.url.get_secret_value(),
            "IOTMON_INGEST_BATCH_SIZE": str(self._options.ingest_batch_size),
            "IOTMON_INGEST_STATS_INTERVAL_S": "5",
            # Free ports: a benchmark must not depend on (or take) ingest's default port.
            "IOTMON_INGEST_METRICS__PORT": "0",
        }
        code = "from iotmon_tools.cli.main import run; run()"
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-c", code, "ingest", "--workers", str(workers)],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def ingest_step(
        self,
        name: str,
        ingest: subprocess.Popen[bytes],
        store: InfluxStore,
        payloads: PayloadSet,
        metric: str,
        unit: str,
        progress: Progress,
        workers: int,
    ) -> StepResult:
        tenant = f"bench-{self._run_id}-{uuid.uuid4().hex[:4]}"
        expected = payloads.readings
        task = progress.add_task(name, total=expected)
        reset_peak_rss(ingest.pid)
        cpu_before = self._cpu()
        ingest_before = process_cpu_seconds(ingest.pid, with_children=True)
        started = time.perf_counter()
        if unit == "points":
            # Gateway batches name child devices: ingest stores them only for their
            # registered gateway (registered here, found by ingest on its first miss).
            with Registry(self._registry) as registry:
                for index in range(len(payloads.files)):
                    registry.import_gateway(tenant, f"gw-{index}", batch_children(index))
        publishers = self._publishers(payloads.files, tenant, "gw-" if unit == "points" else "dev-")
        deadline = time.monotonic() + self._options.timeout_s
        next_full_count = time.monotonic() + _FULL_COUNT_EVERY_S
        stored = 0
        seconds = 0.0
        while stored < expected:
            if ingest.poll() is not None:
                raise BenchError(f"ingest exited with {ingest.returncode}; see its log")
            if time.monotonic() > deadline:
                break
            time.sleep(_POLL_S)
            # Polling count("value") every 100 ms scans every stored point each time
            # and took a core from ingest; the few _device_seen points are cheap.
            # The exact count confirms it (and is the fallback should the two disagree).
            written = _seen_readings(store, tenant)
            progress.update(task, completed=min(written, expected))
            if written >= expected or time.monotonic() >= next_full_count:
                # _device_seen points travel in the same write as their readings: the
                # moment they add up is when every reading was stored. The full count
                # that confirms it (a few hundred ms) is not ingest's time.
                seconds = time.perf_counter() - started
                stored = store.count_readings(tenant, metric)
                next_full_count = time.monotonic() + _FULL_COUNT_EVERY_S
        if stored < expected:
            seconds = time.perf_counter() - started
        cpu_after = self._cpu()
        ingest_cpu = process_cpu_seconds(ingest.pid, with_children=True) - ingest_before
        peak = peak_rss_bytes(ingest.pid)
        self._wait_publishers(publishers, 30)
        # Nothing extra may arrive late either: count again after the publishers ended.
        time.sleep(0.5)
        stored = store.count_readings(tenant, metric)
        stored_sum = _sum(store, tenant, metric)
        sums_match = math.isclose(stored_sum, payloads.value_sum, rel_tol=1e-9)
        verified = stored == expected and sums_match
        cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
        cpu["ingest"] = ingest_cpu
        return StepResult(
            name=name,
            items=payloads.messages if unit == "msg" else expected,
            unit=unit,
            seconds=seconds,
            verified=verified,
            detail=f"stored {stored}/{expected} readings, value sum "
            f"{'matches' if sums_match else 'DIFFERS'}",
            cpu_seconds=cpu,
            peak_rss=peak,
            workers=workers,
        )

    # -- (d) the soak -------------------------------------------------------------

    def soak(
        self,
        ingest: subprocess.Popen[bytes],
        store: InfluxStore,
        payloads: PayloadSet,
        second: datetime,
        workers: int,
        progress: Progress,
    ) -> SoakResult:
        """Round after round of the batches for ``soak_s``, ingest's RSS sampled each second.

        Every round's readings share one wall-clock second (``second`` in the files),
        rewritten per round to an earlier second: the same fleet, never the same point.
        Round r starts once round r - 2 is stored, so the backlog stays within two rounds
        and the rate is ingest's (and InfluxDB's), not the publishers'.
        """
        tenant = f"soak-{self._run_id}"
        with Registry(self._registry) as registry:
            for index in range(len(payloads.files)):
                registry.import_gateway(tenant, f"gw-{index}", batch_children(index))
        originals = [path.read_bytes() for path in payloads.files]
        marker = f'"ts":"{second:%Y-%m-%dT%H:%M:%S}'.encode()
        if any(
            original.count(marker) != payloads.readings // len(originals) for original in originals
        ):
            raise BenchError("the soak's batches must all lie within one second")
        folder = self._state / "soak"
        folder.mkdir(exist_ok=True)
        duration = self._options.soak_s
        task = progress.add_task(f"(d) soak, {workers} worker(s)", total=duration)
        reset_peak_rss(ingest.pid)
        cpu_before = self._cpu()
        ingest_before = process_cpu_seconds(ingest.pid, with_children=True)
        started = time.perf_counter()
        samples: list[RssSample] = []
        next_sample = 0.0
        published = 0
        rounds: list[list[subprocess.Popen[bytes]]] = []
        written = 0

        def elapsed() -> float:
            return time.perf_counter() - started

        def sample() -> None:
            nonlocal next_sample, written
            if ingest.poll() is not None:
                raise BenchError(f"ingest exited with {ingest.returncode}; see its log")
            if elapsed() >= next_sample:
                samples.append(RssSample(elapsed(), rss_bytes(ingest.pid)))
                next_sample += 1.0
            written = _seen_readings(store, tenant)
            progress.update(task, completed=min(elapsed(), duration))

        while elapsed() < duration:
            # At most two rounds outstanding (one publishing, one being stored).
            while written < published - payloads.readings:
                time.sleep(_SOAK_POLL_S)
                sample()
            round_second = second - timedelta(seconds=len(rounds) + 1)
            replacement = f'"ts":"{round_second:%Y-%m-%dT%H:%M:%S}'.encode()
            files = []
            for index, original in enumerate(originals):
                # Two sets of files: the previous round's publishers still read theirs.
                path = folder / f"round-{len(rounds) % 2}-{index}.txt"
                path.write_bytes(original.replace(marker, replacement))
                files.append(path)
            if rounds:
                self._wait_publishers(rounds[-1], self._options.timeout_s)
            rounds.append(self._publishers(files, tenant, "gw-"))
            published += payloads.readings
            sample()
        self._wait_publishers(rounds[-1], self._options.timeout_s)
        deadline = time.monotonic() + self._options.timeout_s
        while written < published and time.monotonic() < deadline:
            time.sleep(_SOAK_POLL_S)
            sample()
        seconds = elapsed()
        first = second - timedelta(seconds=len(rounds))
        stored, stored_sum = _count_and_sum(store, tenant, "power_w", first, second)
        # A redelivered message (a PUBACK lost under load) adds _device_seen points
        # twice but overwrites its readings: the count has the last word.
        while stored < published and time.monotonic() < deadline:
            time.sleep(_FULL_COUNT_EVERY_S)
            stored, stored_sum = _count_and_sum(store, tenant, "power_w", first, second)
            seconds = elapsed()
        cpu_after = self._cpu()
        ingest_cpu = process_cpu_seconds(ingest.pid, with_children=True) - ingest_before
        peak = peak_rss_bytes(ingest.pid)
        samples.append(RssSample(seconds, rss_bytes(ingest.pid)))
        progress.update(task, completed=duration)
        time.sleep(0.5)
        stored, stored_sum = _count_and_sum(store, tenant, "power_w", first, second)
        expected_sum = payloads.value_sum * len(rounds)
        sums_match = math.isclose(stored_sum, expected_sum, rel_tol=1e-9)
        cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
        cpu["ingest"] = ingest_cpu
        step = StepResult(
            name=f"(d) soak, {workers} worker(s), {len(rounds)} rounds of "
            f"{payloads.messages} batches",
            items=published,
            unit="points",
            seconds=seconds,
            verified=stored == published and sums_match,
            detail=f"stored {stored}/{published} readings (_device_seen sum {written}), "
            f"value sum {'matches' if sums_match else 'DIFFERS'}",
            cpu_seconds=cpu,
            peak_rss=peak,
            workers=workers,
        )
        return SoakResult(step=step, rounds=len(rounds), samples=samples)

    def warm_up(self, ingest: subprocess.Popen[bytes], store: InfluxStore) -> None:
        """Publish until ingest stores one reading: its subscriptions and session exist."""
        tenant = f"warmup-{self._run_id}"
        topic = telemetry_topic(tenant, "dev-0")
        deadline = time.monotonic() + 30
        while store.count_readings(tenant, "temperature") == 0:
            if ingest.poll() is not None or time.monotonic() > deadline:
                raise BenchError("ingest did not start storing readings")
            now = datetime.now(UTC).isoformat()
            self._publish_one(topic, f'{{"metric":"temperature","value":1,"ts":"{now}"}}')
            time.sleep(0.3)
        # Let every worker of a multi-process ingest finish subscribing.
        time.sleep(1.0)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _seen_readings(store: InfluxStore, tenant: str) -> int:
    """Readings ingest has written for a tenant, from its per-batch ``_device_seen`` points."""
    series = store.query(
        f'SELECT sum("readings") FROM {MEASUREMENT_SEEN} '  # noqa: S608 - InfluxQL, quoted
        f"WHERE tenant = {quote_literal(tenant)}"
    )
    return int(series[0]["values"][0][1]) if series else 0


def _sum(store: InfluxStore, tenant: str, metric: str) -> float:
    series = store.query(
        f'SELECT sum("value") FROM {quote_identifier(metric)} '  # noqa: S608 - InfluxQL, quoted
        f"WHERE tenant = {quote_literal(tenant)}"
    )
    return float(series[0]["values"][0][1]) if series else 0.0


def _count_and_sum(
    store: InfluxStore, tenant: str, metric: str, start: datetime, end: datetime
) -> tuple[int, float]:
    """Count and value sum over [start, end), ten seconds (rounds) per query: one query
    over a whole soak's points outlasts the store's 30-second timeout."""
    count, total = 0, 0.0
    at = int(start.timestamp())
    stop = int(end.timestamp())
    while at < stop:
        upto = min(at + 10, stop)
        series = store.query(
            f'SELECT count("value"), sum("value") FROM {quote_identifier(metric)} '  # noqa: S608
            f"WHERE tenant = {quote_literal(tenant)} AND time >= {at}s AND time < {upto}s"
        )
        if series:
            count += int(series[0]["values"][0][1])
            total += float(series[0]["values"][0][2])
        at = upto
    return count, total


def _wait(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(message)
        time.sleep(0.05)


def run_ingest_benchmark(options: BenchOptions, console: Console, repo: Path) -> BenchResult:
    result = BenchResult(
        started=datetime.now(UTC),
        machine=machine_info(repo),
        options=options,
        versions={
            "mosquitto": _version([_program("mosquitto"), "-h"]),
            "influxd": _version([_program("influxd"), "version"]),
        },
    )
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="iotmon-bench-", dir=options.state_dir) as tmp:
        state = Path(tmp)
        bench = _Bench(options, console, state)
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            setup = progress.add_task(
                "starting mosquitto and influxd, writing payloads", total=None
            )
            bench.broker.start()
            bench.influxd.start()
            base_us = time.time_ns() // 1000 - 3_600_000_000
            singles = write_singles(
                state / "payloads", options.messages, options.publishers, base_us
            )
            batches = write_batches(
                state / "payloads",
                options.batch_messages,
                options.batch_readings,
                options.publishers,
                base_us,
            )
            progress.remove_task(setup)
            try:
                if options.soak_s > 0:
                    result.store_ceiling = bench.influx_ceiling(batches, progress)
                    result.soak = _soak(bench, options, state, progress)
                else:
                    result.ceiling = bench.c_clients(singles, progress)
                    result.store_ceiling = bench.influx_ceiling(batches, progress)
                    for workers in options.workers:
                        result.steps += _ingest_steps(
                            bench, options, workers, singles, batches, progress
                        )
            finally:
                bench.broker.stop()
                bench.influxd.stop()
    result.load = f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    return result


def _ingest_steps(
    bench: _Bench,
    options: BenchOptions,
    workers: int,
    singles: PayloadSet,
    batches: PayloadSet,
    progress: Progress,
) -> list[StepResult]:
    database = f"bench_{bench._run_id}_w{workers}"
    store = open_store(StoreSettings(url=bench.influxd.url, database=database))
    assert isinstance(store, InfluxStore)
    store.ensure_schema()
    try:
        with bench.ingest(workers, database) as ingest:
            bench.warm_up(ingest, store)
            return [
                bench.ingest_step(
                    f"(b) ingest, {workers} worker(s), single readings",
                    ingest,
                    store,
                    singles,
                    "temperature",
                    "msg",
                    progress,
                    workers,
                ),
                bench.ingest_step(
                    f"(b) ingest, {workers} worker(s), batches of {options.batch_readings:,}",
                    ingest,
                    store,
                    batches,
                    "power_w",
                    "points",
                    progress,
                    workers,
                ),
            ]
    finally:
        store.close()


def _soak(bench: _Bench, options: BenchOptions, state: Path, progress: Progress) -> SoakResult:
    workers = max(options.workers)
    # Every round's timestamps within one whole second, an hour ago and going back.
    second = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    base_us = int(second.timestamp()) * 1_000_000
    batches = write_batches(
        state / "soak-payloads",
        options.batch_messages,
        options.batch_readings,
        options.publishers,
        base_us,
    )
    database = f"bench_{bench._run_id}_soak"
    store = open_store(StoreSettings(url=bench.influxd.url, database=database))
    assert isinstance(store, InfluxStore)
    store.ensure_schema()
    try:
        with bench.ingest(workers, database) as ingest:
            bench.warm_up(ingest, store)
            return bench.soak(ingest, store, batches, second, workers, progress)
    finally:
        store.close()
