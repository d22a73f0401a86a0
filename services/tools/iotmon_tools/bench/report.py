"""Print a benchmark's figures as a table and append them to docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from iotmon_tools.bench.ingest import BenchResult, StepResult

RUNS_HEADING = "## Runs"

# The targets set for ingest; shown next to each run so a regression is visible.
SINGLE_TARGET_RATIO = 0.5
BATCH_TARGET_POINTS = 200_000


def _reference(step: StepResult, result: BenchResult) -> StepResult | None:
    """What a step is measured against: the C clients for messages, InfluxDB for points."""
    return result.ceiling if step.unit == "msg" else result.store_ceiling


def _ratio(step: StepResult, result: BenchResult) -> str:
    reference = _reference(step, result)
    if reference is None or not reference.rate:
        return ""
    if reference is step:
        return "1.00x"
    return f"{step.rate / reference.rate:.2f}x"


def _cpu(step: StepResult) -> str:
    order = ("ingest", "mosquitto", "influxd")
    parts = [f"{name} {step.cpu_seconds[name]:.1f}" for name in order if name in step.cpu_seconds]
    return ", ".join(parts)


def _target(step: StepResult, ceiling: StepResult | None) -> str:
    if step.name.startswith("(a"):
        return ""
    if step.unit == "msg":
        if ceiling is None or not ceiling.rate:
            return "?"
        met = step.rate >= SINGLE_TARGET_RATIO * ceiling.rate
        return f"≥{SINGLE_TARGET_RATIO}x C: {'met' if met else 'NOT met'}"
    met = step.rate >= BATCH_TARGET_POINTS
    return f"≥{BATCH_TARGET_POINTS // 1000}k pts/s: {'met' if met else 'NOT met'}"


def _rows(result: BenchResult) -> list[list[str]]:
    rows = []
    for step in [result.ceiling, result.store_ceiling, *result.steps]:
        if step is None:
            continue
        rows.append(
            [
                step.name,
                f"{step.items:,} {step.unit}",
                f"{step.seconds:.2f}",
                f"{step.rate:,.0f} {step.unit}/s",
                _ratio(step, result),
                "yes" if step.verified else "NO",
                _cpu(step),
                _target(step, result.ceiling),
            ]
        )
    return rows


HEADERS = ["step", "sent", "seconds", "rate", "vs (a) / (a')", "nothing lost", "CPU s", "target"]


def print_table(result: BenchResult, console: Console) -> None:
    table = Table(title=f"iotmon bench ingest — {result.machine.describe()}")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("step", "target") else "right")
    for row in _rows(result):
        table.add_row(*row)
    console.print(table)


def markdown(result: BenchResult) -> str:
    options = result.options
    lines = [
        f"### {result.started:%Y-%m-%d %H:%M} UTC, commit {result.machine.commit}",
        "",
        f"- Machine: {result.machine.describe()}",
        f"- Servers: {result.versions.get('mosquitto', '?')}; "
        f"{result.versions.get('influxd', '?')}",
        f"- Options: {options.messages:,} single-reading messages from {options.publishers} "
        f"`mosquitto_pub -l -q 1 -M {options.publisher_inflight}`; {options.batch_messages} "
        f"batches of {options.batch_readings} readings; ingest batch size "
        f"{options.ingest_batch_size}; workers {', '.join(map(str, options.workers))}",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(result)]
    return "\n".join(lines) + "\n"


def append_markdown(result: BenchResult, path: Path) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if RUNS_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{RUNS_HEADING}\n"
    path.write_text(text.rstrip("\n") + "\n\n" + markdown(result))
