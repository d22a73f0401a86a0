"""`iotmon bench ingest`, `iotmon bench alerts` and `iotmon bench edge`: real servers, real
clients, real figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

bench_app = typer.Typer(help="Benchmarks (not tests): real servers, real clients, real figures.")


def _parse_workers(value: str) -> tuple[int, ...]:
    try:
        workers = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter("a comma-separated list of worker counts, e.g. 1,2") from None
    if not workers or min(workers) < 1:
        raise typer.BadParameter("worker counts must be ≥ 1")
    return workers


@bench_app.command("ingest")
def bench_ingest(
    messages: Annotated[int, typer.Option(min=1000, help="Single-reading messages.")] = 200_000,
    publishers: Annotated[int, typer.Option(min=1, max=32, help="Parallel mosquitto_pub.")] = 4,
    workers: Annotated[
        str, typer.Option(help="Ingest worker processes to measure, comma-separated.")
    ] = "1,2",
    batch_messages: Annotated[int, typer.Option(min=1, help="Gateway batch messages.")] = 300,
    batch_readings: Annotated[
        int, typer.Option(min=1, max=5000, help="Readings per batch (payload ≤ 512 KiB).")
    ] = 2000,
    ingest_batch_size: Annotated[int, typer.Option(min=1, help="Ingest's batch size.")] = 5000,
    output: Annotated[Path, typer.Option(help="Markdown file the figures are appended to.")] = Path(
        "docs/benchmarks.md"
    ),
    write: Annotated[bool, typer.Option(help="Append the figures to --output.")] = True,
    timeout: Annotated[float, typer.Option(help="Longest wait for one step, seconds.")] = 300.0,
) -> None:
    """Start mosquitto + influxd, measure (a) the C clients, (b) ingest, (c) their ratio."""
    from rich.console import Console

    from iotmon_tools.bench import BenchOptions, run_ingest_benchmark
    from iotmon_tools.bench.ingest import BenchError
    from iotmon_tools.bench.report import append_markdown, print_table

    console = Console()
    if not console.is_terminal:
        console = Console(width=180)  # a log file: no need to wrap the table
    options = BenchOptions(
        messages=messages,
        publishers=publishers,
        workers=_parse_workers(workers),
        batch_messages=batch_messages,
        batch_readings=batch_readings,
        ingest_batch_size=ingest_batch_size,
        timeout_s=timeout,
    )
    try:
        result = run_ingest_benchmark(options, console, repo=Path.cwd())
    except BenchError as exc:
        console.print(f"[red]benchmark failed:[/red] {exc}")
        raise typer.Exit(1) from None
    print_table(result, console)
    if write:
        append_markdown(result, output)
        console.print(f"appended to {output}")
    if not result.nothing_lost:
        console.print("[red]some messages were lost[/red]")
        raise typer.Exit(1)


@bench_app.command("edge")
def bench_edge(
    sensors: Annotated[int, typer.Option(min=1, help="Simulated sensors (3 metrics each).")] = 20,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between reads.")] = 1.0,
    warmup: Annotated[float, typer.Option(min=0, help="Seconds before measuring.")] = 10.0,
    steady: Annotated[float, typer.Option(min=5, help="Seconds measured, steady.")] = 60.0,
    backlog: Annotated[int, typer.Option(min=1000, help="Readings in the backlog.")] = 1_000_000,
    drain_rate: Annotated[
        float, typer.Option(min=0, help="Backlog msg/s; 0 = as fast as acknowledged.")
    ] = 0.0,
    venv: Annotated[
        Path | None, typer.Option(help="Agent venv (default .state/bench/edge-venv).")
    ] = None,
    output: Annotated[Path, typer.Option(help="Markdown file the figures are added to.")] = Path(
        "docs/benchmarks.md"
    ),
    write: Annotated[bool, typer.Option(help="Add the figures to --output.")] = True,
    timeout: Annotated[float, typer.Option(help="Longest wait for the drain, seconds.")] = 900.0,
) -> None:
    """The edge agent's RSS and CPU with 20 sensors at 1 Hz, and while draining a backlog."""
    import tempfile

    from rich.console import Console

    from iotmon_tools.bench.edge import EdgeBenchOptions, run_edge_benchmark
    from iotmon_tools.bench.edge_report import append_edge_markdown, print_edge_table
    from iotmon_tools.bench.ingest import BenchError

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    options = EdgeBenchOptions(
        sensors=sensors,
        interval_s=interval,
        warmup_s=warmup,
        steady_s=steady,
        backlog=backlog,
        drain_rate=drain_rate,
        venv=venv,
        timeout_s=timeout,
    )
    with tempfile.TemporaryDirectory(prefix="iotmon-bench-edge-") as folder:
        try:
            result = run_edge_benchmark(options, console, repo=Path.cwd(), state=Path(folder))
        except BenchError as exc:
            console.print(f"[red]benchmark failed:[/red] {exc}")
            raise typer.Exit(1) from None
    print_edge_table(result, console)
    if write:
        append_edge_markdown(result, output)
        console.print(f"added to {output}")
    if not all(step.verified for step in result.steps):
        console.print("[red]a step did not check out (see ok)[/red]")
        raise typer.Exit(1)


@bench_app.command("alerts")
def bench_alerts(
    triggers: Annotated[int, typer.Option(min=10, help="Alerts to time, one at a time.")] = 300,
    background_rate: Annotated[
        float, typer.Option(min=0, help="Background telemetry, msg/s, same broker and tenant.")
    ] = 10_000.0,
    output: Annotated[Path, typer.Option(help="Markdown file the figures are appended to.")] = Path(
        "docs/benchmarks.md"
    ),
    write: Annotated[bool, typer.Option(help="Append the figures to --output.")] = True,
) -> None:
    """Latency from the triggering MQTT message to the signed webhook at a real receiver."""
    from iotmon_tools.bench.alerts import AlertBenchOptions, markdown, run_alert_benchmark

    result = run_alert_benchmark(
        AlertBenchOptions(triggers=triggers, background_rate=background_rate), repo=Path.cwd()
    )
    text = markdown(result)
    typer.echo(text)
    if write:
        with output.open("a", encoding="utf-8") as handle:
            handle.write(text)
        typer.echo(f"appended to {output}")
    if result.lost or result.bad_signatures:
        raise typer.Exit(1)


@bench_app.command("bus")
def bench_bus(
    bus_days: Annotated[
        int, typer.Option(min=1, help="At least this many bus-days per scenario.")
    ] = 200,
    days: Annotated[int, typer.Option(min=1, max=500, help="School days per fleet.")] = 20,
    seed: Annotated[int, typer.Option(min=0, help="First fleet's seed.")] = 1,
    stress: Annotated[
        bool, typer.Option(help="Also run the design with a child asleep in 20 % of runs.")
    ] = True,
    output: Annotated[Path, typer.Option(help="Markdown file the figures are appended to.")] = Path(
        "docs/benchmarks.md"
    ),
    write: Annotated[bool, typer.Option(help="Append the figures to --output.")] = True,
) -> None:
    """Replay simulated school days through the bus-safety core and score the decisions."""
    from rich.console import Console

    from iotmon_tools.bench.bus import BusBenchOptions, run_bus_benchmark
    from iotmon_tools.bench.bus_report import append_bus_markdown, print_bus_table
    from iotmon_tools.bench.machine import machine_info

    console = Console()
    if not console.is_terminal:
        console = Console(width=220)
    options = BusBenchOptions(bus_days=bus_days, days=days, seed=seed, stress=stress)
    result = run_bus_benchmark(options, progress=console.print)
    machine = machine_info(Path.cwd())
    print_bus_table(result, machine, console)
    if write:
        append_bus_markdown(result, machine, output)
        console.print(f"appended to {output}")
    if any(r.score.missed or r.score.privacy_violations for r in result.results):
        console.print("[red]a child with evidence was missed, or a notice went astray[/red]")
        raise typer.Exit(1)


@bench_app.command("api")
def bench_api(
    devices: Annotated[int, typer.Option(min=1, max=10_000, help="Simulated sensors.")] = 200,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between each sensor's readings.")
    ] = 1.0,
    clients: Annotated[int, typer.Option(min=1, max=1000, help="Concurrent API clients.")] = 50,
    duration: Annotated[float, typer.Option(min=1, help="Seconds measured per step.")] = 15.0,
    warmup: Annotated[float, typer.Option(min=0, help="Seconds before each step counts.")] = 3.0,
    latest_rate: Annotated[
        float, typer.Option(min=0.1, help="Requests/s of each client, paced latest step.")
    ] = 5.0,
    series_rate: Annotated[
        float, typer.Option(min=0.1, help="Requests/s of each client, paced series step.")
    ] = 2.0,
    api_workers: Annotated[
        int, typer.Option(min=1, max=16, help="Worker processes of the API (--workers).")
    ] = 1,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="Another checkout (e.g. a worktree of main) whose API is measured on latest "
            "in the same run, for a before/after ratio."
        ),
    ] = None,
    logs: Annotated[
        Path | None, typer.Option(help="Copy the processes' logs to this folder at the end.")
    ] = None,
    output: Annotated[Path, typer.Option(help="Markdown file the figures are appended to.")] = Path(
        "docs/benchmarks.md"
    ),
    write: Annotated[bool, typer.Option(help="Append the figures to --output.")] = True,
) -> None:
    """Ingest and simulated sensors running; N clients on latest and series; a store outage."""
    from rich.console import Console

    from iotmon_tools.bench.api import ApiBenchError, ApiBenchOptions, run_api_benchmark
    from iotmon_tools.bench.api_report import append_markdown, print_table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    options = ApiBenchOptions(
        devices=devices,
        interval_s=interval,
        clients=clients,
        duration_s=duration,
        warmup_s=warmup,
        latest_rate=latest_rate,
        series_rate=series_rate,
        api_workers=api_workers,
        reference=reference.resolve() if reference is not None else None,
        logs_dir=logs,
    )
    try:
        result = run_api_benchmark(options, console, repo=Path.cwd())
    except ApiBenchError as exc:
        console.print(f"[red]benchmark failed:[/red] {exc}")
        raise typer.Exit(1) from None
    print_table(result, console)
    if write:
        append_markdown(result, output)
        console.print(f"appended to {output}")


@bench_app.command(
    "video",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def bench_video(context: typer.Context) -> None:
    """Cameras one machine sustains, motion-gated vs naive: runs `iotmon-video bench`
    (the video distribution; the tools stay free of OpenCV). Options pass through."""
    import os
    import shutil
    import sys

    program = shutil.which("iotmon-video") or str(Path(sys.executable).with_name("iotmon-video"))
    if not Path(program).exists():
        typer.echo("iotmon-video is not installed (pip install iotmon-video)", err=True)
        raise typer.Exit(2)
    os.execv(program, [program, "bench", *context.args])  # noqa: S606 - our own program


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.add_typer(bench_app, name="bench")
