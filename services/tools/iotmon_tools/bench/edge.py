"""``iotmon bench edge``: the edge agent's footprint, steady and while draining a backlog.

The agent runs as ``iotmon-edge run`` from a venv holding only the edge
distributions and their dependencies, as on a Raspberry Pi (the development venv
also has rich, typer and the cloud services, which would inflate its memory).

(r) references: the venv's interpreter alone and after each heavy import (RSS).
(s) steady: ``sensors`` simulated sensors at 1 Hz, single mode; CPU share and RSS over
    ``steady_s`` after a warm-up, with the durable queue and, for reference, without.
(d) drain: a queue file holding ``backlog`` readings (built beforehand, on a tenant of
    its own) drained to a real mosquitto while the sensors' live data goes on; a
    ``mosquitto_sub -C backlog`` counts it, from the first to the last message.

CPU and memory come from ``/proc``; how busy the whole machine was during each step
(other processes included) is recorded next to it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from iotmon_contract import telemetry_filter
from iotmon_devices import FaultProfile, SimulatedEnvironmentConfig
from iotmon_devices.simulators.environment import SimulatedEnvironmentDriver
from iotmon_edge.messages import SequenceBook, TelemetryEncoder
from iotmon_edge.queue_store import QueueStore, Synchronous
from iotmon_runtime.mqtt import OutgoingMessage
from iotmon_tools.bench.ingest import BenchError
from iotmon_tools.bench.machine import Machine, find_pid, machine_info, process_cpu_seconds
from iotmon_tools.localstack import MosquittoProcess, find_program

_STEPS = (
    ("interpreter alone", "pass"),
    ("+ pydantic, one model defined", "import pydantic\nclass M(pydantic.BaseModel):\n x: int"),
    ("+ iotmon_contract", "import iotmon_contract"),
    ("+ paho-mqtt", "import paho.mqtt.client"),
    ("+ structlog (imports asyncio)", "import structlog"),
    ("+ pydantic-settings", "import pydantic_settings"),
    ("+ importlib.metadata", "import importlib.metadata"),
    ("+ the rest of iotmon_edge.cli", "import iotmon_edge.cli"),
)
IMPORTS = tuple(
    (label, "\n".join(code for _, code in _STEPS[: index + 1]))
    for index, (label, _) in enumerate(_STEPS)
)
"""Cumulative: each line adds its import to those above it."""
_RSS_PROBE = (
    "import re\nprint(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
)
_NO_FAULTS = FaultProfile(dropout_rate=0, spike_rate=0, stuck_rate=0)
_BUILD_CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class EdgeBenchOptions:
    sensors: int = 20
    interval_s: float = 1.0
    warmup_s: float = 10.0
    steady_s: float = 60.0
    backlog: int = 1_000_000
    drain_rate: float = 0.0
    """0: as fast as the broker acknowledges (the capacity); the shipped default is 5000."""
    venv: Path | None = None
    timeout_s: float = 900.0


@dataclass(slots=True)
class EdgeStep:
    name: str
    seconds: float
    agent_cpu_s: float
    rss_kib: int
    hwm_kib: int
    messages: int
    mosquitto_cpu_s: float
    machine_busy: float
    """Share of all the machine's cores busy during the step, whoever used them."""
    verified: bool
    detail: str = ""

    @property
    def cpu_percent(self) -> float:
        return 100 * self.agent_cpu_s / self.seconds if self.seconds > 0 else 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class EdgeBenchResult:
    started: datetime
    machine: Machine
    options: EdgeBenchOptions
    versions: dict[str, str]
    loadavg: str
    imports: list[tuple[str, int]] = field(default_factory=list)
    steps: list[EdgeStep] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Usage:
    at: float
    cpu_s: float
    rss_kib: int
    hwm_kib: int
    mosquitto_cpu_s: float
    busy: int
    total: int


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _machine_jiffies() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _lines_between(path: Path, start: float, end: float) -> int:
    count = 0
    for line in path.read_text().splitlines():
        try:
            stamp = float(line.split()[-1])
        except (ValueError, IndexError):
            continue
        if start <= stamp <= end:
            count += 1
    return count


class _EdgeBench:
    def __init__(self, options: EdgeBenchOptions, console: Console, state: Path, repo: Path):
        self._options = options
        self._console = console
        self._state = state
        self._repo = repo
        self._run = uuid.uuid4().hex[:6]
        self._sub = _program("mosquitto_sub")
        self._pub = _program("mosquitto_pub")
        self.broker = MosquittoProcess(state / "mosquitto")
        self.python = Path()

    # -- the agent's own venv ------------------------------------------------------

    def prepare_venv(self) -> Path:
        venv = self._options.venv or (self._repo / ".state" / "bench" / "edge-venv")
        if not (venv / "bin" / "python").exists():
            self._console.print(f"creating the agent's venv in {venv}")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        self._console.print("installing the edge distributions into it (as on a Pi)")
        packages = [str(self._repo / name) for name in ("contract", "runtime", "devices", "edge")]
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade",
             *packages],
            check=True,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.python = venv / "bin" / "python"
        return venv

    def import_footprint(self) -> list[tuple[str, int]]:
        found = []
        for label, statement in IMPORTS:
            output = subprocess.run(
                [str(self.python), "-c", f"{statement}\n{_RSS_PROBE}"],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
            found.append((label, int(output.stdout.strip())))
        return found

    # -- helpers ---------------------------------------------------------------------

    def _usage(self, pid: int) -> _Usage:
        broker = find_pid(str(self._state / "mosquitto" / "mosquitto.conf"))
        busy, total = _machine_jiffies()
        return _Usage(
            at=time.time(),
            cpu_s=process_cpu_seconds(pid),
            rss_kib=_status_kib(pid, "VmRSS"),
            hwm_kib=_status_kib(pid, "VmHWM"),
            mosquitto_cpu_s=process_cpu_seconds(broker) if broker else 0.0,
            busy=busy,
            total=total,
        )

    def _config(self, name: str, tenant: str, queue: Path | None, drain_rate: float) -> Path:
        path = self._state / f"{name}.yaml"
        text = (
            f"tenant: {tenant}\nagent_id: bench-gw\n"
            f"publish_interval_s: {self._options.interval_s}\n"
            "health: {interval_s: 60}\n"
            f"drivers:\n  - type: simulated_environment\n    count: {self._options.sensors}\n"
        )
        if queue is not None:
            text += f"queue: {{path: {queue}, drain_rate: {drain_rate}, max_bytes: 4GiB}}\n"
        path.write_text(text)
        return path

    def _agent(self, config: Path, log: Path) -> subprocess.Popen[bytes]:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")},
            "IOTMON_EDGE_MQTT__HOST": self.broker.host,
            "IOTMON_EDGE_MQTT__PORT": str(self.broker.port),
            "IOTMON_EDGE_LOG_LEVEL": "WARNING",
        }
        agent = self.python.with_name("iotmon-edge")
        with log.open("ab") as sink:
            return subprocess.Popen(
                [str(agent), "run", "--config", str(config)], env=env, stdout=sink, stderr=sink
            )

    def _subscriber(self, output: Path, topic: str, count: int | None) -> subprocess.Popen[bytes]:
        probe = f"bench/probe/{self._run}/{output.stem}"
        subprocess.run(
            [self._pub, "-h", self.broker.host, "-p", str(self.broker.port), "-q", "1",
             "-r", "-t", probe, "-m", "ready"],
            check=True, timeout=10, capture_output=True,
        )  # fmt: skip
        argv = [self._sub, "-h", self.broker.host, "-p", str(self.broker.port), "-V", "mqttv5",
                "-q", "1", "-F", "%t %U", "-t", probe, "-t", topic]  # fmt: skip
        if count is not None:
            argv += ["-C", str(count + 1)]
        with output.open("wb") as sink:
            process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while output.stat().st_size == 0:  # the retained probe came: subscribed
            if time.monotonic() > deadline:
                process.kill()
                raise BenchError("mosquitto_sub did not subscribe")
            time.sleep(0.05)
        return process

    @staticmethod
    def _stop(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    # -- (s) steady ------------------------------------------------------------------

    def steady(self, durable: bool) -> EdgeStep:
        options = self._options
        kind = "durable queue" if durable else "memory only (reference)"
        tenant = f"bench-s{'q' if durable else 'm'}-{self._run}"
        queue = self._state / f"steady-{self._run}.db" if durable else None
        config = self._config(f"steady-{'q' if durable else 'm'}", tenant, queue, 5000)
        received = self._state / f"steady-{'q' if durable else 'm'}.out"
        subscriber = self._subscriber(received, telemetry_filter(tenant), None)
        agent = self._agent(config, self._state / "agent-steady.log")
        self._console.print(
            f"(s) steady, {kind}: {options.sensors} sensors every {options.interval_s:g}s, "
            f"{options.warmup_s:g}s warm-up + {options.steady_s:g}s measured"
        )
        try:
            time.sleep(options.warmup_s)
            if agent.poll() is not None:
                raise BenchError(f"the agent exited with {agent.returncode}; see agent-steady.log")
            before = self._usage(agent.pid)
            time.sleep(options.steady_s)
            after = self._usage(agent.pid)
        finally:
            code = self._stop(agent)
            self._stop(subscriber)
        seconds = after.at - before.at
        messages = _lines_between(received, before.at, after.at)
        expected = options.sensors * 3 * seconds / options.interval_s
        return EdgeStep(
            name=f"(s) steady, {kind}",
            seconds=seconds,
            agent_cpu_s=after.cpu_s - before.cpu_s,
            rss_kib=after.rss_kib,
            hwm_kib=after.hwm_kib,
            messages=messages,
            mosquitto_cpu_s=after.mosquitto_cpu_s - before.mosquitto_cpu_s,
            machine_busy=(after.busy - before.busy) / max(1, after.total - before.total),
            verified=code == 0 and messages >= 0.95 * expected,
            detail=f"{messages:,} readings received of ~{expected:,.0f} taken; stop exit {code}",
        )

    # -- (d) drain -------------------------------------------------------------------

    def build_backlog(self, tenant: str) -> Path:
        """``backlog`` contract-valid single readings, 1 Hz back in time, in a queue file."""
        options = self._options
        path = self._state / f"backlog-{self._run}.db"
        store = QueueStore(path, synchronous=Synchronous.NORMAL)
        store.open()
        driver = SimulatedEnvironmentDriver(
            SimulatedEnvironmentConfig(count=options.sensors, seed=9, faults=_NO_FAULTS)
        )
        sequences = SequenceBook()
        encoder = TelemetryEncoder(tenant, "bench-gw", 1000, sequences)
        per_cycle = options.sensors * 3
        cycles = -(-options.backlog // per_cycle)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=cycles + 60)
        self._console.print(
            f"(d) building a backlog of {options.backlog:,} readings "
            f"({cycles:,} cycles of {per_cycle}, {cycles / 3600:.1f} h of an outage)"
        )
        pending: list[OutgoingMessage] = []
        written = 0
        try:
            for cycle in range(cycles):
                readings = driver.read(start + timedelta(seconds=cycle))
                readings = readings[: options.backlog - written - len(pending)]
                pending.extend(encoder.singles(readings).messages)
                if len(pending) >= _BUILD_CHUNK or cycle == cycles - 1:
                    store.append(pending, sequences.changes())
                    written += len(pending)
                    pending = []
            if store.totals().messages != options.backlog:
                raise BenchError(f"built {store.totals().messages} of {options.backlog}")
        finally:
            store.close()
        return path

    def drain(self) -> EdgeStep:
        options = self._options
        backlog_tenant = f"bench-backlog-{self._run}"
        live_tenant = f"bench-live-{self._run}"
        queue = self.build_backlog(backlog_tenant)
        config = self._config("drain", live_tenant, queue, options.drain_rate)
        drained_out = self._state / "drain-backlog.out"
        live_out = self._state / "drain-live.out"
        counter = self._subscriber(drained_out, telemetry_filter(backlog_tenant), options.backlog)
        live = self._subscriber(live_out, telemetry_filter(live_tenant), None)
        rate = f"{options.drain_rate:g} msg/s" if options.drain_rate else "full speed"
        self._console.print(f"(d) draining {options.backlog:,} readings at {rate}, live data on")
        agent = self._agent(config, self._state / "agent-drain.log")
        started = self._usage(agent.pid)
        peak_rss = 0
        try:
            deadline = time.monotonic() + options.timeout_s
            while counter.poll() is None:
                if time.monotonic() > deadline or agent.poll() is not None:
                    raise BenchError("the backlog did not drain; see agent-drain.log")
                peak_rss = max(peak_rss, _status_kib(agent.pid, "VmRSS"))
                time.sleep(0.2)
            ended = self._usage(agent.pid)
        finally:
            code = self._stop(agent)
            self._stop(live)
            if counter.poll() is None:
                counter.kill()
        stamps = [
            float(line.split()[-1])
            for line in drained_out.read_text().splitlines()
            if line.startswith("iotmon/")
        ]
        first, last = stamps[0], stamps[-1]
        live_during = _lines_between(live_out, first, last)
        left = _queue_rows(queue)
        expected_live = options.sensors * 3 * (last - first) / options.interval_s
        return EdgeStep(
            name=f"(d) drain {options.backlog:,} readings, {rate}",
            seconds=last - first,
            agent_cpu_s=ended.cpu_s - started.cpu_s,
            rss_kib=ended.rss_kib,
            hwm_kib=max(ended.hwm_kib, peak_rss),
            messages=len(stamps),
            mosquitto_cpu_s=ended.mosquitto_cpu_s - started.mosquitto_cpu_s,
            machine_busy=(ended.busy - started.busy) / max(1, ended.total - started.total),
            verified=len(stamps) == options.backlog and left == 0 and code == 0,
            detail=(
                f"start→first message {first - started.at:.1f}s; {live_during:,} live readings "
                f"meanwhile (~{expected_live:,.0f} taken); queue left {left}; stop exit {code}"
            ),
        )


def _queue_rows(path: Path) -> int:
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM queue").fetchone()[0])
    finally:
        db.close()


def _program(name: str) -> str:
    found = find_program(name)
    if found is None:
        raise BenchError(f"{name} not found: apt-get install mosquitto mosquitto-clients")
    return found


def _mosquitto_version() -> str:
    program = find_program("mosquitto")
    if program is None:
        return "unknown"
    output = subprocess.run([program, "-h"], capture_output=True, text=True, check=False)
    text = (output.stdout or output.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def run_edge_benchmark(
    options: EdgeBenchOptions, console: Console, repo: Path, state: Path
) -> EdgeBenchResult:
    state.mkdir(parents=True, exist_ok=True)
    bench = _EdgeBench(options, console, state, repo)
    bench.prepare_venv()
    python = subprocess.run(
        [str(bench.python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    result = EdgeBenchResult(
        started=datetime.now(UTC),
        machine=machine_info(repo),
        options=options,
        versions={"mosquitto": _mosquitto_version(), "agent python": python},
        loadavg=" ".join(Path("/proc/loadavg").read_text().split()[:3]),
    )
    result.imports = bench.import_footprint()
    bench.broker.start()
    try:
        result.steps.append(bench.steady(durable=True))
        result.steps.append(bench.steady(durable=False))
        result.steps.append(bench.drain())
    finally:
        bench.broker.stop()
    return result
