"""``iotmon bench api``: the API's latency under 50 concurrent clients, with ingest running.

It starts mosquitto and influxd (localstack), backfills an hour of history, then
runs ingest, a fleet of simulated sensors publishing through the broker, and the
API (``iotmon api``), each a process of its own. A separate load-generator
process (``http_load``) then measures, with an operator token:

- ``latest`` of a random device, closed loop and paced;
- the last hour of two metrics in one-minute buckets (``/series``), closed loop
  and paced;
- a store outage: influxd stopped under paced load (every answer should be 503
  with Retry-After), then started again: how long until the API answers 200;
- with ``reference``, the API of another checkout (main, say) on ``latest``, in the
  same run and under the same load: a before/after ratio on a shared machine.

CPU seconds of each process during each step come from /proc; the load average
before the run is reported, as the machine is shared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr
from rich.console import Console

from iotmon_contract import ValidatedReading
from iotmon_contract.validation import to_ns
from iotmon_registry import PrincipalKind, Principals, Registry, RegistrySettings
from iotmon_storage import StoreSettings, open_store
from iotmon_tools.bench.http_load import LoadSpec
from iotmon_tools.bench.machine import Machine, find_pid, machine_info, process_cpu_seconds
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess, find_program, free_port

TENANT = "bench"
METRICS = ("temperature", "humidity", "co2")
HISTORY_STEP_S = 10
SERIES_QUERY = "keys=temperature,humidity&bucket=60&agg=mean"

# The targets of the issue, printed beside each step.
LATEST_P99_TARGET_MS = 50.0
SERIES_P99_TARGET_MS = 200.0


class ApiBenchError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class ApiBenchOptions:
    devices: int = 200
    interval_s: float = 1.0
    clients: int = 50
    duration_s: float = 15.0
    warmup_s: float = 3.0
    latest_rate: float = 5.0
    """Requests per second of each client in the paced latest step (a dashboard tile
    refreshed every 200 ms; 250 requests/s from 50 clients)."""
    series_rate: float = 2.0
    """Requests per second of each client in the paced series step (a chart refreshed
    every 500 ms; 100 requests/s from 50 clients)."""
    api_workers: int = 1
    history_hours: float = 1.0
    outage_s: float = 3.0
    reference: Path | None = None
    """Another checkout whose API is measured too, on latest, in the same run."""
    logs_dir: Path | None = None
    """Where the processes' logs are copied at the end (they go with the temporary folder)."""
    state_dir: Path | None = None


@dataclass(slots=True)
class ApiStep:
    name: str
    kind: str
    requests: int
    seconds: float
    statuses: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)

    @property
    def target_ms(self) -> float | None:
        return {"latest": LATEST_P99_TARGET_MS, "series": SERIES_P99_TARGET_MS}.get(self.kind)


@dataclass(slots=True)
class OutageResult:
    statuses: dict[str, int]
    with_retry_after: int
    recovery_s: float | None
    """From influxd answering its ping again to the API's first 200 on a series."""


@dataclass(slots=True)
class ApiBenchResult:
    started: datetime
    machine: Machine
    options: ApiBenchOptions
    versions: dict[str, str]
    load_average: tuple[float, float, float]
    steps: list[ApiStep] = field(default_factory=list)
    outage: OutageResult | None = None


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(fraction * len(ordered) + 0.999999) - 1))
    return ordered[rank]


def _version(argv: list[str]) -> str:
    try:
        output = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = (output.stdout or output.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from iotmon_tools.cli.main import run; run()", *args]


class _ApiBench:
    def __init__(self, options: ApiBenchOptions, console: Console, state: Path) -> None:
        self.options = options
        self.console = console
        self.state = state
        self.run_id = uuid.uuid4().hex[:6]
        self.database = f"bench_api_{self.run_id}"
        self.registry = RegistrySettings(url=SecretStr(f"sqlite:///{state / 'registry.db'}"))
        self.broker = MosquittoProcess(state / "mosquitto")
        self.influxd = InfluxdProcess(state / "influxd")
        self.api_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.token = ""

    @property
    def devices(self) -> list[str]:
        return [f"env-{index:04d}" for index in range(self.options.devices)]

    # -- set-up -------------------------------------------------------------------

    def backfill(self) -> int:
        """History the series step reads: every device's metrics every 10 s."""
        store = open_store(StoreSettings(url=self.influxd.url, database=self.database))
        store.ensure_schema()
        now = datetime.now(UTC)
        steps = int(self.options.history_hours * 3600 / HISTORY_STEP_S)
        batch: list[ValidatedReading] = []
        written = 0
        try:
            for step in range(steps, 0, -1):
                ts_ns = to_ns(now - timedelta(seconds=step * HISTORY_STEP_S))
                for index, device in enumerate(self.devices):
                    for number, metric in enumerate(METRICS):
                        value = 20.0 + (index + number * 7 + step) % 50 * 0.5
                        batch.append(ValidatedReading(TENANT, device, metric, value, None, ts_ns))
                if len(batch) >= 20_000:
                    store.write_readings(batch, seen_at_ns=None)
                    written += len(batch)
                    batch = []
            if batch:
                store.write_readings(batch, seen_at_ns=None)
                written += len(batch)
        finally:
            store.close()
        return written

    def issue_token(self) -> None:
        with Registry(self.registry) as registry:
            registry.add_site(TENANT, "site-1")
            principal = Principals(registry).create(
                PrincipalKind.OPERATOR, tenant=TENANT, name="bench"
            )
        self.token = principal.token

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.state / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )

    def start_services(self) -> None:
        broker = {"HOST": self.broker.host, "PORT": str(self.broker.port)}
        self._start(
            "ingest",
            _cli("ingest"),
            {f"IOTMON_INGEST_MQTT__{k}": v for k, v in broker.items()}
            | {
                "IOTMON_INGEST_MQTT__CLIENT_ID": f"bench-api-ingest-{self.run_id}",
                "IOTMON_INGEST_STORE__URL": self.influxd.url,
                "IOTMON_INGEST_STORE__DATABASE": self.database,
                "IOTMON_INGEST_SPOOL_DIR": str(self.state / "spool"),
                "IOTMON_INGEST_REGISTRY__URL": self.registry.url.get_secret_value(),
            },
        )
        self.start_api()
        self._start(
            "simulator",
            _cli(
                "simulate", "--devices", str(self.options.devices), "--tenant", TENANT,
                "--interval", str(self.options.interval_s),
                "--mqtt-host", self.broker.host, "--mqtt-port", str(self.broker.port),
            ),
            {"IOTMON_EDGE_LOG_LEVEL": "WARNING"},
        )  # fmt: skip

    def start_api(self, reference: Path | None = None) -> None:
        """Our API, or with ``reference`` the API of another checkout (its packages first on
        PYTHONPATH, its own CLI), on the same port, store and registry."""
        env = {
            "IOTMON_API_STORE__URL": self.influxd.url,
            "IOTMON_API_STORE__DATABASE": self.database,
            "IOTMON_API_STORE__TIMEOUT_S": "5",
            "IOTMON_API_REGISTRY__URL": self.registry.url.get_secret_value(),
            "IOTMON_API_LOG_LEVEL": "WARNING",
        }
        if reference is None:
            argv = _cli("api", "--port", str(self.api_port))
            argv += ["--workers", str(self.options.api_workers)]
            self._start("api", argv, env)
            return
        packages = (reference / "scripts" / "packages").read_text().splitlines()
        paths = [str(reference / line.strip()) for line in packages if line.strip()[:1] not in "#"]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        code = "from iotmon_api.cli import run; run()"
        self._start(
            "reference api",
            [sys.executable, "-c", code, "run", "--port", str(self.api_port)],
            env,
        )

    def stop_process(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the API answers a simulated device's latest reading from the last seconds."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.api_port}/api/v1/devices/{TENANT}/{self.devices[-1]}/latest"
        headers = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise ApiBenchError(f"{name} exited with {process.returncode}; see its log")
            try:
                response = httpx.get(url, headers=headers, timeout=2)
                if response.status_code == 200:
                    newest = max(datetime.fromisoformat(r["ts"]) for r in response.json()["data"])
                    if datetime.now(UTC) - newest < timedelta(seconds=5):
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise ApiBenchError("the API did not answer with fresh readings: is ingest storing?")

    # -- measuring -------------------------------------------------------------------

    def cpu(self) -> dict[str, float]:
        found = {
            name: process_cpu_seconds(process.pid, with_children=True)
            for name, process in self.processes.items()
            if process.poll() is None
        }
        for name, config in (
            ("mosquitto", self.state / "mosquitto" / "mosquitto.conf"),
            ("influxd", self.state / "influxd" / "influxdb.conf"),
        ):
            pid = find_pid(str(config))
            if pid is not None:
                found[name] = process_cpu_seconds(pid)
        return found

    def paths(self, kind: str) -> list[str]:
        base = f"/api/v1/devices/{TENANT}"
        if kind == "latest":
            return [f"{base}/{device}/latest" for device in self.devices]
        return [f"{base}/{device}/series?{SERIES_QUERY}" for device in self.devices]

    def load(
        self, kind: str, *, paced: bool, duration_s: float, warmup_s: float
    ) -> dict[str, object]:
        spec = LoadSpec(
            host="127.0.0.1",
            port=self.api_port,
            token=self.token,
            paths=self.paths(kind),
            clients=self.options.clients,
            duration_s=duration_s,
            warmup_s=warmup_s,
            pace_s=1.0 / self._rate(kind) if paced else None,
        )
        done = subprocess.run(
            [sys.executable, "-m", "iotmon_tools.bench.http_load"],
            input=json.dumps(asdict(spec)).encode(),
            capture_output=True,
            timeout=duration_s + warmup_s + 120,
            check=False,
        )
        if done.returncode != 0:
            raise ApiBenchError(f"load generator failed: {done.stderr.decode()[-1000:]}")
        result: dict[str, object] = json.loads(done.stdout)
        return result

    def _rate(self, kind: str) -> float:
        return self.options.latest_rate if kind == "latest" else self.options.series_rate

    def step(self, kind: str, *, paced: bool, label: str = "") -> ApiStep:
        mode = f"paced, {self._rate(kind):g} req/s per client" if paced else "closed loop"
        what = "latest" if kind == "latest" else "series: 2 metrics, last hour, 1-min buckets"
        name = f"{label}{what} ({self.options.clients} clients, {mode})"
        self.console.print(f"measuring {name} …")
        before = self.cpu()
        loaded = self.load(
            kind, paced=paced, duration_s=self.options.duration_s, warmup_s=self.options.warmup_s
        )
        after = self.cpu()
        latencies = [float(v) for v in loaded["latencies_ms"]]  # type: ignore[attr-defined]
        cpu = {k: after[k] - before.get(k, 0.0) for k in after}
        cpu["load generator"] = float(loaded["cpu_s"])  # type: ignore[arg-type]
        return ApiStep(
            name=name,
            kind=kind if not label else f"reference {kind}",
            requests=len(latencies),
            seconds=float(loaded["seconds"]),  # type: ignore[arg-type]
            statuses=dict(loaded["statuses"]),  # type: ignore[call-overload]
            p50_ms=percentile(latencies, 0.50),
            p90_ms=percentile(latencies, 0.90),
            p99_ms=percentile(latencies, 0.99),
            max_ms=max(latencies, default=0.0),
            cpu_seconds=cpu,
            failures=list(loaded["failures"]),  # type: ignore[call-overload]
        )

    def outage(self) -> OutageResult:
        """influxd stopped under paced series load, then started: 503s, then recovery."""
        self.console.print("store outage: stopping influxd under load …")
        self.influxd.stop()
        try:
            loaded = self.load("series", paced=True, duration_s=self.options.outage_s, warmup_s=0.5)
        finally:
            self.influxd.start()
        ready = time.monotonic()
        url = f"http://127.0.0.1:{self.api_port}{self.paths('series')[0]}"
        headers = {"Authorization": f"Bearer {self.token}"}
        recovery = None
        with httpx.Client(headers=headers, timeout=5) as client:
            while time.monotonic() - ready < 30:
                if client.get(url).status_code == 200:
                    recovery = time.monotonic() - ready
                    break
                time.sleep(0.01)
        return OutageResult(
            statuses=dict(loaded["statuses"]),  # type: ignore[call-overload]
            with_retry_after=int(loaded["retry_after"]),  # type: ignore[call-overload]
            recovery_s=recovery,
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def _running(bench: _ApiBench) -> Iterator[None]:
    with ExitStack() as stack:
        bench.broker.start()
        stack.callback(bench.broker.stop)
        bench.influxd.start()
        stack.callback(bench.influxd.stop)
        stack.callback(bench.stop)
        yield


def run_api_benchmark(options: ApiBenchOptions, console: Console, repo: Path) -> ApiBenchResult:
    result = ApiBenchResult(
        started=datetime.now(UTC),
        machine=machine_info(repo),
        options=options,
        versions={
            "mosquitto": _version([find_program("mosquitto") or "mosquitto", "-h"]),
            "influxd": _version([find_program("influxd") or "influxd", "version"]),
        },
        load_average=os.getloadavg(),
    )
    with tempfile.TemporaryDirectory(prefix="iotmon-bench-api-", dir=options.state_dir) as tmp:
        bench = _ApiBench(options, console, Path(tmp))
        with _running(bench):
            console.print("backfilling history …")
            written = bench.backfill()
            console.print(f"{written:,} readings of history written")
            bench.issue_token()
            bench.start_services()
            bench.wait_ready()
            for kind in ("latest", "series"):
                result.steps.append(bench.step(kind, paced=False))
                result.steps.append(bench.step(kind, paced=True))
            result.outage = bench.outage()
            if options.reference is not None:
                bench.stop_process("api")
                bench.start_api(options.reference)
                bench.wait_ready()
                label = f"reference {_commit_of(options.reference)}: "
                result.steps.append(bench.step("latest", paced=False, label=label))
                result.steps.append(bench.step("latest", paced=True, label=label))
        if options.logs_dir is not None:
            options.logs_dir.mkdir(parents=True, exist_ok=True)
            for log in Path(tmp).glob("*.log"):
                shutil.copy(log, options.logs_dir / log.name)
    return result


def _commit_of(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    return done.stdout.strip() or checkout.name
