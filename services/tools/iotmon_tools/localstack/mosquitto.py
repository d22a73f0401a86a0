"""A real mosquitto on a loopback port, configured from broker/ defaults.

Two modes. Plain (the default): anonymous clients may do anything, for tests
that are not about access and for the demo, which listens on loopback only.
Secured (``security=BrokerSecurity(...)``): the production trust model, i.e.
the dynamic-security plugin with broker/'s default access and roles, an admin
and the identities given, and no anonymous clients.
"""

from __future__ import annotations

import getpass
import glob
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iotmon_runtime.mqtt import MqttSettings
from iotmon_tools.broker.dynsec_file import Provisioned, build_config, write_config
from iotmon_tools.broker.identities import DEFAULT_ADMIN_USER, admin_identity
from iotmon_tools.broker.passwords import generate_password
from iotmon_tools.localstack.processes import (
    ManagedProcess,
    ProgramNotFound,
    find_program,
    free_port,
    port_open,
)

DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
# Debian/Ubuntu (multiarch), the eclipse-mosquitto image, source builds.
_PLUGIN_GLOBS = (
    f"/usr/lib/*/{DYNSEC_PLUGIN}",
    f"/usr/lib/{DYNSEC_PLUGIN}",
    f"/usr/lib/mosquitto/{DYNSEC_PLUGIN}",
    f"/usr/local/lib/{DYNSEC_PLUGIN}",
    f"/usr/local/lib/*/{DYNSEC_PLUGIN}",
)

# mosquitto started as root drops to user 'mosquitto', which cannot write our
# state folder: it keeps running as whoever started it.
# Same queueing limits as broker/mosquitto.conf: ingest keeps thousands of QoS 1
# messages in flight until their batch is written, and a persistent session
# must hold a restart's worth of messages rather than mosquitto's default 1000.
LOCAL_CONFIG = """\
user {user}
per_listener_settings false
listener {port} {host}
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
ANONYMOUS = "allow_anonymous true\n"
SECURED = """\
allow_anonymous false
plugin {plugin}
plugin_opt_config_file {dynsec_file}
"""


def find_dynsec_plugin() -> Path | None:
    """mosquitto's dynamic-security plugin, where the usual packages install it."""
    for pattern in _PLUGIN_GLOBS:
        for candidate in sorted(glob.glob(pattern)):
            return Path(candidate)
    return None


@dataclass(frozen=True)
class BrokerSecurity:
    """Who may use a secured broker: the admin and the identities it starts with."""

    identities: Sequence[Provisioned] = ()
    admin_username: str = DEFAULT_ADMIN_USER
    admin_password: str = field(default_factory=generate_password, repr=False)


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
        security: BrokerSecurity | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._state_dir = state_dir
        self._persistence = persistence
        self._max_queued = max_queued
        self._max_packet_size = max_packet_size
        self._security = security
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (tests pause it with SIGSTOP)."""
        return self._process.pid if self._process is not None else None

    @property
    def secured(self) -> bool:
        return self._security is not None

    @property
    def dynsec_file(self) -> Path:
        """The plugin's file: written at the first start, the broker's own after that."""
        return self._state_dir / "dynamic-security.json"

    def settings(self, username: str | None = None, password: str | None = None) -> MqttSettings:
        """Client settings for this broker, as ``username`` (anonymous when None)."""
        return MqttSettings.model_validate(
            {"host": self.host, "port": self.port, "username": username, "password": password}
        )

    def admin_settings(self) -> MqttSettings:
        if self._security is None:
            raise RuntimeError("a plain broker has no admin: start it with security=…")
        return self.settings(self._security.admin_username, self._security.admin_password)

    def start(self) -> None:
        program = find_program("mosquitto")
        if program is None:
            raise ProgramNotFound("mosquitto not found: apt-get install mosquitto")
        data_dir = self._state_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        text = LOCAL_CONFIG.format(
            user=getpass.getuser(),
            host=self.host,
            port=self.port,
            persistence="true" if self._persistence else "false",
            data_dir=data_dir,
            max_queued=self._max_queued,
            max_packet_size=self._max_packet_size,
        )
        if self._security is None:
            text += ANONYMOUS
        else:
            text += SECURED.format(plugin=self._plugin(), dynsec_file=self.dynsec_file)
            if not self.dynsec_file.exists():  # a restart keeps what the broker saved
                write_config(self.dynsec_file, self._initial_security(self._security))
        config = self._state_dir / "mosquitto.conf"
        config.write_text(text)
        self._process = ManagedProcess(
            "mosquitto", [program, "-c", str(config)], self._state_dir / "mosquitto.log"
        )
        self._process.start(lambda: port_open(self.host, self.port))

    @staticmethod
    def _plugin() -> Path:
        plugin = find_dynsec_plugin()
        if plugin is None:
            raise ProgramNotFound(
                f"{DYNSEC_PLUGIN} not found: install mosquitto 2.x (Debian's package has it)"
            )
        return plugin

    @staticmethod
    def _initial_security(security: BrokerSecurity) -> dict[str, Any]:
        admin = Provisioned(admin_identity(security.admin_username), security.admin_password)
        return build_config(admin, list(security.identities))

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def log_tail(self) -> str:
        return self._process.log_tail() if self._process else ""
