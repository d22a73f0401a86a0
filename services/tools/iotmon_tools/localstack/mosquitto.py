"""A real mosquitto on a loopback port, configured from broker/ defaults."""

from __future__ import annotations

import getpass
from pathlib import Path

from iotmon_tools.localstack.processes import (
    ManagedProcess,
    ProgramNotFound,
    find_program,
    free_port,
    port_open,
)

# mosquitto started as root drops to user 'mosquitto', which cannot write our
# state folder: it keeps running as whoever started it.
# Same queueing limits as broker/mosquitto.conf: ingest keeps thousands of QoS 1
# messages in flight until their batch is written, and a persistent session
# must hold a restart's worth of messages rather than mosquitto's default 1000.
LOCAL_CONFIG = """\
user {user}
listener {port} {host}
allow_anonymous true
persistence {persistence}
persistence_location {data_dir}/
autosave_interval 30
max_inflight_messages 0
max_queued_messages {max_queued}
max_queued_bytes 0
max_packet_size {max_packet_size}
persistent_client_expiration 1d
log_dest stdout
log_type error
log_type warning
log_type notice
connection_messages false
"""


class MosquittoProcess:
    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        persistence: bool = True,
        max_queued: int = 2_000_000,
        max_packet_size: int = 1024 * 1024,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._state_dir = state_dir
        self._persistence = persistence
        self._max_queued = max_queued
        self._max_packet_size = max_packet_size
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        program = find_program("mosquitto")
        if program is None:
            raise ProgramNotFound("mosquitto not found: apt-get install mosquitto")
        data_dir = self._state_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        config = self._state_dir / "mosquitto.conf"
        config.write_text(
            LOCAL_CONFIG.format(
                user=getpass.getuser(),
                host=self.host,
                port=self.port,
                persistence="true" if self._persistence else "false",
                data_dir=data_dir,
                max_queued=self._max_queued,
                max_packet_size=self._max_packet_size,
            )
        )
        self._process = ManagedProcess(
            "mosquitto", [program, "-c", str(config)], self._state_dir / "mosquitto.log"
        )
        self._process.start(lambda: port_open(self.host, self.port))

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def log_tail(self) -> str:
        return self._process.log_tail() if self._process else ""
