"""A process that writes to a queue file in a loop until it is killed (for the crash tests).

    python -m tests.edge.queue_writer <queue file> <seed>

Each transaction stores messages of a few devices with their sequence numbers, and
now and then deletes the oldest (as acknowledgements do) or drops them (as the bound
does). After each commit it prints the committed ``stream=next`` counters, so the
killer knows what must have survived.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

from iotmon_edge.messages import telemetry_stream
from iotmon_edge.queue_store import QueueStore
from iotmon_runtime.mqtt import OutgoingMessage

DEVICES = 5


def checksum(device: str, seq: int, pad: str) -> str:
    return hashlib.sha256(f"{device}:{seq}:{pad}".encode()).hexdigest()[:16]


def main() -> None:
    path, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    store = QueueStore(path)
    store.open()
    sequences = store.sequences()
    while True:
        messages = []
        changed: dict[str, int] = {}
        for _ in range(rng.randint(1, 60)):
            device = f"d{rng.randrange(DEVICES)}"
            stream = telemetry_stream(device)
            seq = sequences.get(stream, 0)
            pad = "x" * rng.randint(0, 3000)
            body = {"device": device, "seq": seq, "pad": pad, "check": checksum(device, seq, pad)}
            topic = f"iotmon/v1/t/{device}/telemetry"
            messages.append(OutgoingMessage(topic, json.dumps(body).encode(), 1, False))
            sequences[stream] = changed[stream] = seq + 1
        store.append(messages, changed)
        sys.stdout.write(json.dumps(sequences) + "\n")
        sys.stdout.flush()
        roll = rng.random()
        if roll < 0.3:
            oldest = store.read(0, rng.randint(1, 80))
            store.delete([row.id for row in oldest])
        elif roll < 0.35:
            store.drop_oldest(store.totals().bytes // 2)


if __name__ == "__main__":
    main()
