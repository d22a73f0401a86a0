"""``iotmon config check``: validate configuration without starting anything."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from iotmon_edge import ConfigError, load_agent_config
from iotmon_edge import Settings as EdgeSettings
from iotmon_services.api import Settings as ApiSettings


class FileKind(StrEnum):
    EDGE = "edge"


def _describe(error: ValidationError, source: str) -> list[str]:
    return [
        f"{source}: {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
        for e in error.errors(include_url=False)
    ]


def _settings_checks() -> dict[str, Callable[[], BaseModel]]:
    from iotmon_services.ingest.config import IngestSettings

    return {
        "IOTMON_API_*": ApiSettings,
        "IOTMON_EDGE_*": EdgeSettings,
        "IOTMON_INGEST_*": IngestSettings,
    }


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Configuration: check files and environment before starting.")

    @config_app.command("check")
    def check(
        files: Annotated[
            list[Path] | None, typer.Argument(help="Edge agent YAML files to validate.")
        ] = None,
        kind: Annotated[FileKind, typer.Option(help="What the files are.")] = FileKind.EDGE,
        env: Annotated[
            bool, typer.Option(help="Also validate every service's settings from the environment.")
        ] = True,
    ) -> None:
        """Validate files and environment settings; exit 1 naming each problem and where."""
        console = Console(stderr=True)
        problems: list[str] = []
        for path in files or []:
            try:
                load_agent_config(path)
            except ConfigError as exc:
                problems.append(str(exc))
            else:
                console.print(f"[green]ok[/green] {path} ({kind.value})")
        if env:
            for source, settings in _settings_checks().items():
                try:
                    settings()
                except ValidationError as exc:
                    problems.extend(_describe(exc, source))
                except ValueError as exc:
                    problems.append(f"{source}: {exc}")
                else:
                    console.print(f"[green]ok[/green] {source} environment")
        for problem in problems:
            console.print(f"[red]error[/red] {problem}", highlight=False)
        if problems:
            raise typer.Exit(1)

    app.add_typer(config_app, name="config")
