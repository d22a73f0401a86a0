"""Print ``iotmon bench edge`` figures and add them to docs/benchmarks.md's edge section."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from iotmon_tools.bench.edge import EdgeBenchResult, EdgeStep

EDGE_HEADING = "## Edge agent footprint"
RUNS_HEADING = "### Edge runs"

RSS_TARGET_MIB = 40
CPU_TARGET_PERCENT = 2.0
DRAIN_TARGET_RATE = 5000


def _target(step: EdgeStep) -> str:
    rss = step.hwm_kib / 1024
    rss_note = f"RSS ≤{RSS_TARGET_MIB} MB: {'met' if rss <= RSS_TARGET_MIB else 'NOT met'}"
    if step.name.startswith("(s)"):
        cpu_ok = step.cpu_percent <= CPU_TARGET_PERCENT
        return f"{rss_note}; CPU ≤{CPU_TARGET_PERCENT:g}%: {'met' if cpu_ok else 'NOT met'}"
    rate_ok = step.rate >= DRAIN_TARGET_RATE
    return f"{rss_note}; ≥{DRAIN_TARGET_RATE:,}/s: {'met' if rate_ok else 'NOT met'}"


HEADERS = [
    "step",
    "seconds",
    "readings",
    "rate",
    "agent CPU",
    "RSS end / peak",
    "mosquitto CPU s",
    "machine busy",
    "ok",
    "target",
]


def _rows(result: EdgeBenchResult) -> list[list[str]]:
    return [
        [
            step.name,
            f"{step.seconds:.1f}",
            f"{step.messages:,}",
            f"{step.rate:,.0f}/s",
            f"{step.cpu_percent:.2f}% of a core",
            f"{step.rss_kib / 1024:.1f} / {step.hwm_kib / 1024:.1f} MiB",
            f"{step.mosquitto_cpu_s:.1f}",
            f"{100 * step.machine_busy:.0f}% of {result.machine.cores} cores",
            "yes" if step.verified else "NO",
            _target(step),
        ]
        for step in result.steps
    ]


def print_edge_table(result: EdgeBenchResult, console: Console) -> None:
    imports = Table(title="(r) RSS of the agent's venv interpreter")
    imports.add_column("after")
    imports.add_column("RSS", justify="right")
    for label, kib in result.imports:
        imports.add_row(label, f"{kib / 1024:.1f} MiB")
    console.print(imports)
    table = Table(title=f"iotmon bench edge — {result.machine.describe()}")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("step", "target") else "right")
    for row in _rows(result):
        table.add_row(*row)
    console.print(table)
    for step in result.steps:
        console.print(f"{step.name}: {step.detail}")


def edge_markdown(result: EdgeBenchResult) -> str:
    options = result.options
    lines = [
        f"#### {result.started:%Y-%m-%d %H:%M} UTC, commit {result.machine.commit}",
        "",
        f"- Machine: {result.machine.describe()}; load average at start {result.loadavg}",
        f"- Agent: Python {result.versions.get('agent python', '?')} in a venv with the edge "
        f"distributions only; {result.versions.get('mosquitto', '?')}",
        f"- Options: {options.sensors} sensors every {options.interval_s:g}s (single mode), "
        f"{options.warmup_s:g}s warm-up, {options.steady_s:g}s measured; backlog "
        f"{options.backlog:,} readings, drain rate "
        f"{f'{options.drain_rate:g} msg/s' if options.drain_rate else 'unlimited'}",
        "- RSS by import: "
        + ", ".join(f"{label} {kib / 1024:.1f} MiB" for label, kib in result.imports),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(result)]
    lines += [""] + [f"- {step.name}: {step.detail}" for step in result.steps]
    return "\n".join(lines) + "\n"


def append_edge_markdown(result: EdgeBenchResult, path: Path) -> None:
    """Add the run at the end of the edge section (before the next ``## `` heading)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if EDGE_HEADING not in text:
        # Ahead of ingest's "## Runs", which its own runs are appended under.
        section = f"{EDGE_HEADING}\n\n{RUNS_HEADING}\n"
        if "\n## Runs" in text:
            cut = text.index("\n## Runs") + 1
            text = text[:cut] + section + "\n" + text[cut:]
        else:
            text = text.rstrip("\n") + "\n\n" + section
    start = text.index(EDGE_HEADING) + len(EDGE_HEADING)
    if RUNS_HEADING not in text[start:]:
        following = text.find("\n## ", start)
        cut = following if following != -1 else len(text)
        text = text[:cut].rstrip("\n") + f"\n\n{RUNS_HEADING}\n" + text[cut:]
    following = text.find("\n## ", start)
    cut = following if following != -1 else len(text)
    run = "\n" + edge_markdown(result)
    text = (
        text[:cut].rstrip("\n")
        + "\n"
        + run
        + ("\n" + text[cut:].lstrip("\n") if following != -1 else "")
    )
    path.write_text(text if text.endswith("\n") else text + "\n")
