"""Print ``iotmon bench api`` figures as a table and append them to docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from iotmon_tools.bench.api import ApiBenchResult, ApiStep

RUNS_HEADING = "### API runs"
HEADERS = [
    "step",
    "requests",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "non-200",
    "CPU s",
    "p99 target / vs reference",
]
CPU_ORDER = (
    "api",
    "reference api",
    "influxd",
    "ingest",
    "mosquitto",
    "simulator",
    "load generator",
)


def _cpu(step: ApiStep) -> str:
    return ", ".join(
        f"{name} {step.cpu_seconds[name]:.1f}" for name in CPU_ORDER if name in step.cpu_seconds
    )


def _ratio(step: ApiStep, result: ApiBenchResult) -> str:
    """A reference step's p50, p99 and rate against ours on the same kind of step."""
    if not step.kind.startswith("reference "):
        return ""
    ours = next(
        (
            s
            for s in result.steps
            if s.kind == "latest" and s.name.endswith(step.name.split(": ", 1)[1])
        ),
        None,
    )
    if ours is None or not ours.p99_ms or not step.rate:
        return ""
    return (
        f"ours: p50 {step.p50_ms / max(ours.p50_ms, 1e-9):.1f}x lower, p99 "
        f"{step.p99_ms / ours.p99_ms:.1f}x lower, {ours.rate / step.rate:.2f}x the req/s"
    )


def _target(step: ApiStep) -> str:
    target = step.target_ms
    if target is None:
        return ""
    return f"≤{target:.0f} ms: {'met' if step.p99_ms <= target else 'NOT met'}"


def _rows(result: ApiBenchResult) -> list[list[str]]:
    return [
        [
            step.name,
            f"{step.requests:,}",
            f"{step.rate:,.0f}",
            f"{step.p50_ms:.1f}",
            f"{step.p90_ms:.1f}",
            f"{step.p99_ms:.1f}",
            f"{step.max_ms:.0f}",
            ", ".join(f"{c}: {n}" for c, n in sorted(step.statuses.items()) if c != "200") or "0",
            _cpu(step),
            _target(step) or _ratio(step, result),
        ]
        for step in result.steps
    ]


def _outage(result: ApiBenchResult) -> str:
    outage = result.outage
    if outage is None:
        return "store outage: not measured"
    answers = sum(outage.statuses.values())
    statuses = ", ".join(f"{code}: {count}" for code, count in sorted(outage.statuses.items()))
    recovery = f"{outage.recovery_s:.2f} s" if outage.recovery_s is not None else "NOT within 30 s"
    return (
        f"store outage (influxd stopped under paced series load): {answers} answers ({statuses}), "
        f"{outage.with_retry_after} with Retry-After; first 200 {recovery} after influxd "
        "answered its ping again"
    )


def print_table(result: ApiBenchResult, console: Console) -> None:
    table = Table(title=f"iotmon bench api — {result.machine.describe()}")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("step", "CPU s") else "right")
    for row in _rows(result):
        table.add_row(*row)
    console.print(table)
    console.print(_outage(result))


def markdown(result: ApiBenchResult) -> str:
    options = result.options
    load = ", ".join(f"{value:.2f}" for value in result.load_average)
    lines = [
        f"#### {result.started:%Y-%m-%d %H:%M} UTC, commit {result.machine.commit}",
        "",
        f"- Machine: {result.machine.describe()}; load average before the run {load}",
        f"- Servers: {result.versions.get('mosquitto', '?')}; "
        f"{result.versions.get('influxd', '?')}",
        f"- Options: {options.devices} simulated sensors every {options.interval_s:g} s through "
        f"mosquitto and ingest; {options.history_hours:g} h of history backfilled; "
        f"{options.clients} clients, {options.duration_s:g} s per step after "
        f"{options.warmup_s:g} s of warm-up",
        f"- {_outage(result)}",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(result)]
    return "\n".join(lines) + "\n"


def append_markdown(result: ApiBenchResult, path: Path) -> None:
    """Add the run at the end of the API runs (before the next ``## `` section, where the
    ingest benchmark appends its own runs)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if RUNS_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{RUNS_HEADING}\n"
    start = text.index(RUNS_HEADING) + len(RUNS_HEADING)
    end = text.find("\n## ", start)
    end = len(text) if end < 0 else end + 1
    section = text[:end].rstrip("\n") + "\n\n" + markdown(result)
    rest = text[end:]
    path.write_text(section + ("\n" + rest if rest else ""))
