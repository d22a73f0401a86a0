"""The runtime's Supervisor: the main loop under every service's ``run``.

The workers here are small real ones (threads, events), not mocks: what is checked
is the order of starts and stops, that one bad stop does not keep the rest running,
and the exit code a failure gives.
"""

from __future__ import annotations

import threading

import pytest

from iotmon_runtime.workers import EXIT_FAILED, EXIT_OK, Supervisor


class Recorded:
    """A worker that writes its starts and stops into a shared journal."""

    def __init__(self, name: str, journal: list[str], *, fail_start: bool = False) -> None:
        self.name = name
        self.journal = journal
        self.fail_start = fail_start
        self.fail_stop = False
        self.failure: str | None = None

    def start(self) -> None:
        if self.fail_start:
            raise OSError(f"{self.name} cannot bind its port")
        self.journal.append(f"start {self.name}")

    def stop(self) -> None:
        self.journal.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} would not stop")


class FailsLater(Recorded):
    """Fails for good on its own thread, as a service does on refused credentials."""

    def start(self) -> None:
        super().start()
        threading.Timer(0.05, self._fail).start()

    def _fail(self) -> None:
        self.failure = "the broker refused the login"
        self.stop_event.set()

    stop_event: threading.Event


def test_workers_start_in_order_and_stop_in_reverse_when_the_stop_event_is_set() -> None:
    journal: list[str] = []
    stop = threading.Event()
    workers = [Recorded(name, journal) for name in ("broker", "ingest", "api")]
    supervisor = Supervisor([(w.name, w) for w in workers], stop)
    threading.Timer(0.05, stop.set).start()

    assert supervisor.run() == EXIT_OK
    assert journal == [
        "start broker",
        "start ingest",
        "start api",
        "stop api",
        "stop ingest",
        "stop broker",
    ]


def test_a_worker_that_will_not_stop_does_not_keep_the_others_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal: list[str] = []
    stop = threading.Event()
    first, stubborn, last = (Recorded(name, journal) for name in ("a", "b", "c"))
    stubborn.fail_stop = True
    stop.set()

    assert Supervisor([("a", first), ("b", stubborn), ("c", last)], stop).run() == EXIT_OK
    assert journal[-3:] == ["stop c", "stop b", "stop a"]
    assert "b did not stop cleanly" in caplog.text


def test_a_start_that_raises_stops_what_started_and_reaches_the_caller() -> None:
    journal: list[str] = []
    stop = threading.Event()
    started = Recorded("store", journal)
    broken = Recorded("metrics", journal, fail_start=True)
    never = Recorded("api", journal)

    with pytest.raises(OSError, match="metrics cannot bind its port"):
        Supervisor([("store", started), ("metrics", broken), ("api", never)], stop).run()
    assert journal == ["start store", "stop store"]


@pytest.mark.parametrize("failed_exit", [EXIT_FAILED, 2])
def test_a_worker_failing_for_good_stops_all_with_the_failure_exit_code(
    failed_exit: int, caplog: pytest.LogCaptureFixture
) -> None:
    journal: list[str] = []
    stop = threading.Event()
    steady = Recorded("store", journal)
    failing = FailsLater("mqtt", journal)
    failing.stop_event = stop
    supervisor = Supervisor([("store", steady), ("mqtt", failing)], stop, failed_exit=failed_exit)

    assert supervisor.run() == failed_exit
    assert journal == ["start store", "start mqtt", "stop mqtt", "stop store"]
    assert supervisor.failures() == ["mqtt: the broker refused the login"]
    assert "stopped on a failure: mqtt: the broker refused the login" in caplog.text
