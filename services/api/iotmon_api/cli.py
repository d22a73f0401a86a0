"""``iotmon-api``: serve the HTTP API, or check its settings without starting.

    iotmon-api run [--host H] [--port P]
    iotmon-api config check
    iotmon-api --version

Settings come from ``IOTMON_API_*`` variables (``IOTMON_API_STORE__URL``…).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI

from iotmon_api.app import create_app
from iotmon_api.auth import ensure_principal, principal_configured, refusal
from iotmon_api.config import Settings
from iotmon_registry import Principals, Registry, RegistryError
from iotmon_runtime.cli import error, load_settings, service_parser
from iotmon_runtime.log import configure_logging
from iotmon_runtime.settings import Environment
from iotmon_runtime.workers import EXIT_BAD_CONFIG, EXIT_OK

PROGRAM = "iotmon-api"


def parser() -> argparse.ArgumentParser:
    root = service_parser(
        PROGRAM,
        "iotmon-api",
        "iotmon HTTP API: devices, latest readings, time series and dead letters "
        "(OpenAPI at /docs). Settings come from IOTMON_API_*.",
    )
    commands = root.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="serve until SIGINT/SIGTERM")
    run_cmd.add_argument("--host", help="bind address (default IOTMON_API_HOST or 127.0.0.1)")
    run_cmd.add_argument("--port", type=int, help="TCP port (default IOTMON_API_PORT or 8000)")
    run_cmd.add_argument(
        "--workers", type=int, help="worker processes (default IOTMON_API_WORKERS or 1)"
    )
    config_cmd = commands.add_parser("config", help="configuration commands")
    config_commands = config_cmd.add_subparsers(dest="config_command", required=True)
    config_commands.add_parser("check", help="validate the IOTMON_API_* environment")
    return root


def startup_refusal(settings: Settings) -> str | None:
    """Why the API must not start (no principal outside dev, registry unusable), or None.

    Checked before uvicorn starts, so the process exits with a message and code 2
    instead of uvicorn's lifespan traceback.
    """
    try:
        with Registry(settings.registry) as registry:
            if settings.environment is Environment.DEV:
                return None
            if not principal_configured(settings, Principals(registry)):
                return refusal(settings, registry.where)
    except RegistryError as exc:
        return f"cannot use the registry: {exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.command == "run":
        overrides = {
            k: v for k in ("host", "port", "workers") if (v := getattr(args, k)) is not None
        }
    settings = load_settings(PROGRAM, Settings, **overrides)
    if settings is None:
        return EXIT_BAD_CONFIG
    if args.command == "config":
        sys.stdout.write(f"{PROGRAM}: settings OK ({Settings.env_prefix()}*)\n")
        return EXIT_OK
    configure_logging(settings.log_level, settings.log_format, service=PROGRAM)
    refused = startup_refusal(settings)
    if refused is not None:
        error(PROGRAM, refused)
        return EXIT_BAD_CONFIG
    server: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "access_log": settings.access_log,
        "log_config": None,
        "proxy_headers": True,
        # The console's live streams never end by themselves: close them after this.
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **server)
        return EXIT_OK
    # In dev without a principal, mint the one token here, not once per worker.
    with Registry(settings.registry) as registry:
        ensure_principal(settings, Principals(registry), registry.where, lambda: datetime.now(UTC))
    uvicorn.run(f"{__name__}:worker_app", factory=True, workers=settings.workers, **server)
    return EXIT_OK


def worker_app() -> FastAPI:
    """The app of one worker process (``--workers N``): settings from the same environment
    the parent checked (--host and --port concern the parent's socket only)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format, service=PROGRAM)
    return create_app(settings)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
