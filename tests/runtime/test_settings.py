"""The settings base every service shares: one meaning of environment, secrets checked at any
depth, misspelled IOTMON_* variables refused with the nearest valid name."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from iotmon_api.config import Settings as ApiSettings
from iotmon_edge.config import Settings as EdgeSettings
from iotmon_ingest.config import IngestSettings
from iotmon_runtime.settings import (
    Environment,
    ServiceSettings,
    SettingsError,
    describe_settings_error,
)

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
REAL_SECRET = "a7Pq-real-looking-secret-93"


class _Inner(BaseModel):
    port: int = Field(1, ge=1, description="A port.")
    password: SecretStr | None = Field(None, description="A password.")


class _Example(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IOTMON_EXAMPLE_")
    service_name: ClassVar[str] = "example"

    inner: _Inner = Field(default_factory=_Inner, description="Nested settings.")
    token: SecretStr | None = Field(None, description="A token.")
    batch_size: int = Field(10, ge=1, description="A bound.")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("IOTMON_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_known_variables_include_nested_fields() -> None:
    known = _Example.known_variables()
    assert {
        "IOTMON_EXAMPLE_INNER",
        "IOTMON_EXAMPLE_INNER__PORT",
        "IOTMON_EXAMPLE_INNER__PASSWORD",
        "IOTMON_EXAMPLE_TOKEN",
        "IOTMON_EXAMPLE_ENVIRONMENT",
        "IOTMON_EXAMPLE_LOG_FORMAT",
    } <= known
    assert "IOTMON_INGEST_MQTT__HOST" in IngestSettings.known_variables()
    assert "IOTMON_EDGE_MQTT__PASSWORD" in EdgeSettings.known_variables()


@pytest.mark.parametrize(
    ("variable", "suggestion"),
    [
        ("IOTMON_EXAMPLE_TOKNE", "IOTMON_EXAMPLE_TOKEN"),
        ("IOTMON_EXAMPLE_INNER__PROT", "IOTMON_EXAMPLE_INNER__PORT"),
        ("IOTMON_EXAMPLE_INNER_PORT", "IOTMON_EXAMPLE_INNER__PORT"),  # one underscore
        ("IOTMON_EXAMPL_BATCH_SIZE", "IOTMON_EXAMPLE_BATCH_SIZE"),  # a mangled prefix
    ],
)
def test_misspelled_variables_fail_with_the_nearest_name(
    clean_env: pytest.MonkeyPatch, variable: str, suggestion: str
) -> None:
    clean_env.setenv(variable, "1")
    with pytest.raises(SettingsError) as raised:
        _Example.from_environment()
    (problem,) = raised.value.problems
    assert problem.startswith(f"{variable}: ")
    assert f"did you mean {suggestion}?" in problem


@pytest.mark.parametrize(
    ("settings", "part", "typo", "field"),
    [
        (IngestSettings, "mqtt", "hsot", "host"),
        (ApiSettings, "store", "urll", "url"),
        (EdgeSettings, "mqtt", "hsot", "host"),
    ],
)
def test_a_nested_typo_is_one_problem_with_the_nearest_name(
    clean_env: pytest.MonkeyPatch, settings: Any, part: str, typo: str, field: str
) -> None:
    variable = settings.variable(part, typo)
    clean_env.setenv(variable, "broker.example")
    with pytest.raises(SettingsError) as raised:
        settings.from_environment()
    # Not also pydantic's "Extra inputs are not permitted" for the same variable.
    assert raised.value.problems == [
        f"{variable}: not a setting of {settings.service_name}; "
        f"did you mean {settings.variable(part, field)}?"
    ]


def test_other_services_and_deployment_variables_are_left_alone(
    clean_env: pytest.MonkeyPatch,
) -> None:
    for variable in (
        "IOTMON_INGEST_MQTT__HOST",
        "IOTMON_API_TOKEN",
        "IOTMON_MQTT_INGEST_PASSWORD",
        "IOTMON_ENVIRONMENT",
        "IOTMON_SOMETHING_ELSE_ENTIRELY",
        "IOTMON_TOKEN",  # the demo prints `export IOTMON_TOKEN=…` for curl
        "IOTMON_REGISTRY_URL",
        "IOTMON_BROKER_MQTT__HOST",
        "NOT_IOTMON_EXAMPLE_TOKNE",
    ):
        clean_env.setenv(variable, "x")
    assert _Example.from_environment().batch_size == 10


def test_every_problem_is_reported_at_once_without_inputs(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("IOTMON_EXAMPLE_TOKNE", REAL_SECRET)
    clean_env.setenv("IOTMON_EXAMPLE_BATCH_SIZE", "0")
    clean_env.setenv("IOTMON_EXAMPLE_INNER__PORT", "not-a-port")
    with pytest.raises(SettingsError) as raised:
        _Example.from_environment()
    text = str(raised.value)
    assert len(raised.value.problems) == 3, text
    assert "IOTMON_EXAMPLE_BATCH_SIZE: Input should be greater than or equal to 1" in text
    assert "IOTMON_EXAMPLE_INNER__PORT: Input should be a valid integer" in text
    assert REAL_SECRET not in text
    assert "not-a-port" not in text


@pytest.mark.parametrize("environment", [Environment.TEST, Environment.PROD])
def test_placeholder_secrets_refused_at_any_depth_outside_dev(
    clean_env: pytest.MonkeyPatch, environment: Environment
) -> None:
    with pytest.raises(ValidationError) as raised:
        _Example(environment=environment, inner={"password": "changeme"}, token="dev-token")
    lines = describe_settings_error(raised.value, _Example)
    assert lines == [
        "IOTMON_EXAMPLE_INNER__PASSWORD, IOTMON_EXAMPLE_TOKEN: placeholder secret refused "
        f"when environment is {environment.value!r}; set a real value"
    ]
    _Example(environment=Environment.DEV, inner={"password": "changeme"})
    _Example(environment=environment, inner={"password": REAL_SECRET})


def test_environment_has_one_meaning_in_every_service(clean_env: pytest.MonkeyPatch) -> None:
    for settings in (ApiSettings, EdgeSettings, IngestSettings):
        assert settings.model_fields["environment"].annotation is Environment
        clean_env.setenv(f"{settings.env_prefix()}ENVIRONMENT", "staging")
        with pytest.raises(SettingsError, match=f"{settings.env_prefix()}ENVIRONMENT"):
            settings.from_environment()
        clean_env.delenv(f"{settings.env_prefix()}ENVIRONMENT")


def test_log_level_and_format_are_checked(clean_env: pytest.MonkeyPatch) -> None:
    assert _Example(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValidationError, match="unknown log level"):
        _Example(log_level="loud")
    with pytest.raises(ValidationError):
        _Example(log_format="xml")


@pytest.mark.parametrize(
    ("program", "prefix", "typo", "suggestion"),
    [
        ("iotmon-api", "IOTMON_API_", "IOTMON_API_TOKNE", "IOTMON_API_TOKEN"),
        ("iotmon-ingest", "IOTMON_INGEST_", "IOTMON_INGEST_BATCH_SIZ", "IOTMON_INGEST_BATCH_SIZE"),
        ("iotmon-edge", "IOTMON_EDGE_", "IOTMON_EDGE_MQTT_HOST", "IOTMON_EDGE_MQTT__HOST"),
        ("iotmon-alerts", "IOTMON_ALERTS_", "IOTMON_ALERTS_MQTT__HSOT", "IOTMON_ALERTS_MQTT__HOST"),
        ("iotmon-video", "IOTMON_VIDEO_", "IOTMON_VIDEO_MQTT__HSOT", "IOTMON_VIDEO_MQTT__HOST"),
        (
            "iotmon-homeassistant",
            "IOTMON_HOMEASSISTANT_",
            "IOTMON_HOMEASSISTANT_MQTT__HSOT",
            "IOTMON_HOMEASSISTANT_MQTT__HOST",
        ),
    ],
)
def test_every_service_cli_refuses_a_typo_before_starting(
    tmp_path: Path, program: str, prefix: str, typo: str, suggestion: str
) -> None:
    """A typo such as IOTMON_API_TOKNE must stop the API, not leave it open."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")}
    env[typo] = REAL_SECRET
    done = subprocess.run(
        [str(BIN / program), "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"invalid settings ({prefix}*)" in done.stderr
    assert f"{typo}: not a setting of {program}; did you mean {suggestion}?" in done.stderr
    assert REAL_SECRET not in done.stdout + done.stderr


def _entry_points() -> list[tuple[str, str]]:
    """(program, distribution) for every ``[project.scripts]`` of every distribution."""
    found = []
    for line in (ROOT / "scripts" / "packages").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            project = tomllib.loads((ROOT / line.strip() / "pyproject.toml").read_text())["project"]
            found += [(program, project["name"]) for program in project.get("scripts", {})]
    return sorted(found)


def test_the_entry_points_are_found() -> None:
    assert {"iotmon", "iotmon-api", "iotmon-ingest", "iotmon-edge", "iotmon-alerts"} <= {
        program for program, _ in _entry_points()
    }


@pytest.mark.parametrize(("program", "distribution"), _entry_points())
def test_every_cli_has_version(program: str, distribution: str) -> None:
    from importlib.metadata import version

    from iotmon_contract import CONTRACT_VERSION

    done = subprocess.run(
        [str(BIN / program), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == (
        f"{program} {version(distribution)} (wire contract {CONTRACT_VERSION})"
    )


def test_the_demo_token_variable_does_not_trip_the_api(clean_env: pytest.MonkeyPatch) -> None:
    """`export IOTMON_TOKEN=…` (printed by the demo) is close to IOTMON_API_TOKEN."""
    clean_env.setenv("IOTMON_TOKEN", REAL_SECRET)
    assert ApiSettings.from_environment().token is None


# -- secrets from files (*_FILE) ------------------------------------------------------------

SERVICE_SETTINGS: list[type[ServiceSettings]] = [
    importlib.import_module(module).Settings
    for module in (
        "iotmon_alerts.config",
        "iotmon_api.config",
        "iotmon_edge.config",
        "iotmon_ingest.config",
        "iotmon_tools.broker.settings",
        "iotmon_video.config",
    )
]


def _secret_file(tmp_path: Path, content: str, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_a_secret_comes_from_the_file_its_file_variable_names(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("IOTMON_EXAMPLE_TOKEN_FILE", str(_secret_file(tmp_path, REAL_SECRET + "\n")))
    nested = _secret_file(tmp_path, " inner secret with spaces\r\n\n", "inner")
    clean_env.setenv("IOTMON_EXAMPLE_INNER__PASSWORD_FILE", str(nested))
    settings = _Example.from_environment()
    assert settings.token is not None
    assert settings.token.get_secret_value() == REAL_SECRET  # the trailing newline is dropped
    assert settings.inner.password is not None
    # Only line breaks at the end go: the rest, spaces included, is the secret.
    assert settings.inner.password.get_secret_value() == " inner secret with spaces"
    assert REAL_SECRET not in repr(settings)


def test_every_secret_field_of_every_service_takes_a_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for settings_class in SERVICE_SETTINGS:
        secrets = settings_class.secret_variables()
        assert any(name.endswith("PASSWORD") for name in secrets), settings_class
        # A SecretStr field nobody listed by hand: found from the annotations.
        assert {s + "_FILE" for s in secrets} <= settings_class.known_variables()
        expected = {}
        for index, variable in enumerate(sorted(secrets)):
            # Database URLs are secrets too (they carry passwords): give each a valid one.
            value = (
                f"sqlite:///{tmp_path}/s{index}.db" if variable.endswith("URL") else f"{index}-rEal"
            )
            path = _secret_file(tmp_path, value + "\n", f"{variable}.txt")
            clean_env.setenv(variable + "_FILE", str(path))
            expected[variable] = value
        built = settings_class.from_environment()
        read = {
            name.split(" ")[0].removesuffix("_FILE"): secret.get_secret_value()
            for name, secret in built.secrets()
        }
        assert read == expected, settings_class
        for variable in secrets:
            clean_env.delenv(variable + "_FILE")


def test_a_file_variable_for_a_setting_that_is_not_secret_is_refused(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("IOTMON_EXAMPLE_BATCH_SIZE_FILE", str(_secret_file(tmp_path, "5")))
    with pytest.raises(SettingsError) as raised:
        _Example.from_environment()
    assert raised.value.problems[0].startswith(
        "IOTMON_EXAMPLE_BATCH_SIZE_FILE: not a setting of example"
    )


def test_a_secret_given_both_ways_is_refused_naming_both(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("IOTMON_EXAMPLE_INNER__PASSWORD", REAL_SECRET)
    clean_env.setenv("IOTMON_EXAMPLE_INNER__PASSWORD_FILE", str(_secret_file(tmp_path, "other")))
    with pytest.raises(SettingsError) as raised:
        _Example.from_environment()
    assert raised.value.problems == [
        "IOTMON_EXAMPLE_INNER__PASSWORD and IOTMON_EXAMPLE_INNER__PASSWORD_FILE are both set: "
        "give the secret one way"
    ]
    assert REAL_SECRET not in str(raised.value)
    assert "other" not in str(raised.value)


def test_an_empty_file_variable_means_unset(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As for every variable (compose writes `NAME: ${X:-}`): the plain one, if any, counts."""
    clean_env.setenv("IOTMON_EXAMPLE_TOKEN", REAL_SECRET)
    clean_env.setenv("IOTMON_EXAMPLE_TOKEN_FILE", "")
    token = _Example.from_environment().token
    assert token is not None
    assert token.get_secret_value() == REAL_SECRET


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing", "cannot read {path}: No such file or directory"),
        (lambda d: d, "cannot read {path}: Is a directory"),
        (
            lambda d: _write_bytes(d / "big", b"x" * (64 * 1024 + 1)),
            "{path} is larger than 64 KiB: not a secret file",
        ),
        (
            lambda d: _write_bytes(d / "binary", b"\xff\xfe" + REAL_SECRET.encode()),
            "{path} is not UTF-8 text",
        ),
    ],
    ids=["missing", "directory", "too-big", "not-utf8"],
)
def test_an_unusable_secret_file_is_named_with_its_variable(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, make: Any, message: str
) -> None:
    path = make(tmp_path)
    clean_env.setenv("IOTMON_EXAMPLE_INNER__PASSWORD_FILE", str(path))
    with pytest.raises(SettingsError) as raised:
        _Example.from_environment()
    assert raised.value.problems == [
        f"IOTMON_EXAMPLE_INNER__PASSWORD_FILE: {message.format(path=path)}"
    ]
    assert REAL_SECRET not in str(raised.value)


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("environment", [Environment.TEST, Environment.PROD])
def test_a_placeholder_in_a_secret_file_is_refused_naming_the_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, environment: Environment
) -> None:
    path = _secret_file(tmp_path, "dev-ingest-password\n")
    clean_env.setenv("IOTMON_EXAMPLE_ENVIRONMENT", environment.value)
    clean_env.setenv("IOTMON_EXAMPLE_INNER__PASSWORD_FILE", str(path))
    with pytest.raises(SettingsError) as raised:
        _Example.from_environment()
    assert raised.value.problems == [
        f"IOTMON_EXAMPLE_INNER__PASSWORD_FILE ({path}): placeholder secret refused when "
        f"environment is {environment.value!r}; set a real value"
    ]
    assert "dev-ingest-password" not in str(raised.value)
    path.write_text(REAL_SECRET)
    assert _Example.from_environment().environment is environment


def test_a_service_process_reads_its_secret_files_and_names_a_bad_one(tmp_path: Path) -> None:
    """The real CLI, as a container runs it: `config check` with secrets from files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")}
    env["IOTMON_INGEST_ENVIRONMENT"] = "prod"
    env["IOTMON_INGEST_REGISTRY__URL"] = f"sqlite:///{tmp_path / 'registry.db'}"
    env["IOTMON_INGEST_MQTT__PASSWORD_FILE"] = str(_secret_file(tmp_path, REAL_SECRET, "mqtt"))
    env["IOTMON_INGEST_STORE__PASSWORD_FILE"] = str(_secret_file(tmp_path, REAL_SECRET, "influx"))

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "iotmon-ingest"), "config", "check"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = check()
    assert done.returncode == 0, done.stderr
    (tmp_path / "influx").write_text("changeme\n")
    refused = check()
    assert refused.returncode == 2, refused.stderr
    assert (
        f"IOTMON_INGEST_STORE__PASSWORD_FILE ({tmp_path / 'influx'}): placeholder secret refused"
        in refused.stderr
    )
    assert REAL_SECRET not in refused.stdout + refused.stderr
