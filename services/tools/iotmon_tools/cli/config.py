"""``iotmon config check``: validate configuration without starting anything."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from iotmon_alerts.config import AlertsSettings
from iotmon_api import Settings as ApiSettings
from iotmon_edge import ConfigError, load_agent_config
from iotmon_edge import Settings as EdgeSettings
from iotmon_homeassistant import Settings as HomeAssistantSettings
from iotmon_ingest import IngestSettings
from iotmon_runtime.settings import ServiceSettings, SettingsError
from iotmon_tools.broker.settings import BrokerAdminSettings
from iotmon_video.config import VideoSettings


class FileKind(StrEnum):
    EDGE = "edge"


SERVICE_SETTINGS: tuple[type[ServiceSettings], ...] = (
    AlertsSettings,
    ApiSettings,
    BrokerAdminSettings,
    EdgeSettings,
    IngestSettings,
    HomeAssistantSettings,
    VideoSettings,
)
"""Every service's settings: a service left out here has its typos passed as ok."""


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
                problems.extend(str(exc).splitlines())
            else:
                console.print(f"[green]ok[/green] {path} ({kind.value})")
        if env:
            for settings in SERVICE_SETTINGS:
                try:
                    settings.from_environment()
                except SettingsError as exc:
                    problems.extend(exc.problems)
                else:
                    console.print(f"[green]ok[/green] {settings.env_prefix()}* environment")
        for problem in problems:
            console.print(f"[red]error[/red] {problem}", highlight=False)
        if problems:
            raise typer.Exit(1)

    app.add_typer(config_app, name="config")
