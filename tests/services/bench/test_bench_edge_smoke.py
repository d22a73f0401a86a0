"""``iotmon bench edge`` runs end to end on a tiny load (its figures mean nothing here).

It builds the agent's own venv, measures the steady agent with and without its durable
queue and drains a small backlog; this only proves the command works and where the
figures go in docs/benchmarks.md (the edge section, ahead of ingest's runs).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

IOTMON = Path(sys.executable).with_name("iotmon")


@pytest.mark.integration
@pytest.mark.slow
def test_bench_edge_runs_every_step_and_adds_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    output.write_text("# Benchmarks\n\nearlier text\n\n## Runs\n\n### an ingest run\n")
    argv = [
        str(IOTMON), "bench", "edge", "--sensors", "5", "--warmup", "2", "--steady", "5",
        "--backlog", "3000", "--venv", str(tmp_path / "venv"), "--output", str(output),
        "--timeout", "120",
    ]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    text = output.read_text()
    assert text.startswith("# Benchmarks\n\nearlier text\n\n## Edge agent footprint\n")
    assert text.index("### Edge runs") < text.index("## Runs\n") < text.index("### an ingest run")
    rows = [line for line in text.splitlines() if line.startswith("| (")]
    names = [row.split("|")[1].strip() for row in rows]
    assert names == [
        "(s) steady, durable queue",
        "(s) steady, memory only (reference)",
        "(d) drain 3,000 readings, full speed",
    ]
    assert [row.split("|")[9].strip() for row in rows] == ["yes"] * 3  # the "ok" column
    assert "RSS by import: interpreter alone" in text
