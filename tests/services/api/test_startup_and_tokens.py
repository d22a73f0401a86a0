"""Start-up needs a principal (outside dev); tokens from `iotmon tokens` live, expire and die."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from iotmon_api import Settings, create_app
from iotmon_api.auth import NoPrincipal
from iotmon_registry import PrincipalKind, Principals, Registry
from iotmon_storage import StoreSettings
from iotmon_tools.cli.main import build_app
from tests.services.api.conftest import bearer, registry_settings

IOTMON_API = Path(sys.executable).with_name("iotmon-api")


def settings(tmp_path: Path, environment: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "environment": environment,
        "store": StoreSettings(backend="sqlite", sqlite_path=tmp_path / "s.db"),
        "registry": registry_settings(tmp_path),
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def tokens_cli(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    url = registry_settings(tmp_path).url.get_secret_value()
    result = CliRunner().invoke(
        build_app(), ["tokens", *args, "--url", url], env={"COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("environment", ["prod", "test"])
def test_outside_dev_the_api_refuses_to_start_without_a_principal(
    tmp_path: Path, environment: str
) -> None:
    app = create_app(settings(tmp_path, environment))
    with (
        pytest.raises(NoPrincipal, match="no API principal is configured") as refused,
        TestClient(app),
    ):
        pass
    assert "IOTMON_API_TOKEN" in str(refused.value)
    assert str(tmp_path / "registry.db") in str(refused.value)
    # Nothing minted behind our back.
    with Registry(registry_settings(tmp_path)) as registry:
        assert Principals(registry).tokens() == []


def test_outside_dev_an_expired_or_revoked_token_is_no_principal(tmp_path: Path) -> None:
    with Registry(registry_settings(tmp_path)) as registry:
        principals = Principals(registry, clock=lambda: datetime.now(UTC) - timedelta(days=2))
        principals.create(PrincipalKind.SERVICE, expires_in=timedelta(days=1))
        revoked = principals.create(PrincipalKind.SERVICE)
        principals.revoke(revoked.info.token_id)
    with (
        pytest.raises(NoPrincipal),
        TestClient(create_app(settings(tmp_path, "prod"))),
    ):
        pass


def test_outside_dev_a_static_token_or_a_registry_token_is_enough(tmp_path: Path) -> None:
    static = settings(tmp_path, "prod", token=SecretStr("a-long-random-static-token-77"))
    with TestClient(create_app(static)) as client:
        me = client.get("/api/v1/me", headers=bearer("a-long-random-static-token-77")).json()
        assert (me["kind"], me["tenant"]) == ("service", None)
    code, token, _ = tokens_cli(tmp_path, "create", "--kind", "service")
    assert code == 0
    with TestClient(create_app(settings(tmp_path, "prod"))) as client:
        assert client.get("/api/v1/me", headers=bearer(token.strip())).status_code == 200


def test_in_dev_a_bootstrap_token_is_minted_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="iotmon_api.auth")
    with TestClient(create_app(settings(tmp_path, "dev"))) as client:
        [record] = [r for r in caplog.records if "minted a service token" in r.getMessage()]
        token = next(w for w in record.getMessage().split() if w.startswith("iotmon_"))
        token = token.rstrip("'.")
        me = client.get("/api/v1/me", headers=bearer(token)).json()
        assert (me["kind"], me["name"]) == ("service", "dev bootstrap")
    with Registry(registry_settings(tmp_path)) as registry:
        [listed] = Principals(registry).tokens()
        assert listed.expires_at is not None  # a week, not forever
        assert listed.expires_at - listed.created_at == timedelta(days=7)
    caplog.clear()
    with TestClient(create_app(settings(tmp_path, "dev"))):
        pass  # the first one is still active: nothing new is minted or logged
    assert not [r for r in caplog.records if "minted" in r.getMessage()]


def test_iotmon_api_run_exits_2_naming_the_fix(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")},
        "IOTMON_API_ENVIRONMENT": "prod",
        "IOTMON_API_STORE__BACKEND": "sqlite",
        "IOTMON_API_STORE__SQLITE_PATH": str(tmp_path / "s.db"),
        "IOTMON_API_REGISTRY__URL": registry_settings(tmp_path).url.get_secret_value(),
    }
    done = subprocess.run(
        [str(IOTMON_API), "run", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no API principal is configured (environment 'prod')" in done.stderr
    assert "iotmon tokens create" in done.stderr


def test_token_lifecycle_create_use_expire_revoke(tmp_path: Path) -> None:
    with Registry(registry_settings(tmp_path)) as registry:
        registry.add_site("acme", "plant-1")
    code, out, err = tokens_cli(
        tmp_path, "create", "--kind", "facility", "--tenant", "acme", "--site", "plant-1",
        "--expires-in", "1d", "--name", "plant 1 screen",
    )  # fmt: skip
    assert code == 0, err
    token = out.strip()
    assert token.startswith("iotmon_")
    assert "Shown once" in err
    token_id = token.split("_")[1]

    now = datetime.now(UTC)
    later = {"now": now}
    app = create_app(settings(tmp_path, "prod"), clock=lambda: later["now"])
    with TestClient(app) as client:
        me = client.get("/api/v1/me", headers=bearer(token)).json()
        assert (me["kind"], me["sites"], me["token_id"]) == ("facility", ["plant-1"], token_id)
        later["now"] = now + timedelta(days=1, seconds=1)
        expired = client.get("/api/v1/me", headers=bearer(token))
        assert expired.status_code == 401
        assert expired.json()["detail"].startswith("the token expired at ")
        later["now"] = now

        code, out, _ = tokens_cli(tmp_path, "list", "--tenant", "acme")
        assert token_id in out
        assert "active" in out
        assert token not in out
        code, out, _ = tokens_cli(tmp_path, "revoke", token_id)
        assert code == 0
        assert out.startswith(f"token {token_id} revoked at ")
        # Within IOTMON_API_AUTH_CACHE_S (1 s): the API took the token it found valid
        # that long without asking the registry (tests/services/api/test_caches.py).
        deadline = time.monotonic() + 1.5
        while (revoked := client.get("/api/v1/me", headers=bearer(token))).status_code == 200:
            assert time.monotonic() < deadline, "the revoked token was still taken after 1.5 s"
            time.sleep(0.05)
        assert revoked.status_code == 401
        assert revoked.json()["detail"] == "the token was revoked"
        code, out, _ = tokens_cli(tmp_path, "list")
        assert "revoked" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--kind", "operator"], "a principal of kind operator needs a tenant"),
        (["--kind", "facility", "--tenant", "acme"], "needs at least one site"),
        (["--kind", "guardian", "--tenant", "acme", "--guardian", "nobody"],
         "guardian 'nobody' is not registered"),
        (["--kind", "operator", "--tenant", "acme", "--expires-in", "5y"], "--expires-in"),
        (["--kind", "boss", "--tenant", "acme"], "'boss' is not one of"),
    ],
)  # fmt: skip
def test_tokens_create_refusals_name_the_problem(
    tmp_path: Path, args: list[str], says: str
) -> None:
    with Registry(registry_settings(tmp_path)) as registry:
        registry.add_site("acme", "plant-1")
    code, out, err = tokens_cli(tmp_path, "create", *args)
    assert code != 0
    assert says in out + err
    with Registry(registry_settings(tmp_path)) as registry:
        assert Principals(registry).tokens() == []
