"""``iotmon contract``: print or regenerate the wire contract's AsyncAPI document and schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from iotmon_contract.asyncapi import asyncapi_document, render, write


def register(app: typer.Typer) -> None:
    contract_app = typer.Typer(help="The MQTT wire contract (AsyncAPI 3.0 + JSON Schemas).")

    @contract_app.command("show")
    def show() -> None:
        """Print the AsyncAPI 3.0 document generated from the payload models."""
        typer.echo(render(asyncapi_document()), nl=False)

    @contract_app.command("export")
    def export(
        directory: Annotated[
            Path, typer.Argument(help="Folder to write asyncapi.json and schemas/ into.")
        ] = Path("contract"),
    ) -> None:
        """Write asyncapi.json and one JSON Schema per payload model."""
        for path in write(directory):
            typer.echo(path)

    app.add_typer(contract_app, name="contract")
