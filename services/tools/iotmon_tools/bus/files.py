"""The simulator's files (fleet.yaml, events.jsonl, truth.json) and the replay's output."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, NamedTuple

import yaml

from iotmon_alerts.bus import Notification
from iotmon_devices.simulators.school_bus import TRUTH_VERSION, SchoolBusSimConfig, Simulation
from iotmon_devices.simulators.school_bus.truth import LeftAboard, TruthPassage, TruthRun


class SimulationFiles(NamedTuple):
    fleet: Path
    events: Path
    truth: Path


def write_simulation(sim: Simulation, config: SchoolBusSimConfig, folder: Path) -> SimulationFiles:
    """Write the fleet, the delivered events and the ground truth into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = SimulationFiles(folder / "fleet.yaml", folder / "events.jsonl", folder / "truth.json")
    files.fleet.write_text(
        "# A simulated school-bus fleet (iotmon bus simulate); see docs/school-bus.md.\n"
        + yaml.safe_dump(sim.world.document(), sort_keys=False),
        encoding="utf-8",
    )
    with files.events.open("w", encoding="utf-8") as out:
        for line in sim.lines:
            out.write(json.dumps(line.data, separators=(",", ":")))
            out.write("\n")
    truth = {
        "version": TRUTH_VERSION,
        "config": config.model_dump(mode="json"),
        "runs": [run.to_json() for run in sim.runs],
    }
    files.truth.write_text(json.dumps(truth, separators=(",", ":")), encoding="utf-8")
    return files


def read_truth(path: Path) -> list[TruthRun]:
    """The runs of a truth.json; ValueError if it is not one (or another version)."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the truth file: {exc}") from None
    if not isinstance(data, dict) or data.get("version") != TRUTH_VERSION:
        raise ValueError(f"{path}: not a version {TRUTH_VERSION} truth file")
    runs = []
    for raw in data["runs"]:
        fields = dict(raw)
        fields["left_aboard"] = [LeftAboard(**item) for item in raw["left_aboard"]]
        fields["passages"] = [TruthPassage(**item) for item in raw["passages"]]
        runs.append(TruthRun(**fields))
    return runs


def write_notifications(notifications: Iterable[Notification], out: IO[str]) -> int:
    count = 0
    for notification in notifications:
        out.write(json.dumps(notification.to_json(), separators=(",", ":")))
        out.write("\n")
        count += 1
    return count
