"""Contract-valid payload files for the benchmark publishers: one message per line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(microseconds: int) -> str:
    # Integer microseconds: float seconds would give two readings the same timestamp.
    return (_EPOCH + timedelta(microseconds=microseconds)).isoformat()


@dataclass(frozen=True, slots=True)
class PayloadSet:
    files: list[Path]
    messages: int
    readings: int
    value_sum: float


def write_singles(folder: Path, messages: int, files: int, base_us: int) -> PayloadSet:
    """``messages`` SingleReadings split over ``files`` files; every (file, line) a unique ts."""
    folder.mkdir(parents=True, exist_ok=True)
    per_file = messages // files
    paths: list[Path] = []
    total = 0.0
    for index in range(files):
        path = folder / f"singles-{index}.txt"
        lines = []
        offset = base_us + index * per_file
        for line in range(per_file):
            value = round(20 + (line % 1000) * 0.01, 2)
            total += value
            lines.append(
                f'{{"metric":"temperature","value":{value!r},"ts":"{_iso(offset + line)}",'
                f'"seq":{line}}}'
            )
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return PayloadSet(paths, per_file * files, per_file * files, total)


CHILDREN_PER_GATEWAY = 50


def batch_children(file_index: int) -> list[str]:
    """The child devices of gateway ``gw-<file_index>``'s batches, for the registry."""
    return [f"c{file_index}-{n}" for n in range(CHILDREN_PER_GATEWAY)]


def write_batches(
    folder: Path, messages: int, readings_per_message: int, files: int, base_us: int
) -> PayloadSet:
    """Gateway ReadingBatch messages; child devices ``c<file>-<n>`` spread the series."""
    folder.mkdir(parents=True, exist_ok=True)
    per_file = messages // files
    paths: list[Path] = []
    total = 0.0
    for index in range(files):
        path = folder / f"batches-{index}.txt"
        with path.open("w") as handle:
            for message in range(per_file):
                offset = base_us + (index * per_file + message) * readings_per_message
                readings = []
                for n in range(readings_per_message):
                    value = round((n % 500) * 0.5, 1)
                    total += value
                    readings.append(
                        {
                            "metric": "power_w",
                            "value": value,
                            "ts": _iso(offset + n),
                            "device": f"c{index}-{n % CHILDREN_PER_GATEWAY}",
                        }
                    )
                handle.write(json.dumps({"readings": readings}, separators=(",", ":")) + "\n")
        paths.append(path)
    count = per_file * files
    return PayloadSet(paths, count, count * readings_per_message, total)
