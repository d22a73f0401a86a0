"""The operator console in real headless Chromium, on the real stack (mosquitto, InfluxDB,
ingest, the alert service with the school-bus rules, the API): log in with an operator
token, watch a bus's run, see the child-left-aboard alert appear within seconds of the
run end, acknowledge it with a reason and see it clear. Screenshots of each step are
kept as test artefacts (``.state/test-artifacts/console-*.png``); with
``IOTMON_UPDATE_SCREENSHOTS=1`` the alert one becomes the README's docs/images/console.png
(``tests/screenshots.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from tests.e2e.console_stack import TENANT, Stack, console_stack
from tests.screenshots import CHROMIUM, artifact, publish

ALERT_WITHIN_S = 15.0
"""The rules decide once the sweep is in (or decision_wait_s, 5 s, after the run end)."""


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # Running without it would silently test less: an error, not a skip.
        pytest.fail(f"{CHROMIUM} is not installed: run scripts/setup --dev (apt chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def stack(
    fresh_mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> Iterator[Stack]:
    with console_stack(fresh_mosquitto, influxd, tmp_path) as running:
        yield running


def _shot(page: Page, name: str) -> Path:
    path = artifact(f"console-{name}.png")
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not an empty image
    return path


def _log_in(page: Page, stack: Stack, token: str) -> None:
    page.goto(f"{stack.api_url}/console")
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("live")).to_have_text("live", timeout=10_000)
    expect(page.get_by_test_id("login")).to_be_hidden()


def test_an_operator_sees_a_child_left_aboard_acknowledges_it_and_sees_it_clear(
    stack: Stack, browser: Browser, request: pytest.FixtureRequest
) -> None:
    bus = stack.bus
    operator = {"Authorization": f"Bearer {stack.operator_token}"}
    for device in ("bus-1-gps", "bus-1-door", "bus-1-cabin", "gate-cam"):
        bus.status(device, "online")
    bus.status("bus-2-door", "offline")
    now = datetime.now(UTC)
    bus.morning_until_back(now - timedelta(seconds=125))
    bus.send("gate-cam", {"type": "detection", "label": "person", "confidence": 0.91,
                          "box": [0.3, 0.2, 0.2, 0.6],
                          "snapshot_url": stack.media.url("gate-cam/1.jpg")},
             now - timedelta(seconds=30))  # fmt: skip
    bus.publisher.flush()

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    # The page must live within its own Content-Security-Policy (a violation is only logged).
    page.on("console", lambda m: problems.append(m.text) if "Content Security" in m.text else None)
    _log_in(page, stack, stack.operator_token)
    expect(page.get_by_test_id("who")).to_contain_text(f"operator dispatch · tenant {TENANT}")

    # Mid-run view: the door count has Cid aboard, nothing has fired.
    bus_card = page.locator('[data-testid=bus][data-bus="bus-1"]')
    expect(bus_card.get_by_test_id("aboard")).to_contain_text("TAG-CID", timeout=15_000)
    expect(bus_card.get_by_test_id("aboard-count")).to_have_text("1")
    expect(page.locator('[data-testid=device][data-device="bus-2-door"]')).to_have_attribute(
        "data-state", "offline", timeout=10_000
    )
    expect(page.locator('[data-testid=device][data-device="bus-1-door"]')).to_have_attribute(
        "data-state", "online"
    )
    snapshot = page.locator('[data-testid=camera-event][data-device="gate-cam"] img')
    expect(snapshot).to_have_attribute("src", stack.media.url("gate-cam/1.jpg"), timeout=10_000)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=snapshot.element_handle()
    )
    assert stack.media.served[0] >= 1
    left_aboard = page.locator('[data-testid=alert][data-rule="child_left_aboard"]')
    assert left_aboard.count() == 0
    _shot(page, "1-run-under-way")

    # The run ends: the alert must be on the operator's screen within seconds.
    ended = time.monotonic()
    bus.run_end(datetime.now(UTC))
    firing = page.locator(
        '[data-testid=alerts-active] [data-testid=alert][data-rule="child_left_aboard"]'
    )
    expect(firing).to_have_count(1, timeout=ALERT_WITHIN_S * 1000)
    seen_after = time.monotonic() - ended
    assert seen_after < ALERT_WITHIN_S
    expect(firing).to_have_attribute("data-active", "true")
    expect(firing).to_contain_text("child cid")
    expect(bus_card).to_contain_text("run ended", timeout=10_000)
    expect(bus_card.get_by_test_id("last-sweep")).to_contain_text(
        "sw-1: 1/1 reads, complete, 1 inside (cid)"
    )
    publish(_shot(page, "2-child-left-aboard"), "console.png")

    # Silence it for an hour: the silence matches its rule and subject.
    firing.get_by_test_id("silence-open").click()
    firing.get_by_test_id("reason").fill("the depot is checking the bus")
    firing.get_by_test_id("reason-submit").click()
    expect(firing.get_by_test_id("sent")).to_have_text("Silence 1 h: sent")
    silences = httpx.get(f"{stack.api_url}/api/v1/silences", headers=operator).json()["data"]
    assert [(s["matchers"], s["comment"], s["active"]) for s in silences] == [
        ({"rule": "child_left_aboard", "bus": "bus-1", "child": "cid"},
         "the depot is checking the bus", True)
    ]  # fmt: skip

    # A reason is required: the API refuses an empty one (RFC 9457), the page says so.
    firing.get_by_test_id("ack-open").click()
    reason = firing.get_by_test_id("reason")
    reason.fill("   ")
    reason.evaluate("input => input.removeAttribute('required')")
    firing.get_by_test_id("reason-submit").click()
    expect(firing.get_by_test_id("form-error")).to_contain_text("reason", timeout=5_000)
    reason.fill("driver checked the bus: Cid was asleep on the back seat, now at school")
    firing.get_by_test_id("reason-submit").click()

    cleared = page.locator(
        '[data-testid=alerts-cleared] [data-testid=alert][data-rule="child_left_aboard"]'
    )
    expect(cleared).to_have_count(1, timeout=10_000)
    expect(cleared).to_have_attribute("data-state", "acknowledged")
    expect(cleared.get_by_test_id("ack")).to_contain_text(
        "operator:dispatch: driver checked the bus: Cid was asleep"
    )
    expect(firing).to_have_count(0)
    _shot(page, "3-acknowledged")
    assert problems == []

    # The server agrees: the alert is no longer active, and says who cleared it and why.
    answer = httpx.get(
        f"{stack.api_url}/api/v1/alerts", params={"rule": "child_left_aboard"}, headers=operator
    ).json()
    (stored,) = answer["data"]
    assert (stored["active"], stored["state"]) == (False, "acknowledged")
    assert stored["ack_reason"].startswith("driver checked the bus")
    request.node.user_properties.append(("left_aboard_on_screen_s", round(seen_after, 1)))


def test_a_bad_token_is_refused_and_a_facility_sees_only_its_sites(
    stack: Stack, browser: Browser
) -> None:
    bus = stack.bus
    bus.status("bus-1-door", "online")
    bus.status("bus-2-door", "offline")  # not on the facility's site
    bus.publisher.flush()
    page = browser.new_page()
    page.goto(f"{stack.api_url}/console")
    page.get_by_label("Token", exact=True).fill("not-a-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("unknown token")
    _log_in(page, stack, stack.facility_token)
    expect(page.get_by_test_id("who")).to_contain_text(
        "facility depot · tenant demo · sites depot-1"
    )
    expect(page.locator('[data-testid=device][data-device="bus-1-door"]')).to_have_count(
        1, timeout=10_000
    )
    expect(page.locator('[data-testid=device][data-device="bus-2-door"]')).to_have_count(0)
    expect(page.locator('[data-testid=bus][data-bus="bus-1"]')).to_have_count(1)
    expect(page.locator('[data-testid=bus][data-bus="bus-2"]')).to_have_count(0)
