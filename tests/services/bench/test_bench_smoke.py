"""``iotmon bench ingest`` runs end to end on a tiny load (its figures mean nothing here).

The benchmark is run by hand for figures; this only proves the command still
works — every step ran, nothing was lost, and a run section was appended.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

IOTMON = Path(sys.executable).with_name("iotmon")


@pytest.mark.integration
def test_bench_ingest_runs_every_step_and_appends_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    output.write_text("# Benchmarks\n\nearlier text\n")
    argv = [
        str(IOTMON), "bench", "ingest", "--messages", "2000", "--publishers", "2",
        "--batch-messages", "4", "--batch-readings", "500", "--workers", "1",
        "--output", str(output), "--timeout", "60",
    ]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = output.read_text()
    assert text.startswith("# Benchmarks\n\nearlier text\n")
    rows = [line for line in text.splitlines() if line.startswith("| (")]
    names = [row.split("|")[1].strip() for row in rows]
    assert names == [
        "(a) C clients, single readings",
        "(a') InfluxDB alone, 5,000-point writes",
        "(b) ingest, 1 worker(s), single readings",
        "(b) ingest, 1 worker(s), batches of 500",
    ]
    # "nothing lost" is the sixth column: every step's count and value sum checked out.
    assert [row.split("|")[6].strip() for row in rows] == ["yes"] * 4
    assert "## Runs" in text


@pytest.mark.integration
def test_bench_api_runs_every_step_and_inserts_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    output.write_text("# Benchmarks\n\n### API runs\n\nearlier API run\n\n## Runs\n\ningest runs\n")
    argv = [
        str(IOTMON), "bench", "api", "--devices", "5", "--clients", "3", "--duration", "1",
        "--warmup", "0.5", "--output", str(output),
    ]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = output.read_text()
    # Inserted after the earlier API runs, before the ingest runs that follow them.
    assert text.index("earlier API run") < text.index("#### ") < text.index("## Runs")
    assert text.endswith("## Runs\n\ningest runs\n")
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| latest (")]
    rows += [line.split("|") for line in text.splitlines() if line.startswith("| series: ")]
    assert len(rows) == 4
    # Every request answered 200 (the non-200 column) while ingest and the sensors ran.
    assert [row[8].strip() for row in rows] == ["0"] * 4
    assert all(int(row[2].replace(",", "")) > 0 for row in rows)
    outage = next(line for line in text.splitlines() if "store outage" in line)
    answers = int(outage.split(": ", 1)[1].split(" answers")[0])
    assert answers > 0
    assert f"(503: {answers}), {answers} with Retry-After" in outage
    assert "first 200" in outage
    assert "NOT within" not in outage
