"""A real Prometheus (Debian's ``prometheus`` package) scraping given targets on loopback.

For tests and local checks of the "platform health" dashboard: it scrapes the
services' /metrics and evaluates the dashboard's PromQL as Grafana would ask it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from iotmon_tools.localstack.processes import (
    ManagedProcess,
    ProgramNotFound,
    find_program,
    free_port,
)


class PrometheusError(RuntimeError):
    """Prometheus refused a query (bad PromQL) or could not be reached."""


class PrometheusProcess:
    """``jobs`` maps a job name to its ``host:port`` targets (``/metrics`` on each)."""

    def __init__(
        self,
        state_dir: Path,
        jobs: Mapping[str, Sequence[str]],
        *,
        scrape_interval_s: float = 1.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = free_port(host)
        self._state_dir = state_dir
        self._jobs = {name: list(targets) for name, targets in jobs.items()}
        self._interval = scrape_interval_s
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config(self) -> dict[str, Any]:
        interval = f"{int(self._interval * 1000)}ms"
        return {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {"job_name": name, "static_configs": [{"targets": targets}]}
                for name, targets in self._jobs.items()
            ],
        }

    def start(self, timeout: float = 30.0) -> None:
        program = find_program("prometheus")
        if program is None:
            raise ProgramNotFound("prometheus is not installed (Debian package prometheus)")
        self._state_dir.mkdir(parents=True, exist_ok=True)
        config = self._state_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()))
        self._process = ManagedProcess(
            "prometheus",
            [
                program,
                f"--config.file={config}",
                f"--storage.tsdb.path={self._state_dir / 'data'}",
                f"--web.listen-address={self.host}:{self.port}",
                "--log.level=warn",
            ],
            self._state_dir / "prometheus.log",
        )
        self._process.start(self._ready, timeout)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=0.5) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    def query(self, expression: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector; PrometheusError with Prometheus's own message
        when the expression is refused."""
        params = {"query": expression}
        if at is not None:
            params["time"] = f"{at:.3f}"
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/api/v1/query",
            data=urllib.parse.urlencode(params).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("error", exc.reason)
            raise PrometheusError(f"{expression}: {detail}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{expression}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expression}: {data['resultType']}, not a vector")
        result: list[dict[str, Any]] = data["result"]
        return result

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
