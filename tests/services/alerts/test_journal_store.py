"""The bus journal in the alert database: kept with the outcome it decided, read back in
order, pruned by age; a database of the previous schema version gains it on open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, inspect, select

from iotmon_alerts.adapters.database import AlertsDatabase
from iotmon_alerts.adapters.schema import (
    META_REVISION,
    META_SCHEMA_VERSION,
    SCHEMA_VERSION,
    AlertRow,
    Base,
    MetaRow,
)
from iotmon_alerts.domain.model import JournalRecord
from tests.services.alerts.support import database_settings

T0 = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


def _record(tenant: str, seconds: float, line: str) -> JournalRecord:
    return JournalRecord(tenant, T0 + timedelta(seconds=seconds), "event", line)


def test_journal_lines_are_kept_with_the_outcome_read_in_order_and_pruned(
    tmp_path: Path,
) -> None:
    with AlertsDatabase(database_settings(tmp_path)) as database:
        database.record([], [], [], {}, T0, [_record("demo", 5, "a"), _record("acme", 5, "x")])
        # written in the order taken, even when a later input carries an earlier time
        database.record([], [], [], {}, T0, [_record("demo", 9, "b"), _record("demo", 7, "c")])
        assert [r.line for r in database.journal("demo", T0)] == ["a", "b", "c"]
        assert [r.line for r in database.journal("demo", T0 + timedelta(seconds=6))] == ["b", "c"]
        assert database.journal("demo", T0)[0] == _record("demo", 5, "a")
        assert database.prune_journal(T0 + timedelta(seconds=8)) == 3
        assert [r.line for r in database.journal("demo", T0)] == ["b"]
        assert database.journal("acme", T0) == []


def test_a_version_1_database_gains_the_journal_and_keeps_its_alerts(tmp_path: Path) -> None:
    settings = database_settings(tmp_path)
    engine = create_engine(settings.url.get_secret_value())
    version_1 = [t for name, t in Base.metadata.tables.items() if name != "bus_journal"]
    with engine.begin() as connection:
        Base.metadata.create_all(connection, tables=version_1)
        connection.execute(
            insert(MetaRow),
            [{"key": META_SCHEMA_VERSION, "value": 1}, {"key": META_REVISION, "value": 0}],
        )
        connection.execute(
            insert(AlertRow),
            [
                {
                    "tenant": "demo", "fingerprint": "f1", "rule": "hot", "manager": "rules",
                    "state": "firing", "active": True, "severity": "warning", "summary": "hot",
                    "details": "{}", "targets": "[]", "starts_at": T0, "ts": T0,
                }
            ],
        )  # fmt: skip
    engine.dispose()
    with AlertsDatabase(settings) as database:
        assert [s.alert.fingerprint for s in database.active_alerts()] == ["f1"]
        database.record([], [], [], {}, T0, [_record("demo", 1, "a")])
        assert [r.line for r in database.journal("demo", T0)] == ["a"]
    engine = create_engine(settings.url.get_secret_value())
    with engine.connect() as connection:
        assert "bus_journal" in inspect(connection).get_table_names()
        version = connection.execute(
            select(MetaRow.value).where(MetaRow.key == META_SCHEMA_VERSION)
        ).scalar_one()
    engine.dispose()
    assert version == SCHEMA_VERSION == 2
