"""Logging as a service process does it: structlog over stdlib loggers, console or JSON lines.

Run in a child process, as every service's ``main()`` configures the root logger of
its own process; an exception's frames must not carry their local variables, which
hold secrets (a password read for a connection, a bearer token being checked).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SECRET = "a7Pq-local-secret-93"
PROGRAM = f"""
import logging, sys
from iotmon_runtime.log import configure_logging, get_logger

configure_logging("info", sys.argv[1], service="example", context={{"worker": "w0"}})
logging.getLogger("example.part").info("stored %s readings", 5, extra={{"batch": 7}})
get_logger("example.kv").info("flushed", readings=3)
logging.getLogger("httpx").info("HTTP Request: POST /write")


def connect(password: str) -> None:
    raise ConnectionError("refused")


try:
    connect({SECRET!r})
except ConnectionError:
    logging.getLogger("example.part").exception("cannot connect")
"""


def _run(log_format: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, log_format],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == ""
    return done.stderr


def test_json_format_writes_one_object_per_line() -> None:
    records = [json.loads(line) for line in _run("json").splitlines()]
    assert [(r["level"], r["logger"], r["event"]) for r in records] == [
        ("info", "example.part", "stored 5 readings"),
        ("info", "example.kv", "flushed"),
        ("error", "example.part", "cannot connect"),
    ]  # httpx's per-request INFO is held back
    assert all(r["service"] == "example" and r["worker"] == "w0" for r in records)
    assert all(r["timestamp"].endswith("Z") for r in records)
    assert records[0]["batch"] == 7
    assert records[1]["readings"] == 3
    [exception] = records[2]["exception"]
    assert exception["exc_type"] == "ConnectionError"
    assert exception["exc_value"] == "refused"
    assert [frame["name"] for frame in exception["frames"]] == ["<module>", "connect"]


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_traceback_never_shows_local_variables(log_format: str) -> None:
    output = _run(log_format)
    assert "ConnectionError" in output
    assert SECRET not in output
