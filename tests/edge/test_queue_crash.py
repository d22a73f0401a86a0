"""Crash safety: a process killed (SIGKILL) while it writes leaves a queue that opens clean.

A real power cut also loses what the OS had not written yet; SQLite's WAL with
``synchronous=FULL`` makes each commit wait for the disk, so what a commit
returned for is on it. A killed process is the part a test can cut reliably: it
dies at an arbitrary instruction, mid-transaction most of the time.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from iotmon_edge.messages import telemetry_stream
from iotmon_edge.queue_store import QueueStore
from tests.edge.queue_writer import checksum

ROOT = Path(__file__).resolve().parents[2]
KILLS = 12


def _last_committed(lines: list[str]) -> dict[str, int]:
    """The counters of the last complete line the writer printed after a commit."""
    for line in reversed(lines):
        try:
            return {k: int(v) for k, v in json.loads(line).items()}
        except ValueError:
            continue  # cut mid-line by the kill
    return {}


def test_a_queue_killed_mid_write_opens_clean_with_everything_committed(tmp_path: Path) -> None:
    path = tmp_path / "queue.db"
    rng = random.Random(7)
    committed: dict[str, int] = {}
    for kill in range(KILLS):
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.edge.queue_writer", str(path), str(kill)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert writer.stdout is not None
        first = writer.stdout.readline()  # the first commit is done
        assert first, writer.stderr.read() if writer.stderr else ""
        time.sleep(rng.uniform(0.01, 0.4))
        writer.send_signal(signal.SIGKILL)
        rest, errors = writer.communicate(timeout=10)
        assert writer.returncode == -signal.SIGKILL, errors.decode()
        lines = [first.decode(), *rest.decode().splitlines()]
        committed = _last_committed(lines) or committed

        store = QueueStore(path)
        report = store.open()
        try:
            assert report.damaged_moved_to is None, f"kill {kill}: the queue did not open clean"
            sequences = store.sequences()
            # Everything the writer saw committed survived the kill.
            for stream, value in committed.items():
                assert sequences.get(stream, 0) >= value, (kill, stream)
            _check_rows(store, sequences, kill)
        finally:
            store.close()


def _check_rows(store: QueueStore, sequences: dict[str, int], kill: int) -> None:
    by_device: dict[str, list[int]] = defaultdict(list)
    messages = size = 0
    after = 0
    while rows := store.read(after, 1000):
        for row in rows:
            body = json.loads(row.payload)  # whole: no torn payload
            assert body["check"] == checksum(body["device"], body["seq"], body["pad"]), kill
            assert row.topic == f"iotmon/v1/t/{body['device']}/telemetry"
            by_device[body["device"]].append(body["seq"])
            messages += 1
            size += row.size
            after = row.id
    for device, seqs in by_device.items():
        # The oldest go first (acks, drops): what is left is a contiguous run that
        # ends where the committed counter says; a message and its number committed
        # together.
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (kill, device)
        assert seqs[-1] == sequences[telemetry_stream(device)] - 1, (kill, device)
    assert store.totals() == (messages, size)
