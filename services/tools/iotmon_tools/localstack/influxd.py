"""A real InfluxDB 1.x (Debian's influxd) on loopback ports with its data in one folder."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from iotmon_tools.localstack.processes import (
    ManagedProcess,
    ProgramNotFound,
    find_program,
    free_port,
)

LOCAL_CONFIG = """\
reporting-disabled = true
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{data_dir}/meta"

[data]
  dir = "{data_dir}/data"
  wal-dir = "{data_dir}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
  index-version = "inmem"

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = true

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{host}:{http_port}"
  log-enabled = false
  max-body-size = 0
  max-row-limit = 0

[logging]
  level = "warn"

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false
"""


class InfluxdProcess:
    def __init__(
        self, state_dir: Path, *, host: str = "127.0.0.1", port: int | None = None
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._rpc_port = free_port(host)
        self._state_dir = state_dir
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (tests pause it to hold a write open)."""
        return self._process.pid if self._process else None

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=0.5) as response:  # noqa: S310
                return bool(response.status == 204)
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> None:
        program = find_program("influxd")
        if program is None:
            raise ProgramNotFound("influxd not found: apt-get install influxdb")
        data_dir = self._state_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        config = self._state_dir / "influxdb.conf"
        config.write_text(
            LOCAL_CONFIG.format(
                host=self.host, rpc_port=self._rpc_port, http_port=self.port, data_dir=data_dir
            )
        )
        self._process = ManagedProcess(
            "influxd", [program, "-config", str(config)], self._state_dir / "influxd.log"
        )
        self._process.start(self._ping, timeout=timeout)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(timeout=20)

    def log_tail(self) -> str:
        return self._process.log_tail() if self._process else ""
