"""The console's routes on a real store and registry: the page and its files, the live
alert stream (read over a real loopback connection), bus views and camera events, each
limited to the token's scope, with bad requests answered as counted RFC 9457 problems."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_alerts.domain.model import Alert, AlertChange, Subject
from iotmon_api import ApiServer, Settings, create_app
from iotmon_api.console.settings import ConsoleSettings
from iotmon_contract import AlertSeverity, AlertState
from iotmon_contract.events import parse_event
from iotmon_contract.validation import ValidatedEvent, to_ns
from iotmon_registry import Registry
from iotmon_storage import TimeSeriesStore
from tests.services.api.conftest import Tokens, at, bearer
from tests.utils.bus import FLEET_YAML, Day
from tests.utils.prometheus import parse

RULES = "tenant: acme\nbus:\n  fleet: ../fleet.yaml\n"


# -- fixtures -------------------------------------------------------------------------


def _rules_dir(folder: Path) -> Path:
    rules = folder / "rules"
    rules.mkdir()
    (rules / "acme.yaml").write_text(RULES)
    (folder / "fleet.yaml").write_text(FLEET_YAML.replace("tenant: demo", "tenant: acme"))
    return rules


def _bus_day(store: TimeSeriesStore) -> None:
    """Bus 1's morning (T0 07:00): Cid's alighting read is missed, the sweep hears Cid."""
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"], sweep=[("TAG-CID", -52.0)])
    events = []
    for item in day.items():
        assert item.event is not None
        payload = item.event.payload
        assert not isinstance(payload, str)  # a DeviceState: no status lines in this day
        events.append(
            ValidatedEvent(
                "acme", item.event.device, payload.type, payload.seq, to_ns(payload.ts), payload
            )
        )
    store.write_events(events)


def _camera(store: TimeSeriesStore, device: str, seq: int, minutes: float, kind: str) -> None:
    body: dict[str, Any] = {"type": kind, "ts": at(minutes).isoformat(), "seq": seq}
    if kind == "detection":
        body |= {"label": "person", "confidence": 0.9, "box": [0.1, 0.1, 0.2, 0.2],
                 "snapshot_url": f"http://video.local/media/{device}/{seq}.jpg"}  # fmt: skip
    else:
        body |= {"tag": "TAG-X", "rssi": -50.0}
    event = parse_event(json.dumps(body))
    store.write_events([ValidatedEvent("acme", device, kind, seq, to_ns(event.ts), event)])


@pytest.fixture
def console(
    settings: Settings,
    store: TimeSeriesStore,
    registry: Registry,
    tokens: Tokens,
    alerts_database: AlertsDatabase,
    tmp_path: Path,
) -> Iterator[TestClient]:
    registry.add_device("acme", "bus-1-door", site="plant-1")
    _bus_day(store)
    _camera(store, "env-1", 1, 2, "detection")
    _camera(store, "env-2", 1, 3, "detection")
    _camera(store, "env-1", 2, 4, "detection")
    _camera(store, "env-1", 3, 5, "tag_read")  # not a camera event
    configured = settings.model_copy(
        update={"console": ConsoleSettings(rules_dir=_rules_dir(tmp_path))}
    )
    app = create_app(
        configured, store, registry=registry, alerts=alerts_database, clock=lambda: at(10)
    )
    with TestClient(app, headers=bearer(tokens.acme)) as client:
        yield client


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# -- the page ---------------------------------------------------------------------------


def test_the_page_and_its_files_are_served_with_a_strict_policy(console: TestClient) -> None:
    page = console.get("/console", headers={"Authorization": ""})
    assert page.status_code == 200
    assert 'src="/console/static/console.js"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    script = console.get("/console/static/console.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "text/event-stream" in script.text
    assert console.get("/console/static/console.css").status_code == 200
    missing = _problem(console.get("/console/static/app.py"), 404)
    assert "app.py" in missing["detail"]
    assert console.get("/console/static/..%2Fapp.py").status_code == 404


# -- buses --------------------------------------------------------------------------------


def test_an_operator_sees_every_bus_with_who_is_aboard_and_the_last_sweep(
    console: TestClient,
) -> None:
    answer = console.get("/api/v1/console/buses").json()
    views = {v["bus"]: v for v in answer["data"]}
    assert set(views) == {"bus-1", "bus-2"}
    bus = views["bus-1"]
    assert bus["phase"] == "ended"
    assert bus["run_end_place"] == "depot-1"
    assert [c["child"] for c in bus["aboard"]] == ["cid"]
    sweep = bus["last_sweep"]
    assert (sweep["sweep_id"], sweep["complete"], sweep["after_run_end"]) == ("s1", True, True)
    assert [(r["child"], r["inside"]) for r in sweep["reads"]] == [("cid", True)]
    assert views["bus-2"]["phase"] == "unknown"
    assert views["bus-2"]["events"] == 0


def test_a_facility_sees_only_the_buses_with_a_device_on_its_sites(
    console: TestClient, tokens: Tokens
) -> None:
    plant1 = console.get("/api/v1/console/buses", headers=bearer(tokens.plant1)).json()
    assert [v["bus"] for v in plant1["data"]] == ["bus-1"]
    plant2 = console.get("/api/v1/console/buses", headers=bearer(tokens.plant2)).json()
    assert plant2["data"] == []


def test_buses_refuse_guardians_other_tenants_and_a_service_token_without_a_tenant(
    console: TestClient, tokens: Tokens
) -> None:
    _problem(console.get("/api/v1/console/buses", headers=bearer(tokens.mum)), 403)
    _problem(console.get("/api/v1/console/buses", params={"tenant": "other"}), 403)
    _problem(console.get("/api/v1/console/buses", headers={"Authorization": ""}), 401)
    service = bearer(tokens.service)
    unnamed = _problem(console.get("/api/v1/console/buses", headers=service), 422)
    assert unnamed["errors"][0]["loc"] == ["query", "tenant"]
    named = console.get("/api/v1/console/buses", params={"tenant": "acme"}, headers=service)
    assert named.json()["count"] == 2
    other = console.get("/api/v1/console/buses", params={"tenant": "other"}, headers=service)
    assert other.json()["count"] == 0  # no rule file for it: no buses


def test_a_broken_fleet_file_is_a_problem_naming_it(console: TestClient, tmp_path: Path) -> None:
    (tmp_path / "fleet.yaml").write_text("tenant: acme\nbuses: 7\n")
    problem = _problem(console.get("/api/v1/console/buses"), 503)
    assert problem["type"] == "urn:iotmon:problem:console-misconfigured"
    assert "fleet.yaml" in problem["detail"]


# -- cameras --------------------------------------------------------------------------------


def test_camera_events_newest_first_within_the_scope(console: TestClient, tokens: Tokens) -> None:
    events = console.get("/api/v1/console/cameras").json()["data"]
    assert [(e["device"], e["seq"]) for e in events] == [("env-1", 2), ("env-2", 1), ("env-1", 1)]
    assert events[0]["snapshot_url"] == "http://video.local/media/env-1/2.jpg"
    assert events[0]["ts"] == at(4).isoformat().replace("+00:00", "Z")
    newest = console.get("/api/v1/console/cameras", params={"limit": 1}).json()["data"]
    assert [(e["device"], e["seq"]) for e in newest] == [("env-1", 2)]
    plant1 = console.get("/api/v1/console/cameras", headers=bearer(tokens.plant1)).json()
    assert {e["device"] for e in plant1["data"]} == {"env-1"}
    _problem(
        console.get("/api/v1/console/cameras", params={"device": "env-2"},
                    headers=bearer(tokens.plant1)), 403,
    )  # fmt: skip
    _problem(console.get("/api/v1/console/cameras", headers=bearer(tokens.dad)), 403)


def test_bad_parameters_are_problems_naming_them_and_are_counted(console: TestClient) -> None:
    for params, field in (({"limit": 0}, "limit"), ({"device": "a b"}, "device"),
                          ({"tenant": "-"}, "tenant")):  # fmt: skip
        problem = _problem(console.get("/api/v1/console/cameras", params=params), 422)
        assert problem["errors"][0]["loc"] == ["query", field]
    _problem(console.get("/api/v1/console/alerts/stream", params={"after": -1}), 422)
    _problem(console.get("/api/v1/console/alerts/stream", headers={"Last-Event-ID": "soon"}), 422)
    metrics = parse(console.get("/metrics").text)
    labels = {"method": "GET", "route": "/api/v1/console/cameras", "status": "422"}
    assert metrics.value("iotmon_api_requests_total", labels) == 3
    stream = {"method": "GET", "route": "/api/v1/console/alerts/stream", "status": "422"}
    assert metrics.value("iotmon_api_requests_total", stream) == 2


# -- the live alert stream ---------------------------------------------------------------


@dataclass
class Frame:
    event: str
    id: int | None
    data: Any


class StreamReader:
    """One stream read on its own thread over a real connection, frames collected."""

    def __init__(self, url: str, token: str, **headers: str) -> None:
        self.frames: list[Frame] = []
        self.status: int | None = None
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._read, args=(url, {**bearer(token), **headers}), daemon=True
        )
        self._thread.start()

    def _read(self, url: str, headers: dict[str, str]) -> None:
        # The server may close the stream mid-response (its shutdown).
        with contextlib.suppress(httpx.HTTPError):
            self._read_frames(url, headers)

    def _read_frames(self, url: str, headers: dict[str, str]) -> None:
        with httpx.stream("GET", url, headers=headers, timeout=30) as response:
            self.status = response.status_code
            event, event_id, data = "message", None, []
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    with self._changed:
                        self.frames.append(Frame(event, event_id, json.loads("\n".join(data))))
                        self._changed.notify_all()
                    event, event_id, data = "message", None, []

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Frame]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.frames) >= count, timeout), self.frames
            return list(self.frames)

    def close(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        """Wait for the server to end the stream (the read must end, not hang)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream is still open"


def _change(database: AlertsDatabase, tenant: str, fingerprint: str, subject: Subject,
            state: AlertState = AlertState.FIRING) -> None:  # fmt: skip
    alert = Alert(
        tenant=tenant, fingerprint=fingerprint, rule="hot", state=state,
        severity=AlertSeverity.WARNING, subject=subject, summary=fingerprint,
        starts_at=at(3), ts=at(3),
    )  # fmt: skip
    database.record([AlertChange(alert, notify=True)], [], [], {}, at(3))


@pytest.fixture
def served(
    settings: Settings, store: TimeSeriesStore, registry: Registry, alerts_database: AlertsDatabase
) -> Iterator[str]:
    configured = settings.model_copy(
        update={"port": 0, "console": ConsoleSettings(stream_poll_s=0.05, stream_keepalive_s=0.5)}
    )
    server = ApiServer(configured, store, registry=registry, alerts=alerts_database)
    server.start()
    yield server.url
    server.stop()


@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
def test_the_stream_sends_a_snapshot_then_each_change_in_scope_once(
    served: str, tokens: Tokens, alerts_database: AlertsDatabase
) -> None:
    url = f"{served}/api/v1/console/alerts/stream"
    readers = {name: StreamReader(url, getattr(tokens, name)) for name in ("acme", "plant1", "dad")}
    try:
        snapshots = {name: r.wait_for(1)[0] for name, r in readers.items()}
        assert all(s.event == "snapshot" for s in snapshots.values())
        seen = {n: {a["fingerprint"] for a in s.data["data"]} for n, s in snapshots.items()}
        assert seen == {"acme": {"fp-env1", "fp-env2", "fp-kid2"}, "plant1": {"fp-env1"},
                        "dad": {"fp-kid2"}}  # fmt: skip
        _change(alerts_database, "other", "fp-other-2", Subject(device="env-1"))
        _change(alerts_database, "acme", "fp-env2", Subject(device="env-2", site="plant-2"),
                AlertState.RESOLVED)  # fmt: skip
        _change(alerts_database, "acme", "fp-env3", Subject(device="gw-1", site="plant-1"))
        acme = readers["acme"].wait_for(3)
        assert [(f.event, f.data["fingerprint"], f.data["active"]) for f in acme[1:]] == [
            ("alert", "fp-env2", False),
            ("alert", "fp-env3", True),
        ]
        assert acme[0].id is not None
        assert acme[0].id < acme[1].id < acme[2].id  # type: ignore[operator]
        plant1 = readers["plant1"].wait_for(2)
        assert [f.data["fingerprint"] for f in plant1[1:]] == ["fp-env3"]
        # Resuming after the first change sends the second only, without a snapshot.
        resumed = StreamReader(url, tokens.acme, **{"Last-Event-ID": str(acme[1].id)})
        try:
            (frame,) = resumed.wait_for(1)
            assert (frame.event, frame.data["fingerprint"]) == ("alert", "fp-env3")
        finally:
            resumed.close()
        assert [f.event for f in readers["dad"].frames] == ["snapshot"]
    finally:
        for reader in readers.values():
            reader.close()


@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
def test_the_stream_refuses_before_it_starts(served: str, tokens: Tokens) -> None:
    url = f"{served}/api/v1/console/alerts/stream"
    other = httpx.get(url, params={"tenant": "other"}, headers=bearer(tokens.acme))
    _problem(other, 403)
    _problem(httpx.get(url, headers=bearer("nope")), 401)


@pytest.mark.parametrize("store_settings", ["sqlite"], indirect=True)
def test_an_open_stream_does_not_hold_the_server_up(
    settings: Settings,
    store: TimeSeriesStore,
    registry: Registry,
    alerts_database: AlertsDatabase,
    tokens: Tokens,
) -> None:
    """The stream never ends by itself: shutdown closes it after shutdown_grace_s."""
    configured = settings.model_copy(update={"port": 0, "shutdown_grace_s": 1})
    server = ApiServer(configured, store, registry=registry, alerts=alerts_database)
    server.start()
    reader = StreamReader(f"{server.url}/api/v1/console/alerts/stream", tokens.acme)
    reader.wait_for(1)
    stopper = threading.Thread(target=server.stop, kwargs={"timeout": 60}, daemon=True)
    stopper.start()
    stopper.join(30)
    assert not stopper.is_alive(), "the server waited for the stream to end"
    reader.join(10)
