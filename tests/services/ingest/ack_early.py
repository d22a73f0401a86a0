"""``iotmon ingest`` broken on purpose: each batch is acknowledged *before* it is written.

Run as a script in place of the ``iotmon`` entry point (same arguments). The
kill-and-restart tests run their scenario with it to show that their checks
catch exactly this regression; it is never used to test a guarantee.
"""

from __future__ import annotations

import dataclasses

from iotmon_ingest.pipeline import DecodedBatch
from iotmon_ingest.writer import StoreWriter
from iotmon_tools.cli.main import run


def _acknowledge_first() -> None:
    handle = StoreWriter._handle
    if not callable(handle):
        raise SystemExit("StoreWriter._handle is gone: update tests/services/ingest/ack_early.py")

    def ack_then_write(self: StoreWriter, batch: DecodedBatch) -> None:
        self._ack(batch.tokens)
        handle(self, dataclasses.replace(batch, tokens=[]))

    StoreWriter._handle = ack_then_write  # type: ignore[method-assign]


if __name__ == "__main__":
    _acknowledge_first()
    run()
