"""Principals and tokens in a real SQLite registry: scopes, hashing, expiry, revocation."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from iotmon_registry import (
    NotFound,
    PrincipalKind,
    Principals,
    Registry,
    RegistryError,
    TokenFailure,
)
from tests.services.registry.conftest import sqlite_settings


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def principals(registry: Registry, clock: Clock) -> Principals:
    registry.add_site("acme", "plant-1")
    registry.add_site("acme", "plant-2")
    registry.add_child("acme", "kid-1", ["T1"])
    registry.add_guardian("acme", "mum", ["kid-1"])
    return Principals(registry, clock=clock)


def test_each_kind_carries_its_scope(principals: Principals) -> None:
    operator = principals.create(PrincipalKind.OPERATOR, tenant="acme", name="ops")
    facility = principals.create(
        PrincipalKind.FACILITY, tenant="acme", sites=["plant-2", "plant-1", "plant-1"]
    )
    guardian = principals.create(PrincipalKind.GUARDIAN, tenant="acme", guardian="mum")
    service = principals.create(PrincipalKind.SERVICE)
    found = {}
    for issued in (operator, facility, guardian, service):
        principal = principals.authenticate(issued.token).principal
        assert principal is not None
        assert principal.token_id == issued.info.token_id
        found[principal.kind] = principal
    assert (found[PrincipalKind.OPERATOR].tenant, found[PrincipalKind.OPERATOR].name) == (
        "acme",
        "ops",
    )
    assert found[PrincipalKind.FACILITY].sites == {"plant-1", "plant-2"}
    assert found[PrincipalKind.GUARDIAN].guardian == "mum"
    assert found[PrincipalKind.SERVICE].tenant is None


@pytest.mark.parametrize(
    ("kind", "scope", "error", "says"),
    [
        (PrincipalKind.OPERATOR, {}, RegistryError, "needs a tenant"),
        (PrincipalKind.OPERATOR, {"tenant": "nobody"}, NotFound, "tenant 'nobody'"),
        (PrincipalKind.OPERATOR, {"tenant": "acme", "sites": ["plant-1"]}, RegistryError,
         "sites belong to facility"),
        (PrincipalKind.FACILITY, {"tenant": "acme"}, RegistryError, "at least one site"),
        (PrincipalKind.FACILITY, {"tenant": "acme", "sites": ["plant-9"]}, NotFound,
         "site 'plant-9' is not registered"),
        (PrincipalKind.GUARDIAN, {"tenant": "acme"}, RegistryError, "needs a guardian"),
        (PrincipalKind.GUARDIAN, {"tenant": "acme", "guardian": "dad"}, NotFound,
         "guardian 'dad' is not registered"),
        (PrincipalKind.SERVICE, {"tenant": "acme"}, RegistryError, "every tenant"),
    ],
)  # fmt: skip
def test_scopes_that_do_not_fit_the_kind_are_refused(
    principals: Principals,
    kind: PrincipalKind,
    scope: dict[str, object],
    error: type[Exception],
    says: str,
) -> None:
    with pytest.raises(error, match=says):
        principals.create(kind, **scope)  # type: ignore[arg-type]
    assert principals.tokens() == []


def test_tokens_are_random_and_only_their_hash_is_stored(
    principals: Principals, tmp_path: Path
) -> None:
    first = principals.create(PrincipalKind.OPERATOR, tenant="acme")
    second = principals.create(PrincipalKind.OPERATOR, tenant="acme")
    assert first.token != second.token
    assert first.token.startswith(f"iotmon_{first.info.token_id}_")
    assert len(first.token) == len("iotmon_") + 12 + 1 + 43
    database = (tmp_path / "registry.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("registry.db-*")
    )
    secret = first.token.rsplit("_", 1)[1]
    assert secret.encode() not in database
    assert hashlib.sha256(first.token.encode()).hexdigest().encode() in database


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # right id, wrong secret
        lambda t: "iotmon_000000000000_" + t.rsplit("_", 1)[1],  # unknown id
        lambda t: t.upper(),
        lambda t: "",
        lambda t: "Bearer " + t,
    ],
)
def test_a_wrong_token_is_unknown(principals: Principals, mangle: object) -> None:
    issued = principals.create(PrincipalKind.OPERATOR, tenant="acme")
    assert callable(mangle)
    check = principals.authenticate(mangle(issued.token))
    assert (check.principal, check.failure) == (None, TokenFailure.UNKNOWN)


def test_lifecycle_create_use_expire_and_revoke(principals: Principals, clock: Clock) -> None:
    assert not principals.any_active()
    issued = principals.create(PrincipalKind.OPERATOR, tenant="acme", expires_in=timedelta(days=30))
    assert issued.info.expires_at == clock.now + timedelta(days=30)
    assert principals.authenticate(issued.token).principal is not None
    assert principals.any_active()
    clock.now += timedelta(days=30)
    expired = principals.authenticate(issued.token)
    assert (expired.principal, expired.failure) == (None, TokenFailure.EXPIRED)
    assert expired.expired_at == clock.now
    assert not principals.any_active()
    assert [t.state(clock.now) for t in principals.tokens()] == ["expired"]

    lasting = principals.create(PrincipalKind.SERVICE)  # no expiry
    clock.now += timedelta(days=3650)
    assert principals.authenticate(lasting.token).principal is not None
    revoked = principals.revoke(lasting.info.token_id)
    assert revoked.revoked_at == clock.now
    check = principals.authenticate(lasting.token)
    assert (check.principal, check.failure) == (None, TokenFailure.REVOKED)
    assert not principals.any_active()
    clock.now += timedelta(hours=1)
    assert principals.revoke(lasting.info.token_id).revoked_at == revoked.revoked_at
    with pytest.raises(NotFound, match="token 'nope' is not registered"):
        principals.revoke("nope")


def test_a_second_token_rotates_without_a_gap(principals: Principals) -> None:
    first = principals.create(PrincipalKind.FACILITY, tenant="acme", sites=["plant-1"])
    assert first.info.principal.id is not None
    second = principals.add_token(first.info.principal.id)
    principals.revoke(first.info.token_id)
    check = principals.authenticate(second.token)
    assert check.principal is not None
    assert check.principal.sites == {"plant-1"}
    assert check.principal.id == first.info.principal.id
    with pytest.raises(NotFound, match="principal 999"):
        principals.add_token(999)
    with pytest.raises(RegistryError, match="lifetime must be positive"):
        principals.add_token(first.info.principal.id, expires_in=timedelta(0))


def test_tokens_list_by_tenant_never_shows_secrets(principals: Principals) -> None:
    principals.create(PrincipalKind.OPERATOR, tenant="acme")
    principals.create(PrincipalKind.SERVICE)
    assert [t.principal.kind for t in principals.tokens("acme")] == [PrincipalKind.OPERATOR]
    assert len(principals.tokens()) == 2
    assert all("iotmon_" not in repr(t) for t in principals.tokens())


def test_tokens_do_not_move_the_device_revision(registry: Registry, principals: Principals) -> None:
    before = registry.revision()
    issued = principals.create(PrincipalKind.SERVICE)
    principals.revoke(issued.info.token_id)
    # Ingest reloads its gateway map when the revision moves: tokens are not its business.
    assert registry.revision() == before


def test_the_token_table_survives_a_reopen(tmp_path: Path, clock: Clock) -> None:
    settings = sqlite_settings(tmp_path / "r.db")
    with Registry(settings) as registry:
        issued = Principals(registry, clock=clock).create(PrincipalKind.SERVICE)
    with Registry(settings) as registry:
        assert Principals(registry, clock=clock).authenticate(issued.token).principal is not None
