"""``iotmon config check`` names each problem and where, and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from iotmon_runtime.settings import SERVICE_PREFIXES
from iotmon_tools.cli.config import SERVICE_SETTINGS

IOTMON = Path(sys.executable).with_name("iotmon")
EXAMPLE = Path(__file__).resolve().parents[3] / "edge" / "edge.example.yaml"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IOTMON_")}
    return subprocess.run(
        [str(IOTMON), "config", "check", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {}), "COLUMNS": "200"},
        timeout=60,
        check=False,
    )


def test_good_example_and_default_environment_pass() -> None:
    result = run(str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert f"ok {EXAMPLE}" in result.stderr
    assert "ok IOTMON_INGEST_* environment" in result.stderr
    assert "ok IOTMON_HOMEASSISTANT_* environment" in result.stderr


def test_bad_file_and_bad_environment_are_all_reported(tmp_path: Path) -> None:
    bad = tmp_path / "edge.yaml"
    bad.write_text(EXAMPLE.read_text().replace("publish_interval_s: 10", "publish_interval_s: -10"))
    result = run(
        str(bad),
        env={
            "IOTMON_INGEST_BATCH_SIZE": "0",
            "IOTMON_API_STORE__BACKEND": "oracle",
            "IOTMON_HOMEASSISTANT_DISCOVERY_PREFIX": "home/#",
            "IOTMON_INGEST_METRICS__PORT": "70000",
        },
    )
    assert result.returncode == 1
    assert f"{bad}:" in result.stderr
    assert "IOTMON_INGEST_BATCH_SIZE: Input should be greater than or equal to 1" in result.stderr
    assert "IOTMON_API_STORE__BACKEND: Input should be" in result.stderr
    assert "IOTMON_HOMEASSISTANT_DISCOVERY_PREFIX: String should match" in result.stderr
    assert "IOTMON_INGEST_METRICS__PORT: Input should be less than or equal to 65535" in (
        result.stderr
    )


def test_every_service_prefix_is_checked() -> None:
    assert sorted(s.env_prefix() for s in SERVICE_SETTINGS) == sorted(SERVICE_PREFIXES)


def test_a_typo_in_any_service_fails_the_check_naming_it() -> None:
    typos = {f"{prefix}LOG_LEVLE": f"{prefix}LOG_LEVEL" for prefix in SERVICE_PREFIXES}
    result = run(env=dict.fromkeys(typos, "INFO"))
    assert result.returncode == 1
    for typo, meant in typos.items():
        assert f"{typo}: not a setting of " in result.stderr, typo
        assert f"did you mean {meant}?" in result.stderr, typo
