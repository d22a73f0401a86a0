"""API test fixtures: a real store (influxd or SQLite) filled through its write methods, a real
SQLite registry with sites, gateways, children and a token of every kind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_alerts.config import AlertsDatabaseSettings
from iotmon_alerts.domain.model import Alert, AlertChange, NoticeOut, Role, Subject, Target
from iotmon_api import Settings, create_app
from iotmon_contract import (
    AlertSeverity,
    AlertState,
    DeadLetterReason,
    DeviceState,
    ValidatedReading,
)
from iotmon_contract.validation import ContractViolation, to_ns
from iotmon_registry import PrincipalKind, Principals, Registry, RegistrySettings
from iotmon_storage import StatusEvent, StoreSettings, TimeSeriesStore, open_store
from iotmon_tools.localstack import InfluxdProcess

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
"""Start of the test data: readings every minute for ten minutes."""


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def reading(
    device: str, metric: str, value: float, minutes: float, unit: str | None = "degC"
) -> ValidatedReading:
    return ValidatedReading("acme", device, metric, value, unit, to_ns(at(minutes)))


def fill(store: TimeSeriesStore) -> None:
    """env-1: temperature 20..29 and humidity; env-2: status only; other/env-1: one reading."""
    store.write_readings(
        [reading("env-1", "temperature", 20.0 + m, m) for m in range(10)]
        + [reading("env-1", "humidity", 40.0 + m, m, unit="%") for m in range(0, 10, 2)],
        seen_at_ns=to_ns(at(10)),
    )
    store.write_readings(
        [ValidatedReading("other", "env-1", "co2", 800.0, "ppm", to_ns(at(3)))],
        seen_at_ns=to_ns(at(3)),
    )
    store.write_statuses(
        [
            StatusEvent("acme", "env-1", DeviceState.ONLINE, to_ns(at(0))),
            StatusEvent("acme", "env-2", DeviceState.ONLINE, to_ns(at(1))),
            StatusEvent("acme", "env-2", DeviceState.OFFLINE, to_ns(at(5))),
        ]
    )
    letters = [
        ContractViolation(reason, f"detail {i}").dead_letter(
            "ingest", f"iotmon/v1/acme/env-{i}/telemetry", b"{bad"
        )
        for i, reason in enumerate([DeadLetterReason.NOT_JSON, DeadLetterReason.SCHEMA])
    ]
    store.write_dead_letters(letters)


@pytest.fixture(params=["influxdb", "sqlite"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSettings:
    if request.param == "influxdb":
        influxd: InfluxdProcess = request.getfixturevalue("influxd")
        return StoreSettings(url=influxd.url, database=f"api_{uuid.uuid4().hex[:12]}")
    return StoreSettings(backend="sqlite", sqlite_path=tmp_path / "api.db")


@pytest.fixture
def store(store_settings: StoreSettings) -> Iterator[TimeSeriesStore]:
    opened = open_store(store_settings)
    opened.ensure_schema()
    fill(opened)
    yield opened
    opened.close()


def registry_settings(folder: Path) -> RegistrySettings:
    return RegistrySettings(url=SecretStr(f"sqlite:///{folder / 'registry.db'}"))


def fill_registry(registry: Registry) -> None:
    """acme: plant-1 holds gw-1 and its child env-1; plant-2 holds env-2; env-9 is on no site.
    Children kid-1 (mum's) and kid-2 (dad's and mum's); other: env-1, kid-9."""
    registry.add_site("acme", "plant-1")
    registry.add_site("acme", "plant-2")
    registry.add_device("acme", "gw-1", site="plant-1")
    registry.add_device("acme", "env-1", gateway="gw-1")
    registry.add_device("acme", "env-2", site="plant-2")
    registry.add_device("acme", "env-9")
    registry.add_child("acme", "kid-1", ["E2001"], name="Ada")
    registry.add_child("acme", "kid-2", ["E2002", "E2003"])
    registry.add_guardian("acme", "mum", ["kid-1", "kid-2"])
    registry.add_guardian("acme", "dad", ["kid-2"])
    registry.add_device("other", "env-1")
    registry.add_child("other", "kid-9", ["X1"])


@dataclass(frozen=True)
class Tokens:
    """A valid token of every kind, plus an expired and a revoked one."""

    service: str
    acme: str
    other: str
    plant1: str
    plant2: str
    mum: str
    dad: str
    expired: str
    revoked: str


def issue_tokens(registry: Registry) -> Tokens:
    """Tokens issued at at(0); the expired one lived five minutes (the app's clock says at(10))."""
    principals = Principals(registry, clock=lambda: at(0))

    def token(kind: PrincipalKind, **scope: object) -> str:
        return principals.create(kind, **scope).token  # type: ignore[arg-type]

    revoked = principals.create(PrincipalKind.SERVICE)
    principals.revoke(revoked.info.token_id)
    return Tokens(
        service=token(PrincipalKind.SERVICE),
        acme=token(PrincipalKind.OPERATOR, tenant="acme"),
        other=token(PrincipalKind.OPERATOR, tenant="other"),
        plant1=token(PrincipalKind.FACILITY, tenant="acme", sites=["plant-1"]),
        plant2=token(PrincipalKind.FACILITY, tenant="acme", sites=["plant-2"]),
        mum=token(PrincipalKind.GUARDIAN, tenant="acme", guardian="mum"),
        dad=token(PrincipalKind.GUARDIAN, tenant="acme", guardian="dad"),
        expired=token(PrincipalKind.SERVICE, expires_in=timedelta(minutes=5)),
        revoked=revoked.token,
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry(registry_settings(tmp_path)) as opened:
        fill_registry(opened)
        yield opened


@pytest.fixture
def tokens(registry: Registry) -> Tokens:
    return issue_tokens(registry)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def settings(store_settings: StoreSettings, tmp_path: Path) -> Settings:
    return Settings(
        store=store_settings,
        registry=registry_settings(tmp_path),
        alerts=AlertsDatabaseSettings(url=SecretStr(f"sqlite:///{tmp_path / 'alerts.db'}")),
    )


@pytest.fixture
def client(
    settings: Settings,
    store: TimeSeriesStore,
    registry: Registry,
    tokens: Tokens,
    alerts_database: AlertsDatabase,
) -> Iterator[TestClient]:
    """The app on real data, sending the service token (reads everything) by default."""
    app = create_app(
        settings, store, registry=registry, alerts=alerts_database, clock=lambda: at(10)
    )
    with TestClient(app, headers=bearer(tokens.service)) as test_client:
        yield test_client


def fill_alerts(database: AlertsDatabase) -> None:
    """acme: hot on env-1 (plant-1) and env-2 (plant-2); child_left_aboard of kid-2 on bus-1
    for mum and dad; a boarded notice of kid-1 for mum. other: hot on env-1."""

    def alert(tenant: str, rule: str, fingerprint: str, subject: Subject, *targets: Target) -> None:
        recipients = [{"role": t.role.value, "id": t.id} for t in targets]
        change = AlertChange(
            Alert(
                tenant=tenant,
                fingerprint=fingerprint,
                rule=rule,
                state=AlertState.FIRING,
                severity=AlertSeverity.CRITICAL,
                subject=subject,
                summary=f"{rule} {fingerprint}",
                starts_at=at(1),
                ts=at(1),
                details={"notification": {"recipients": recipients}},
                targets=targets,
            ),
            notify=True,
        )
        database.record([change], [], [], {}, at(1))

    alert("acme", "hot", "fp-env1", Subject(device="env-1", site="plant-1"))
    alert("acme", "hot", "fp-env2", Subject(device="env-2", site="plant-2"))
    alert(
        "acme", "child_left_aboard", "fp-kid2", Subject(bus="bus-1", child="kid-2"),
        Target(Role.DRIVER, "drv-1"), Target(Role.GUARDIAN, "mum"), Target(Role.GUARDIAN, "dad"),
    )  # fmt: skip
    alert("other", "hot", "fp-other", Subject(device="env-1"))
    notice = NoticeOut(
        "acme", "boarded", "n1", at(2), Subject(bus="bus-1", child="kid-1"), "kid-1 boarded",
        {}, (Target(Role.GUARDIAN, "mum"),),
    )  # fmt: skip
    database.record([], [notice], [], {}, at(2))


@pytest.fixture
def alerts_database(settings: Settings) -> Iterator[AlertsDatabase]:
    assert settings.alerts is not None
    with AlertsDatabase(settings.alerts) as database:
        fill_alerts(database)
        yield database
