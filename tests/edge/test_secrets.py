"""Placeholder secrets (iotmon_runtime) and the edge agent: refused in prod, never printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from iotmon_edge.config import Settings
from iotmon_runtime.secrets import is_placeholder_secret, refuse_placeholder_secrets
from iotmon_runtime.settings import describe_settings_error
from tests.deploy.compose import dev_secrets

IOTMON_EDGE = Path(sys.executable).with_name("iotmon-edge")
REAL_SECRET = "k9Vx-7fQ2-real-broker-secret"


def compose_dev_passwords() -> list[str]:
    """Every development secret docker-compose.yml mounts when IOTMON_SECRETS_DIR is unset."""
    found = sorted({value for value in dev_secrets().values() if value})
    assert len(found) >= 5, found
    return found


DEV_PASSWORDS = compose_dev_passwords()


@pytest.mark.parametrize(
    "value",
    [
        *DEV_PASSWORDS,
        "",
        "changeme",
        "ChangeMe-Later",
        "change-me",
        "changethis",
        " password ",
        "SECRET",
        "admin",
        "token",
        "dev",
        "mqtt",
        SecretStr("dev-anything"),
    ],
)
def test_placeholders_are_recognised(value: str | SecretStr) -> None:
    assert is_placeholder_secret(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        REAL_SECRET,
        "developer-9f3b1c77a2",
        "s3cr3t-passw0rd-71c2",
        "tokenized-42x",
        "apiv3_Qm9vL3Jh-real-influxdb3-token",  # an InfluxDB 3 token's prefix is no placeholder
    ],
)
def test_real_secrets_and_unset_ones_are_not_placeholders(value: str | None) -> None:
    assert not is_placeholder_secret(value)


def test_refusal_names_the_secret_but_never_shows_it() -> None:
    with pytest.raises(ValueError, match="placeholder secret") as raised:
        refuse_placeholder_secrets(
            {"A_PASSWORD": SecretStr("dev-a-password"), "B_TOKEN": None, "C": REAL_SECRET}, "prod"
        )
    assert str(raised.value).startswith("A_PASSWORD: ")
    assert "dev-a-password" not in str(raised.value)
    refuse_placeholder_secrets({"C": SecretStr(REAL_SECRET), "D": None}, "prod")


class _Inner(BaseModel):
    port: int = Field(1, description="A port.")
    password: SecretStr | None = Field(None, description="A password.")


class _Nested(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="X_", env_nested_delimiter="__")

    inner: _Inner = Field(default_factory=_Inner, description="Nested settings.")
    token: SecretStr | None = Field(None, description="A token.")


def test_described_errors_name_variables_and_omit_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_INNER__PORT", "not-a-port")
    monkeypatch.setenv("X_INNER__PASSWORD", REAL_SECRET)
    with pytest.raises(ValidationError) as raised:
        _Nested()
    assert REAL_SECRET in str(raised.value) or "not-a-port" in str(raised.value)  # pydantic's
    described = "\n".join(describe_settings_error(raised.value, _Nested))
    assert described.startswith("X_INNER__PORT: Input should be a valid integer")
    assert "not-a-port" not in described
    assert REAL_SECRET not in described


# -- the edge agent's Settings ------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("IOTMON_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("password", DEV_PASSWORDS)
def test_edge_prod_refuses_compose_dev_passwords(
    password: str, clean_env: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="IOTMON_EDGE_MQTT__PASSWORD: placeholder secret"):
        Settings(environment="prod", mqtt={"password": password})
    with pytest.raises(ValidationError, match="IOTMON_EDGE_MQTT__PASSWORD: placeholder secret"):
        Settings(environment="test", mqtt={"password": password})
    Settings(environment="dev", mqtt={"password": password})


def test_edge_prod_accepts_a_real_password(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(environment="prod", mqtt={"password": REAL_SECRET})
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == REAL_SECRET
    assert Settings(environment="prod").mqtt.password is None  # anonymous: nothing to refuse


# -- the real iotmon-edge command ---------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "secret", "named"),
    [
        # A whole-model check fails: pydantic would print every input read.
        (
            {"IOTMON_EDGE_ENVIRONMENT": "prod"},
            "ChangeMe",
            "IOTMON_EDGE_MQTT__PASSWORD: placeholder secret",
        ),
        ({"IOTMON_EDGE_ENVIRONMENT": "prod"}, DEV_PASSWORDS[0], "IOTMON_EDGE_MQTT__PASSWORD"),
        ({"IOTMON_EDGE_MQTT__PORT": "not-a-port"}, REAL_SECRET, "IOTMON_EDGE_MQTT__PORT"),
        ({"IOTMON_EDGE_ENVIRONMENT": "staging"}, REAL_SECRET, "IOTMON_EDGE_ENVIRONMENT"),
    ],
)
def test_iotmon_edge_run_names_the_bad_setting_without_printing_secrets(
    tmp_path: Path, bad: dict[str, str], secret: str, named: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")}
    env |= {**bad, "IOTMON_EDGE_MQTT__USERNAME": "demo/sim-0001"}
    env["IOTMON_EDGE_MQTT__PASSWORD"] = secret
    done = subprocess.run(
        [str(IOTMON_EDGE), "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "invalid settings (IOTMON_EDGE_*)" in done.stderr
    assert named in done.stderr
    assert secret not in output
    assert "input_value" not in output
