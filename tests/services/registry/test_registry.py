"""The registry on a real SQLite file: entities, gateways and children, errors that name things."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from iotmon_registry import (
    SCHEMA_VERSION,
    Conflict,
    InvalidId,
    NotFound,
    Registry,
    RegistrySettings,
    RegistryUnavailable,
)
from tests.services.registry.conftest import sqlite_settings


def test_sites_devices_and_effective_sites(registry: Registry) -> None:
    registry.add_site("acme", "plant-1", name="Plant 1")
    registry.add_site("acme", "plant-2")
    registry.add_device("acme", "gw-1", site="plant-1")
    registry.add_device("acme", "env-1", gateway="gw-1")
    registry.add_device("acme", "env-2", gateway="gw-1", site="plant-2")
    registry.add_device("acme", "loose")
    assert registry.tenants() == ["acme"]
    devices = {d.device: d for d in registry.devices("acme")}
    assert devices["env-1"].gateway == "gw-1"
    assert devices["env-1"].site is None
    assert devices["env-1"].effective_site == "plant-1"  # inherited from its gateway
    assert devices["env-2"].effective_site == "plant-2"  # its own wins
    assert devices["loose"].effective_site is None
    assert registry.devices_on_sites("acme", ["plant-1"]) == {"gw-1", "env-1"}
    assert registry.devices_on_sites("acme", ["plant-1", "plant-2"]) == {"gw-1", "env-1", "env-2"}
    assert registry.devices_on_sites("acme", []) == set()
    assert registry.devices_on_sites("other", ["plant-1"]) == set()
    assert registry.gateway_map().gateways == {("acme", "env-1"): "gw-1", ("acme", "env-2"): "gw-1"}


def test_same_ids_in_two_tenants_do_not_meet(registry: Registry) -> None:
    registry.add_device("acme", "gw-1")
    registry.add_device("beta", "gw-1")
    registry.add_device("beta", "env-1", gateway="gw-1")
    with pytest.raises(NotFound, match="tenant 'acme': gateway 'gw-2' is not registered"):
        registry.add_device("acme", "env-1", gateway="gw-2")
    assert registry.gateway_map().gateways == {("beta", "env-1"): "gw-1"}
    assert [d.device for d in registry.devices("acme")] == ["gw-1"]


def test_refusals_name_what_and_where(registry: Registry) -> None:
    registry.add_site("acme", "plant-1")
    registry.add_device("acme", "gw-1")
    with pytest.raises(Conflict, match="tenant 'acme': site 'plant-1' is already registered"):
        registry.add_site("acme", "plant-1")
    with pytest.raises(Conflict, match="device 'gw-1' is already registered"):
        registry.add_device("acme", "gw-1")
    with pytest.raises(NotFound, match="site 'plant-9' is not registered"):
        registry.add_device("acme", "env-1", site="plant-9")
    with pytest.raises(Conflict, match="cannot be its own gateway"):
        registry.add_device("acme", "env-1", gateway="env-1")
    with pytest.raises(InvalidId, match="device id 'Env 1' is not valid"):
        registry.add_device("acme", "Env 1")
    with pytest.raises(InvalidId, match="tenant id 'ACME' is not valid"):
        registry.add_site("ACME", "x")
    with pytest.raises(InvalidId, match="tag id 'no spaces' is not valid"):
        registry.add_child("acme", "kid-1", ["no spaces"])
    # Nothing half-written by the refusals above.
    assert [d.device for d in registry.devices()] == ["gw-1"]
    assert registry.children() == []


def test_import_gateway_adds_moves_and_releases(registry: Registry) -> None:
    registry.add_site("acme", "plant-1")
    registry.add_device("acme", "gw-old")
    registry.add_device("acme", "env-3", gateway="gw-old")
    first = registry.import_gateway("acme", "gw-1", ["env-1", "env-2", "env-3"], site="plant-1")
    assert (first.children, first.added, first.moved, first.released) == (3, 2, 1, 0)
    again = registry.import_gateway("acme", "gw-1", ["env-1", "env-2", "env-3"])
    assert (again.added, again.moved, again.released) == (0, 0, 0)
    shrunk = registry.import_gateway("acme", "gw-1", ["env-1"])
    assert (shrunk.added, shrunk.moved, shrunk.released) == (0, 0, 2)
    devices = {d.device: d for d in registry.devices("acme")}
    assert devices["env-1"].gateway == "gw-1"
    assert devices["env-1"].effective_site == "plant-1"
    assert devices["env-2"].gateway is None  # released, still registered
    assert devices["gw-1"].site == "plant-1"


def test_import_refuses_a_gateway_loop(registry: Registry) -> None:
    registry.import_gateway("acme", "gw-top", ["gw-mid"])
    registry.import_gateway("acme", "gw-mid", ["env-1"])
    with pytest.raises(Conflict, match="'gw-top' is upstream of gateway 'gw-mid'"):
        registry.import_gateway("acme", "gw-mid", ["env-1", "gw-top"])
    with pytest.raises(Conflict, match="declared as its own child"):
        registry.import_gateway("acme", "gw-mid", ["gw-mid"])


def test_children_tags_and_guardians(registry: Registry) -> None:
    registry.add_child("acme", "kid-1", ["E200341201", "aa:bb:cc:dd:ee:01"], name="Ada")
    registry.add_child("acme", "kid-2", ["E200341202"])
    registry.add_child("acme", "kid-3", [])
    with pytest.raises(Conflict, match="tag 'E200341201' already belongs to child 'kid-1'"):
        registry.add_child("acme", "kid-4", ["E200341201"])
    registry.add_guardian("acme", "mum", ["kid-1", "kid-2"])
    registry.add_guardian("acme", "dad", ["kid-1"])
    with pytest.raises(NotFound, match="child 'kid-9' is not registered"):
        registry.add_guardian("acme", "aunt", ["kid-9"])
    assert registry.guardian("acme", "aunt") is None
    kid = registry.child("acme", "kid-1")
    assert kid is not None
    assert kid.tags == ("E200341201", "aa:bb:cc:dd:ee:01")
    assert kid.name == "Ada"
    assert [c.child for c in registry.children("acme", guardian="mum")] == ["kid-1", "kid-2"]
    assert [c.child for c in registry.children("acme", guardian="dad")] == ["kid-1"]
    assert registry.children("acme", guardian="nobody") == []
    assert {g.guardian: g.children for g in registry.guardians("acme")} == {
        "dad": ("kid-1",),
        "mum": ("kid-1", "kid-2"),
    }
    assert registry.child("other", "kid-1") is None


def test_every_change_bumps_the_revision_and_reads_do_not(registry: Registry) -> None:
    start = registry.revision()
    registry.add_device("acme", "gw-1")
    registry.import_gateway("acme", "gw-1", ["env-1"])
    assert registry.revision() == start + 2
    registry.devices()
    registry.gateway_map()
    assert registry.revision() == start + 2
    with pytest.raises(Conflict):
        registry.add_device("acme", "gw-1")
    assert registry.revision() == start + 2  # a refused change changes nothing
    assert registry.gateway_map().revision == start + 2


def test_a_second_process_sees_changes_and_the_file_persists(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path / "nested" / "dir" / "registry.db")
    with Registry(settings) as writer, Registry(settings) as reader:
        writer.import_gateway("acme", "gw-1", ["env-1"])
        assert reader.gateway_map().gateways == {("acme", "env-1"): "gw-1"}
    with Registry(settings) as reopened:
        assert reopened.schema_version_found == SCHEMA_VERSION
        assert [d.device for d in reopened.devices()] == ["env-1", "gw-1"]


def test_foreign_keys_hold_in_sqlite(registry: Registry, tmp_path: Path) -> None:
    registry.add_device("acme", "gw-1")
    # A writer that bypasses Registry still cannot point a device at another tenant's gateway.
    with registry.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            raw.execute(
                "INSERT INTO devices (tenant_id, id, name, gateway_id) "
                "VALUES ('acme', 'x', '', 'gw-missing')"
            )


def test_unreachable_database_is_unavailable_naming_it_without_password() -> None:
    settings = RegistrySettings(
        url=SecretStr("sqlite:////proc/definitely/not/writable/registry.db")
    )
    with pytest.raises(RegistryUnavailable, match="registry sqlite:////proc/definitely"):
        Registry(settings).open()
    url = RegistrySettings(url=SecretStr("postgresql://iotmon:hunter2@db.example/iotmon"))
    assert "hunter2" not in url.display_url()
    assert "db.example" in url.display_url()


def test_settings_refuse_a_non_url_without_echoing_it() -> None:
    with pytest.raises(ValidationError, match="not a SQLAlchemy database URL") as caught:
        RegistrySettings(url=SecretStr("::secret-not-a-url::"))
    assert "secret-not-a-url" not in str(caught.value)


def test_remove_device_releases_its_children_and_moves_the_revision(registry: Registry) -> None:
    registry.import_gateway("acme", "gw-1", ["env-1", "env-2"])
    registry.add_device("acme", "env-9")
    before = registry.revision()
    removed = registry.remove_device("acme", "gw-1")
    assert removed.device == "gw-1"
    assert registry.revision() > before
    assert registry.device("acme", "gw-1") is None
    assert {d.device: d.gateway for d in registry.devices("acme")} == {
        "env-1": None,
        "env-2": None,
        "env-9": None,
    }
    assert registry.gateway_map().gateways == {}
    with pytest.raises(NotFound, match="device 'gw-1' is not registered"):
        registry.remove_device("acme", "gw-1")
    registry.remove_device("acme", "env-9")
    assert [d.device for d in registry.devices("acme")] == ["env-1", "env-2"]
