"""``iotmon bus``: simulate a school-bus fleet, replay events through the safety core."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from iotmon_alerts.bus import BusRules, Fleet, Notification, load_fleet
from iotmon_runtime.config_files import ConfigError


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    bus_app = typer.Typer(
        help="School-bus child safety: simulate a fleet, replay events, check a fleet file.",
        no_args_is_help=True,
    )
    bus_app.command("simulate")(simulate)
    bus_app.command("replay")(replay)
    bus_app.command("check")(check)
    app.add_typer(bus_app, name="bus")


def simulate(
    out: Annotated[Path, typer.Option(help="Folder for fleet.yaml, events.jsonl, truth.json.")],
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same fleet and events.")] = 0,
    days: Annotated[int, typer.Option(min=1, max=2000, help="School days to drive.")] = 5,
    buses: Annotated[
        int | None, typer.Option(min=1, max=50, help="Buses (default: 2 to 6 from the seed).")
    ] = None,
    tenant: Annotated[str, typer.Option(help="Tenant id.")] = "demo",
    presence: Annotated[
        bool, typer.Option(help="Buses carry a cabin camera or presence radar.")
    ] = True,
    reminder_response: Annotated[
        float,
        typer.Option(min=0, max=1, help="Chance a late driver answers the operator's reminder."),
    ] = 0.7,
    asleep: Annotated[
        float, typer.Option(min=0, max=1, help="Share of runs with a child asleep aboard.")
    ] = 0.01,
) -> None:
    """Drive a simulated fleet through school days; write its fleet, events and ground truth."""
    from pydantic import ValidationError

    from iotmon_devices.simulators.school_bus import FaultRates, SchoolBusSimConfig
    from iotmon_devices.simulators.school_bus import simulate as run_simulation
    from iotmon_tools.bus.files import write_simulation

    try:
        config = SchoolBusSimConfig(
            seed=seed,
            days=days,
            buses=buses,
            tenant=tenant,
            presence_sensors=presence,
            faults=FaultRates(asleep=asleep, reminder_response=reminder_response),
        )
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    sim = run_simulation(config)
    files = write_simulation(sim, config, out)
    left = sum(len(run.children_aboard) for run in sim.runs)
    typer.echo(
        f"{len(sim.world.buses)} buses, {len(sim.world.children)} children, "
        f"{sim.bus_days} bus-days, {len(sim.runs)} runs, {len(sim.lines)} events, "
        f"{left} children left aboard -> {files.fleet}, {files.events}, {files.truth}"
    )


def _load_fleet_or_exit(path: Path, console: Console) -> Fleet:
    try:
        return load_fleet(path)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            console.print(f"[red]error[/red] {line}", highlight=False)
        raise typer.Exit(2) from None


def replay(
    events: Annotated[Path, typer.Argument(help="events.jsonl: one delivered event per line.")],
    fleet: Annotated[Path, typer.Option(help="The fleet YAML.")],
    rules: Annotated[
        Path | None, typer.Option(help="Bus rules YAML (default: the built-in defaults).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write notifications here (default: standard output).")
    ] = None,
    tail_minutes: Annotated[
        float, typer.Option(min=0, help="Let time run on after the last event, minutes.")
    ] = 60.0,
    max_errors: Annotated[
        int, typer.Option(min=0, help="Bad lines to print (all are counted).")
    ] = 20,
) -> None:
    """Replay EVENTS through the safety core on a simulated clock.

    Writes every notification it would send as a JSON line (time, kind, severity, bus,
    child_tag, recipients, state, stop, event_time, then fingerprint and why). Bad lines
    are reported with their line number, counted, and skipped.
    """
    from iotmon_alerts.bus.replay import read_items
    from iotmon_alerts.bus.replay import replay as run_replay
    from iotmon_runtime.config_files import load_yaml_model
    from iotmon_tools.bus.files import write_notifications

    console = Console(stderr=True)
    fleet_model = _load_fleet_or_exit(fleet, console)
    settings = BusRules()
    if rules is not None:
        try:
            settings = load_yaml_model(rules, BusRules)
        except ConfigError as exc:
            for line in str(exc).splitlines():
                console.print(f"[red]error[/red] {line}", highlight=False)
            raise typer.Exit(2) from None
    try:
        with events.open(encoding="utf-8", errors="replace") as source:
            items, errors = read_items(source)
    except OSError as exc:
        console.print(f"[red]error[/red] {events}: cannot read: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    out = sys.stdout if output is None else output.open("w", encoding="utf-8")
    kinds: Counter[str] = Counter()
    try:

        def emit(notification: Notification) -> None:
            kinds[f"{notification.kind.value}/{notification.state.value}"] += 1
            write_notifications([notification], out)

        result = run_replay(
            fleet_model, settings, items, tail=timedelta(minutes=tail_minutes), emit=emit
        )
    finally:
        if output is not None:
            out.close()
    problems = [*errors, *result.errors]
    for problem in problems[:max_errors]:
        console.print(f"[yellow]skipped[/yellow] {events}: {problem}", highlight=False)
    if len(problems) > max_errors:
        console.print(f"… and {len(problems) - max_errors} more")
    summary = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    console.print(
        f"replayed {result.items} events, {len(errors)} bad lines, "
        f"{len(result.errors)} refused; {sum(kinds.values())} notifications ({summary})",
        highlight=False,
    )
    ignored = {k: v for k, v in result.stats.items() if k in _IGNORED}
    if ignored:
        console.print(f"set aside: {ignored}", highlight=False)


_IGNORED = frozenset(
    {"wrong_tenant", "unknown_device", "ignored_type", "availability_ignored"}
    | {f"unexpected_{what}" for what in ("tag_read", "sweep_read", "sweep_complete")}
    | {f"unexpected_{what}" for what in ("position", "ignition", "occupancy", "detection")}
)


def check(
    fleet: Annotated[list[Path], typer.Argument(help="Fleet YAML files to validate.")],
) -> None:
    """Validate fleet files; exit 1 naming each problem's file, key path and line."""
    console = Console(stderr=True)
    failed = False
    for path in fleet:
        try:
            loaded = load_fleet(path)
        except ConfigError as exc:
            failed = True
            for line in str(exc).splitlines():
                console.print(f"[red]error[/red] {line}", highlight=False)
        else:
            console.print(
                f"[green]ok[/green] {path}: {len(loaded.buses)} buses, "
                f"{len(loaded.children)} children, {len(loaded.document.guardians)} guardians",
                highlight=False,
            )
    if failed:
        raise typer.Exit(1)
