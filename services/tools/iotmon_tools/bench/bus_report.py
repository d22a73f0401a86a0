"""``iotmon bench bus``'s figures: a table on the console and a section in docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console
from rich.table import Table

from iotmon_tools.bench.bus import BusBenchResult, ScenarioResult
from iotmon_tools.bench.machine import Machine

FALSE_GUARDIAN_TARGET = 0.01

HEADERS = [
    "scenario",
    "bus-days / runs",
    "guardians woken for nothing (runs)",
    "why",
    "walk-through asked (runs)",
    "left aboard: with evidence / alerted / taken off first / missed",
    "guardians told",
    "undetectable (person alert)",
    "first alert p50 / max s",
]


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.2f} %" if whole else "-"


def _row(r: ScenarioResult) -> list[str]:
    s = r.score
    why = ", ".join(f"{k} {v}" for k, v in sorted(s.false_guardian_by_reason.items())) or "-"
    late = f", {s.alerted_with_outage} after a link outage" if s.alerted_with_outage else ""
    return [
        r.scenario.name,
        f"{s.bus_days} / {s.runs}",
        f"{s.false_guardian_runs} ({_pct(s.false_guardian_runs, s.runs)})",
        why,
        f"{s.counted_alert_runs} ({_pct(s.counted_alert_runs, s.runs)})",
        f"{s.with_evidence} / {s.alerted} / {s.off_before_decision} / {s.missed}{late}",
        f"{s.guardians_told}",
        f"{s.undetectable} ({s.undetectable_person_alert})",
        f"{s.decision_delay(0.5):.0f} / {max(s.decision_delays, default=0):.0f}",
    ]


def _notices(result: BusBenchResult) -> list[str]:
    s = result.results[-1].score if result.results else None
    if s is None:
        return []
    return [
        f"- notices: {s.passages_notified:,} of {s.passages_read:,} read passages notified "
        f"({_pct(s.passages_notified, s.passages_read)}); stop right "
        f"{_pct(s.stops_right, s.passages_notified)}, no stop (GPS dropout) "
        f"{_pct(s.stops_missing, s.passages_notified)}; from the passage to its notice "
        f"p50 {s.notice_delay(0.5):.1f} s, p99 {s.notice_delay(0.99):.1f} s, max "
        f"{max(s.notice_delays, default=0):.1f} s (runs without a link outage)",
        f"- privacy: {s.privacy_violations} notifications to a guardian of another child",
        f"- bus empty said {s.bus_empty:,} times, {s.bus_empty_wrong} of them with a child "
        f"still inside; occupancy unknown in {s.occupancy_unknown_runs} runs",
    ]


def print_bus_table(result: BusBenchResult, machine: Machine, console: Console) -> None:
    table = Table(title=f"iotmon bench bus — {machine.describe()}")
    for header in HEADERS:
        table.add_column(header, justify="left" if header in ("scenario", "why") else "right")
    for r in result.results:
        table.add_row(*_row(r))
    console.print(table)
    for line in _notices(result):
        console.print(line, highlight=False)


def append_bus_markdown(result: BusBenchResult, machine: Machine, path: Path) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    fleets = ", ".join(f"{seed} ({buses} buses)" for seed, buses in result.fleets)
    events = sum(r.events for r in result.results)
    replay_s = sum(r.replay_s for r in result.results)
    lines = [
        "",
        f"### {now}, commit {machine.commit}: iotmon bench bus",
        "",
        f"{machine.describe()}. Fleets (seed: buses) {fleets}, {result.options.days} school "
        f"days each; simulated in {result.simulate_s:.0f} s, {events:,} events replayed in "
        f"{replay_s:.0f} s ({events / replay_s if replay_s else 0:,.0f} events/s).",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in result.results]
    lines += ["", *_notices(result), ""]
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines))
