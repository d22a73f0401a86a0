"""The caches that keep busy clients off the store and the registry: what they save, how
stale they may be, and that failures are never kept."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from iotmon_api import Settings, create_app
from iotmon_api.latest_cache import LatestCache
from iotmon_api.principal_cache import PrincipalCache
from iotmon_contract import ValidatedReading
from iotmon_contract.validation import to_ns
from iotmon_registry import Principal, PrincipalKind, Principals, Registry
from iotmon_storage import StoreSettings, StoreUnavailable, TimeSeriesStore, open_store
from iotmon_tools.localstack import free_port
from tests.services.api.conftest import Tokens, at, bearer

LATEST = "/api/v1/devices/acme/env-1/latest"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sqlite_store(tmp_path: Path) -> TimeSeriesStore:
    store = open_store(StoreSettings(backend="sqlite", sqlite_path=tmp_path / "c.db"))
    store.ensure_schema()
    store.write_readings(
        [ValidatedReading("acme", "env-1", "temperature", 20.0, "degC", to_ns(at(0)))], None
    )
    return store


def test_concurrent_requests_for_a_device_share_one_store_read(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    clock = Clock()
    cache = LatestCache(store, ttl_s=1.0, clock=clock)

    async def burst() -> set[float]:
        answers = await asyncio.gather(*(cache.get("acme", "env-1") for _ in range(20)))
        return {readings[0].value for readings in answers}

    async def scenario() -> None:
        assert await burst() == {20.0}
        assert cache.store_reads == 1
        store.write_readings(
            [ValidatedReading("acme", "env-1", "temperature", 21.0, "degC", to_ns(at(1)))],
            None,
        )
        clock.now += 0.4  # fresh: the old answer, nothing asked
        assert await burst() == {20.0}
        await asyncio.sleep(0.05)
        assert cache.store_reads == 1
        clock.now += 0.2  # past half its time: still the old answer, one read behind it
        assert await burst() == {20.0}
        for _ in range(200):
            if await burst() == {21.0}:
                break
            await asyncio.sleep(0.01)
        assert await burst() == {21.0}
        assert cache.store_reads == 2
        clock.now += 1.1  # past its time: waited for, once
        assert await burst() == {21.0}
        assert cache.store_reads == 3

    asyncio.run(scenario())
    store.close()


def test_a_store_failure_reaches_every_waiter_and_is_not_kept() -> None:
    store = open_store(StoreSettings(url=f"http://127.0.0.1:{free_port()}", timeout_s=2))
    cache = LatestCache(store, ttl_s=60.0)

    async def burst() -> list[BaseException | object]:
        return await asyncio.gather(
            *(cache.get("acme", "env-1") for _ in range(5)), return_exceptions=True
        )

    assert all(isinstance(answer, StoreUnavailable) for answer in asyncio.run(burst()))
    assert asyncio.run(burst())  # asked again: nothing was kept
    assert cache.store_reads == 2
    store.close()


def app_client(
    tmp_path: Path,
    store: TimeSeriesStore,
    registry: Registry,
    token: str,
    monotonic: Clock,
    **settings: float,
) -> TestClient:
    values = Settings(
        store=StoreSettings(backend="sqlite", sqlite_path=tmp_path / "c.db"),
        **settings,  # type: ignore[arg-type]
    )
    app = create_app(values, store, registry=registry, monotonic=monotonic)
    return TestClient(app, headers=bearer(token))


@pytest.mark.parametrize("ttl", [0.0, 0.5])
def test_latest_is_at_most_the_cache_time_behind_the_store(
    tmp_path: Path, registry: Registry, tokens: Tokens, ttl: float
) -> None:
    store = sqlite_store(tmp_path)
    clock = Clock()
    with app_client(tmp_path, store, registry, tokens.acme, clock, latest_cache_s=ttl) as client:
        assert client.get(LATEST).json()["data"][0]["value"] == 20.0
        store.write_readings(
            [ValidatedReading("acme", "env-1", "temperature", 21.0, "degC", to_ns(at(1)))], None
        )
        clock.now += ttl * 0.9  # within the cache time: the old answer when there is one
        first = client.get(LATEST).json()["data"][0]["value"]
        assert first == (20.0 if ttl else 21.0)
        clock.now += ttl * 0.2  # past it: asked again
        assert client.get(LATEST).json()["data"][0]["value"] == 21.0
    store.close()


@pytest.mark.parametrize("ttl", [0.0, 0.5])
def test_a_revoked_token_is_refused_within_the_auth_cache_time(
    tmp_path: Path, registry: Registry, tokens: Tokens, ttl: float
) -> None:
    store = sqlite_store(tmp_path)
    (info,) = [t for t in Principals(registry).tokens("acme") if t.principal.kind == "operator"]
    clock = Clock()
    with app_client(tmp_path, store, registry, tokens.acme, clock, auth_cache_s=ttl) as client:
        assert client.get(LATEST).status_code == 200
        Principals(registry).revoke(info.token_id)
        clock.now += ttl * 0.9
        refused_at_once = client.get(LATEST).status_code == 401
        assert refused_at_once == (ttl == 0)
        clock.now += ttl * 0.2  # past it: asked again
        response = client.get(LATEST)
        assert response.status_code == 401
        assert response.json()["detail"] == "the token was revoked"
    store.close()


def test_an_expiring_token_is_refused_on_time_even_when_cached(
    tmp_path: Path, registry: Registry
) -> None:
    issued = Principals(registry, clock=lambda: at(0)).create(
        PrincipalKind.OPERATOR, tenant="acme", expires_in=timedelta(minutes=5)
    )
    store = sqlite_store(tmp_path)
    now = {"at": at(1)}
    settings = Settings(
        store=StoreSettings(backend="sqlite", sqlite_path=tmp_path / "c.db"), auth_cache_s=60
    )
    app = create_app(settings, store, registry=registry, clock=lambda: now["at"])
    with TestClient(app, headers=bearer(issued.token)) as client:
        assert client.get(LATEST).status_code == 200
        now["at"] = at(5)  # the token's expiry, well within the minute it is kept
        response = client.get(LATEST)
        assert response.status_code == 401
        assert response.json()["detail"].startswith("the token expired at ")
    store.close()


def test_concurrent_lookups_of_one_token_share_one_registry_query(registry: Registry) -> None:
    """When a busy client's entry ages, one lookup runs, not one per request in flight."""
    issued = Principals(registry).create(PrincipalKind.OPERATOR, tenant="acme")
    principals = Principals(registry)
    clock = Clock()
    cache = PrincipalCache(1.0, now=lambda: at(0), clock=clock)
    lookups = []

    async def load() -> tuple[Principal, datetime | None]:
        lookups.append(1)
        check = await asyncio.to_thread(principals.authenticate, issued.token)
        assert check.principal is not None
        return check.principal, check.expires_at

    async def burst() -> set[str | None]:
        found = await asyncio.gather(*(cache.get_or_load(issued.token, load) for _ in range(30)))
        return {principal.tenant for principal in found}

    async def scenario() -> None:
        assert await burst() == {"acme"}
        assert len(lookups) == 1
        clock.now += 0.4
        assert await burst() == {"acme"}
        await asyncio.sleep(0.05)
        assert len(lookups) == 1
        clock.now += 0.2  # past half its time: answered at once, looked up once behind
        assert await burst() == {"acme"}
        await asyncio.sleep(0.2)
        assert len(lookups) == 2
        clock.now += 1.1  # past its time: waited for, once
        assert await burst() == {"acme"}
        assert len(lookups) == 3

    asyncio.run(scenario())


def test_a_token_revoked_is_dropped_by_the_lookup_behind_it(registry: Registry) -> None:
    issued = Principals(registry).create(PrincipalKind.OPERATOR, tenant="acme")
    principals = Principals(registry)
    clock = Clock()
    cache = PrincipalCache(1.0, now=lambda: at(0), clock=clock)

    async def load() -> tuple[Principal, datetime | None]:
        check = await asyncio.to_thread(principals.authenticate, issued.token)
        if check.principal is None:
            raise PermissionError(str(check.failure))
        return check.principal, check.expires_at

    async def scenario() -> None:
        await cache.get_or_load(issued.token, load)
        principals.revoke(issued.info.token_id)
        clock.now += 0.6  # still within its time: taken, and looked up behind
        assert (await cache.get_or_load(issued.token, load)).tenant == "acme"
        await asyncio.sleep(0.2)
        with pytest.raises(PermissionError, match="revoked"):
            await cache.get_or_load(issued.token, load)

    asyncio.run(scenario())
