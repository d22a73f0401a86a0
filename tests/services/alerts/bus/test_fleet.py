"""The fleet file: what it indexes, and bad files naming file, key path and line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from iotmon_alerts.bus import DeviceRole, load_fleet, parse_fleet
from iotmon_runtime.config_files import ConfigError
from tests.utils.bus import FLEET_YAML

EXAMPLE = Path(__file__).resolve().parents[4] / "services" / "alerts" / "fleet.example.yaml"
IOTMON = Path(sys.executable).with_name("iotmon")


def test_the_example_fleet_loads_with_its_indexes() -> None:
    fleet = load_fleet(EXAMPLE)
    bus = fleet.buses["bus-12"]
    assert [p.id for p in bus.places] == ["elm-street", "mill-lane", "school-oak", "depot-north"]
    assert fleet.devices["bus-12-radar"].roles == {DeviceRole.PRESENCE}
    assert bus.readers == ("bus-12-door", "bus-12-cabin", "bus-12-edge")
    assert fleet.tags["E2801160600002084A3C1F2C"].id == "c-0043"
    assert fleet.children["c-0051"].guardians == ("g-0042-b", "g-0051")
    assert fleet.children["c-0042"].guardians == ("g-0042-a", "g-0042-b")


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_fleet(text, source="fleet.yaml")
    return str(caught.value)


def test_a_bad_value_names_file_key_path_and_line() -> None:
    text = FLEET_YAML.replace("radius_m: 150", "radius_m: -5")
    assert _error(text) == (
        "fleet.yaml: depots.0.radius_m: Input should be greater than 0 (line 4)"
    )


def test_an_unknown_key_is_refused() -> None:
    text = FLEET_YAML.replace("    driver: driver-1\n", "    driver: driver-1\n    colour: red\n")
    assert "fleet.yaml: buses.0.colour: Extra inputs are not permitted (line 21)" in _error(text)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("    school: school-1\n    stops:\n      - {id: stop-c", "    school: school-9\n"
             "    stops:\n      - {id: stop-c"),
            "fleet.yaml: routes.1.school: no school 'school-9' in schools (line 14)",
        ),
        (
            ("tags: [TAG-BEN]", "tags: [TAG-ANN]"),
            "fleet.yaml: children.1.tags.0: tag 'TAG-ANN' already belongs to child 'ann' (line 35)",
        ),
        (
            ("door_reader: bus-2-door", "door_reader: bus-1-door"),
            "fleet.yaml: buses.1.devices: device 'bus-1-door' is already bus 'bus-1''s "
            "(buses.0.devices) (line 32)",
        ),
        (
            ("children: [cid]", "children: [cid, zed]"),
            "fleet.yaml: guardians.2.children.1: no child 'zed' in children (line 41)",
        ),
        (
            ("bus: bus-2, stop: stop-c", "bus: bus-2, stop: stop-a"),
            "fleet.yaml: children.3.stop: no stop 'stop-a' on bus 'bus-2''s route (line 37)",
        ),
    ],
)  # fmt: skip
def test_broken_references_name_where_they_were_written(
    change: tuple[str, str], expected: str
) -> None:
    assert change[0] in FLEET_YAML
    assert _error(FLEET_YAML.replace(*change)) == expected


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = FLEET_YAML.replace("route: route-2", "route: route-9").replace(
        "depot: depot-1\n    driver: driver-1", "depot: depot-7\n    driver: driver-1"
    )
    lines = _error(text).splitlines()
    assert lines == [
        "fleet.yaml: buses.0.depot: no depot 'depot-7' in depots (line 19)",
        "fleet.yaml: buses.1.route: no route 'route-9' in routes (line 31)",
    ]


def test_not_yaml_and_not_a_file() -> None:
    assert _error("tenant: [demo").startswith("fleet.yaml: invalid YAML")
    with pytest.raises(ConfigError, match="cannot read"):
        load_fleet(Path("/nonexistent/fleet.yaml"))


def test_iotmon_bus_check_exits_1_naming_each_problem(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text(FLEET_YAML.replace("radius_m: 150", "radius_m: -5"))
    argv = [str(IOTMON), "bus", "check", str(EXAMPLE), str(bad)]
    env = {**os.environ, "COLUMNS": "250"}
    run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert run.returncode == 1
    assert f"ok {EXAMPLE}: 1 buses, 3 children, 3 guardians" in run.stderr
    assert f"{bad}: depots.0.radius_m: Input should be greater than 0 (line 4)" in run.stderr
