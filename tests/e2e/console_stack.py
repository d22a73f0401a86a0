"""The whole stack the operator console runs on, for real: mosquitto, InfluxDB, ingest, the
alert service with the school-bus rules, and the API serving the console; a bus whose
run the test plays as contract events (device times around now) and a camera whose
snapshots a loopback media server serves."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from iotmon_alerts.config import AlertsDatabaseSettings
from iotmon_alerts.service import AlertService
from iotmon_api import ApiServer
from iotmon_api import Settings as ApiSettings
from iotmon_api.console.settings import ConsoleSettings
from iotmon_contract.topics import event_topic, status_topic
from iotmon_ingest import IngestService
from iotmon_registry import PrincipalKind, Principals, Registry, RegistrySettings
from iotmon_storage import StoreSettings
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.services.alerts.support import make_settings, write_rules
from tests.services.ingest.support import Publisher, ingest_settings
from tests.utils.bus import FLEET_YAML, PLACES

TENANT = "demo"
REPO = Path(__file__).resolve().parents[2]
PHOTO = REPO / ".state" / "test-assets" / "bus.jpg"
"""A real photo for the camera's snapshot (scripts/setup --dev fetches it)."""

RULES = f"""\
tenant: {TENANT}
bus:
  fleet: ../fleet.yaml  # beside the rules folder: every YAML in it is a rule file
  # No minutes-long waits in a test: decide soon after the run end.
  settings: {{decision_wait_s: 5, notice_position_wait_s: 2}}
"""
# A drawn frame when the photo is not there: the console shows whatever the URL serves.
FRAME_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">
<rect width="640" height="480" fill="#34495e"/><rect x="220" y="120" width="160" height="300"
fill="#e67e22"/><text x="20" y="40" fill="#fff" font-size="28">gate-cam</text></svg>"""


class MediaServer:
    """The video service's media server as the console's browser meets it: a loopback
    HTTP server with one snapshot, counting the requests it answered."""

    def __init__(self) -> None:
        body, kind = (PHOTO.read_bytes(), "image/jpeg") if PHOTO.exists() else (
            FRAME_SVG, "image/svg+xml")  # fmt: skip
        served = self.served = [0]

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.path.startswith("/media/"):
                    self.send_error(404)
                    return
                served[0] += 1
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/media/{name}"

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Bus:
    """Bus 1 of the test fleet, publishing contract events stamped at device time."""

    publisher: Publisher
    seq: dict[str, int]

    def send(self, device: str, body: dict[str, Any], ts: datetime) -> None:
        seq = self.seq[device] = self.seq.get(device, 0) + 1
        event = {"ts": ts.isoformat(), "seq": seq, **body}
        self.publisher.publish(event_topic(TENANT, device), json.dumps(event).encode())

    def status(self, device: str, state: str) -> None:
        payload = {"state": state, "ts": datetime.now(UTC).isoformat()}
        self.publisher.publish(status_topic(TENANT, device), json.dumps(payload).encode(),
                               retain=True)  # fmt: skip

    def fix(self, place: str, ts: datetime) -> None:
        lat, lon = PLACES[place]
        self.send("bus-1-gps", {"type": "position", "lat": lat, "lon": lon}, ts)

    def door(self, tag: str, direction: str, ts: datetime) -> None:
        body = {"type": "tag_read", "tag": tag, "rssi": -50.0, "direction": direction}
        self.send("bus-1-door", body, ts)

    def morning_until_back(self, start: datetime) -> None:
        """A run compressed into two minutes before ``start + 120 s``: Ann, Ben and Cid
        board; only Ann and Ben are read getting off at school; back at the depot."""

        def at(seconds: float) -> datetime:
            return start + timedelta(seconds=seconds)

        self.send("bus-1-gps", {"type": "ignition", "on": True}, at(0))
        self.send("bus-1-gps", {"type": "run_start"}, at(1))
        self.fix("depot-1", at(2))
        self.fix("stop-a", at(20))
        self.door("TAG-ANN", "in", at(22))
        self.door("TAG-BEN", "in", at(24))
        self.fix("stop-b", at(40))
        self.door("TAG-CID", "in", at(42))
        self.fix("school-1", at(60))
        self.door("TAG-ANN", "out", at(62))
        self.door("TAG-BEN", "out", at(64))
        for s in (100, 110, 118):
            self.fix("depot-1", at(s))
        self.publisher.flush()

    def run_end(self, ts: datetime) -> None:
        """The run ends at the depot; the cabin sweep hears Cid inside."""
        self.fix("depot-1", ts)
        self.send("bus-1-gps", {"type": "run_end"}, ts)
        self.send("bus-1-cabin", {"type": "sweep_read", "sweep_id": "sw-1", "tag": "TAG-CID",
                                  "rssi": -52.0}, ts)  # fmt: skip
        self.send("bus-1-cabin", {"type": "sweep_complete", "sweep_id": "sw-1", "reads": 1}, ts)
        self.send("bus-1-gps", {"type": "ignition", "on": False}, ts)
        self.publisher.flush()


@dataclass
class Stack:
    api_url: str
    operator_token: str
    facility_token: str
    bus: Bus
    media: MediaServer
    store: StoreSettings


@contextmanager
def console_stack(
    broker: MosquittoProcess, influxd: InfluxdProcess, folder: Path
) -> Iterator[Stack]:
    database = f"console_{uuid.uuid4().hex[:10]}"
    store = StoreSettings(url=influxd.url, database=database)
    alert_settings = make_settings(folder, broker, store=store)
    (folder / "fleet.yaml").write_text(FLEET_YAML)
    write_rules(alert_settings, TENANT, RULES)
    registry_settings = RegistrySettings(url=SecretStr(f"sqlite:///{folder / 'registry.db'}"))
    with Registry(registry_settings) as registry:
        registry.add_site(TENANT, "depot-1")
        for device in ("bus-1-gps", "bus-1-door", "bus-1-cabin", "bus-1-cam", "gate-cam"):
            registry.add_device(TENANT, device, site="depot-1")
        principals = Principals(registry)
        operator = principals.create(PrincipalKind.OPERATOR, tenant=TENANT, name="dispatch")
        facility = principals.create(
            PrincipalKind.FACILITY, tenant=TENANT, sites=["depot-1"], name="depot"
        )
    ingest = IngestService(ingest_settings(broker, influxd.url, database, folder))
    alerts = AlertService(alert_settings)
    api = ApiServer(
        ApiSettings(
            host="127.0.0.1",
            port=0,
            environment="test",
            store=store,
            registry=registry_settings,
            alerts=AlertsDatabaseSettings(url=alert_settings.database.url),
            console=ConsoleSettings(rules_dir=alert_settings.rules_dir, stream_poll_s=0.2),
        )
    )
    publisher = Publisher(broker)
    ingest.start()
    try:
        alerts.start()
        try:
            assert alerts.client is not None
            assert alerts.client.wait_subscribed(10)
            api.start()
            try:
                with MediaServer() as media:
                    yield Stack(
                        api.url,
                        operator.token,
                        facility.token,
                        Bus(publisher, {}),
                        media,
                        store,
                    )
            finally:
                api.stop()
        finally:
            alerts.stop()
    finally:
        publisher.close()
        ingest.stop()
