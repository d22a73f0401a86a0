"""Ingest and API Settings refuse compose's dev passwords in prod; `iotmon ingest` hides secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from iotmon_api.config import Settings as ApiSettings
from iotmon_ingest.config import IngestSettings
from tests.edge.test_secrets import DEV_PASSWORDS, REAL_SECRET

IOTMON = Path(sys.executable).with_name("iotmon")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("IOTMON_"):
            monkeypatch.delenv(name)
    return monkeypatch


def _ingest(environment: str, where: str, secret: str) -> IngestSettings:
    section, field = where.split(".")
    # A secret field of MqttSettings / StoreSettings given as its SecretStr.
    values: dict[str, Any] = {section: {field: SecretStr(secret)}}
    return IngestSettings(environment=environment, **values)


def _api(environment: str, where: str, secret: str) -> ApiSettings:
    if where == "token":
        return ApiSettings(environment=environment, token=SecretStr(secret))
    _, field = where.split(".")
    values: dict[str, Any] = {"store": {field: SecretStr(secret)}}
    return ApiSettings(environment=environment, **values)


CASES = [
    (_ingest, "mqtt.password", "IOTMON_INGEST_MQTT__PASSWORD"),
    (_ingest, "store.password", "IOTMON_INGEST_STORE__PASSWORD"),
    (_ingest, "store.token", "IOTMON_INGEST_STORE__TOKEN"),
    (_api, "token", "IOTMON_API_TOKEN"),
    (_api, "store.password", "IOTMON_API_STORE__PASSWORD"),
    (_api, "store.token", "IOTMON_API_STORE__TOKEN"),
]


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("password", DEV_PASSWORDS)
@pytest.mark.parametrize(("build", "where", "variable"), CASES)
def test_prod_refuses_compose_dev_passwords(
    build: Any, where: str, variable: str, password: str
) -> None:
    with pytest.raises(ValidationError, match=f"{variable}.*placeholder secret") as raised:
        build("prod", where, password)
    assert password not in str(raised.value).split("[type=")[0]  # the message, not the input
    build("dev", where, password)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(("build", "where", "variable"), CASES)
def test_prod_accepts_a_real_looking_secret(build: Any, where: str, variable: str) -> None:
    settings = build("prod", where, REAL_SECRET)
    assert REAL_SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        # A whole-model check fails: pydantic would print every input read, the
        # real store password among them.
        (
            {"IOTMON_INGEST_ENVIRONMENT": "prod", "IOTMON_INGEST_MQTT__PASSWORD": "changeme"},
            "IOTMON_INGEST_MQTT__PASSWORD: placeholder secret",
        ),
        (
            {"IOTMON_INGEST_ENVIRONMENT": "prod", "IOTMON_INGEST_MQTT__PASSWORD": DEV_PASSWORDS[0]},
            "IOTMON_INGEST_MQTT__PASSWORD",
        ),
        ({"IOTMON_INGEST_MQTT__PORT": "not-a-port"}, "IOTMON_INGEST_MQTT__PORT"),
        ({"IOTMON_INGEST_BATCH_SIZE": "0"}, "IOTMON_INGEST_BATCH_SIZE"),
    ],
)
def test_iotmon_ingest_names_the_bad_setting_without_printing_secrets(
    tmp_path: Path, bad: dict[str, str], named: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")}
    env |= {
        **bad,
        "IOTMON_INGEST_STORE__USERNAME": "iotmon-ingest",
        "IOTMON_INGEST_STORE__PASSWORD": REAL_SECRET,
        "IOTMON_INGEST_STORE__TOKEN": f"{REAL_SECRET}-token",
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [str(IOTMON), "ingest"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "invalid settings (IOTMON_INGEST_*)" in done.stderr
    assert named in done.stderr
    assert REAL_SECRET not in output
    assert "input_value" not in output
    if "IOTMON_INGEST_MQTT__PASSWORD" in bad:
        assert bad["IOTMON_INGEST_MQTT__PASSWORD"] not in output
