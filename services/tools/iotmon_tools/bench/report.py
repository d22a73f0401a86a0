"""Print a benchmark's figures as a table and append them to docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from iotmon_tools.bench.ingest import BenchResult, SoakResult, StepResult

RUNS_HEADING = "## Runs"

# The targets set for ingest (issue 12); shown next to each run so a regression is visible.
SINGLE_TARGET_RATIO = 0.9
"""Single readings with one worker, against the C clients (a)."""
CPU_TARGET_RATIO = 0.5
"""Ingest's CPU per single-reading message against mosquitto's in the same step."""
BATCH_TARGET_RATIOS = {1: 0.45, 2: 0.6}
"""Batched readings against InfluxDB alone (a'), by worker count (more workers: 2's)."""

_MIB = 2**20


def _reference(step: StepResult, result: BenchResult) -> StepResult | None:
    """What a step is measured against: the C clients for messages, InfluxDB for points."""
    return result.ceiling if step.unit == "msg" else result.store_ceiling


def ratio(step: StepResult, result: BenchResult) -> float | None:
    reference = _reference(step, result)
    if reference is None or not reference.rate:
        return None
    return step.rate / reference.rate


def _ratio(step: StepResult, result: BenchResult) -> str:
    if _reference(step, result) is step:
        return "1.00x"
    value = ratio(step, result)
    return "" if value is None else f"{value:.2f}x"


def _cpu(step: StepResult) -> str:
    order = ("ingest", "mosquitto", "mosquitto_sub", "influxd")
    parts = [f"{name} {step.cpu_seconds[name]:.1f}" for name in order if name in step.cpu_seconds]
    return ", ".join(parts)


def cpu_ratio(step: StepResult) -> float | None:
    """Ingest's CPU over mosquitto's in the same step (per message: the same count)."""
    ingest = step.cpu_seconds.get("ingest")
    broker = step.cpu_seconds.get("mosquitto")
    if ingest is None or not broker:
        return None
    return ingest / broker


def _per_item(step: StepResult) -> str:
    """CPU µs per message or point: ingest's, and mosquitto's beside it for messages."""
    if not step.items or "ingest" not in step.cpu_seconds:
        return ""
    text = f"{step.cpu_seconds['ingest'] / step.items * 1e6:.1f}"
    value = cpu_ratio(step)
    if step.unit == "msg" and value is not None:
        broker = step.cpu_seconds["mosquitto"] / step.items * 1e6
        text += f" (mosquitto {broker:.1f}: {value:.2f}x)"
    return text


def _rss(step: StepResult) -> str:
    return f"{step.peak_rss / _MIB:.0f}" if step.peak_rss else ""


def targets(step: StepResult, result: BenchResult) -> list[tuple[str, bool]]:
    """Each target that applies to a step, and whether the step met it."""
    if step.name.startswith("(a"):
        return []
    value = ratio(step, result)
    found: list[tuple[str, bool]] = []
    if step.unit == "msg":
        if step.workers == 1:
            found.append(
                (f"≥{SINGLE_TARGET_RATIO}x C", value is not None and value >= SINGLE_TARGET_RATIO)
            )
            cpu = cpu_ratio(step)
            found.append(
                (f"CPU ≤{CPU_TARGET_RATIO}x mosquitto", cpu is not None and cpu <= CPU_TARGET_RATIO)
            )
        return found
    wanted = BATCH_TARGET_RATIOS[min(max(step.workers, 1), 2)]
    found.append((f"≥{wanted}x InfluxDB", value is not None and value >= wanted))
    return found


def _target(step: StepResult, result: BenchResult) -> str:
    return "; ".join(
        f"{name}: {'met' if met else 'NOT met'}" for name, met in targets(step, result)
    )


def _steps(result: BenchResult) -> list[StepResult]:
    steps = [result.ceiling, result.store_ceiling, *result.steps]
    if result.soak is not None:
        steps.append(result.soak.step)
    return [step for step in steps if step is not None]


def _rows(result: BenchResult) -> list[list[str]]:
    return [
        [
            step.name,
            f"{step.items:,} {step.unit}",
            f"{step.seconds:.2f}",
            f"{step.rate:,.0f} {step.unit}/s",
            _ratio(step, result),
            "yes" if step.verified else "NO",
            _cpu(step),
            _per_item(step),
            _rss(step),
            _target(step, result),
        ]
        for step in _steps(result)
    ]


HEADERS = [
    "step",
    "sent",
    "seconds",
    "rate",
    "vs (a) / (a')",
    "nothing lost",
    "CPU s",
    "ingest CPU µs/item",
    "ingest peak RSS MiB",
    "target",
]


def soak_lines(soak: SoakResult) -> list[str]:
    """The soak's RSS over time: a sample a minute, the halves' peaks and the verdict."""
    samples = soak.samples
    if not samples:
        return []
    minutes = [samples[0]]
    for sample in samples[1:]:
        if int(sample.seconds // 60) > int(minutes[-1].seconds // 60):
            minutes.append(sample)
    if minutes[-1] is not samples[-1]:
        minutes.append(samples[-1])
    half = soak.step.seconds / 2
    first = soak.peak_between(min(60.0, half / 2), half)
    second = soak.peak_between(half, float("inf"))
    trace = ", ".join(f"{s.seconds / 60:.0f} min {s.rss / _MIB:.0f}" for s in minutes)
    verdict = "bounded" if soak.bounded else "NOT bounded"
    return [
        f"- Soak: ingest RSS (MiB, processes summed) {trace}",
        f"- Soak: highest RSS sample {first / _MIB:.0f} MiB in the first half (after its "
        f"first minute), {second / _MIB:.0f} MiB in the second; peak (VmHWM, summed) "
        f"{soak.step.peak_rss / _MIB:.0f} MiB: **{verdict}** (second half ≤ first x 1.1 + 16 MiB)",
    ]


def print_table(result: BenchResult, console: Console) -> None:
    table = Table(title=f"iotmon bench ingest — {result.machine.describe()}")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("step", "target") else "right")
    for row in _rows(result):
        table.add_row(*row)
    console.print(table)
    for step in _steps(result):
        if not step.verified:
            console.print(f"[red]{step.name}: {step.detail}[/red]")
    if result.soak is not None:
        for line in soak_lines(result.soak):
            console.print(line)


def markdown(result: BenchResult) -> str:
    options = result.options
    lines = [
        f"### {result.started:%Y-%m-%d %H:%M} UTC, commit {result.machine.commit}"
        + (f": soak {options.soak_s / 60:.0f} min" if result.soak is not None else ""),
        "",
        f"- Machine: {result.machine.describe()}; load average {result.load}",
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
    lost = [f"- {step.name}: {step.detail}" for step in _steps(result) if not step.verified]
    if lost:
        lines += ["", *lost]
    if result.soak is not None:
        lines += ["", *soak_lines(result.soak)]
    return "\n".join(lines) + "\n"


def append_markdown(result: BenchResult, path: Path) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if RUNS_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{RUNS_HEADING}\n"
    path.write_text(text.rstrip("\n") + "\n\n" + markdown(result))
