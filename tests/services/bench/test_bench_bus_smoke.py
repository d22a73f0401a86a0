"""``iotmon bench bus`` runs end to end on a few bus-days (its figures mean nothing here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from iotmon_tools.bench.bus import SCENARIOS

IOTMON = Path(sys.executable).with_name("iotmon")


def test_bench_bus_scores_every_scenario_and_appends_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    output.write_text("# Benchmarks\n\nearlier text\n")
    argv = [
        str(IOTMON), "bench", "bus", "--bus-days", "6", "--days", "2", "--no-stress",
        "--output", str(output),
    ]  # fmt: skip
    env = {**os.environ, "COLUMNS": "250"}
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = output.read_text()
    assert text.startswith("# Benchmarks\n\nearlier text\n")
    assert ": iotmon bench bus" in text
    rows = [line for line in text.splitlines() if line.startswith("| delay")]
    assert [row.split("|")[1].strip() for row in rows] == [s.name for s in SCENARIOS]
    assert "privacy: 0 notifications to a guardian of another child" in text
