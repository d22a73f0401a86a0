"""What the day in the life is made of: a tenant with a school and a depot, sensors in the
school's rooms, the two sites' meters (a leak at the depot in the early morning), the bus
fleet's simulated day, the rule file and the fleet file the alert service reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import yaml

from iotmon_devices.meters.metrics import Medium
from iotmon_devices.simulators.environment_config import SimulatedEnvironmentConfig
from iotmon_devices.simulators.meter_config import SimulatedMeterConfig
from iotmon_devices.simulators.meter_profiles import LeakProfile, MeterSimulation, SchoolCalendar
from iotmon_devices.simulators.school_bus import (
    FaultRates,
    SchoolBusSimConfig,
    Simulation,
    simulate,
)
from iotmon_edge import AgentConfig
from iotmon_edge.config import HealthConfig
from iotmon_edge.zigbee2mqtt.config import Zigbee2MqttConfig
from iotmon_tools.demo.bus_replay import BusDevices

SCHOOL_AGENT = "school-gw"
DEPOT_AGENT = "depot-gw"
LEAKING_METER = "meter-depot-water"
LEAK_AFTER = timedelta(minutes=5)
"""The leak starts five simulated minutes into the day: a pipe in the depot's wash bay."""
LEAK_RATE_M3_H = 0.6
HEALTH = HealthConfig(interval_s=10)
"""Agents' health every ten seconds: the edge-health dashboard fills within a minute."""


@dataclass(frozen=True)
class DayPlan:
    tenant: str
    school: str
    depot: str
    sensors: AgentConfig
    depot_meters: AgentConfig
    simulation: Simulation
    buses: list[BusDevices]

    @property
    def guardians_of_left_children(self) -> list[str]:
        """Guardians of the children the simulator leaves aboard (to subscribe them)."""
        left = {child.child for run in self.simulation.runs for child in run.children_aboard}
        return sorted(g.id for g in self.simulation.world.guardians if set(g.children) & left)


def _meter(device: str, medium: Medium, seed: int, **simulation: object) -> SimulatedMeterConfig:
    return SimulatedMeterConfig(
        device_id=device,
        simulation=MeterSimulation.model_validate(
            {"medium": medium, "seed": seed, "initial_total": 1000.0 + seed, **simulation}
        ),
    )


def plan_day(tenant: str, sensors: int, interval: float, epoch: datetime, seed: int) -> DayPlan:
    sim = simulate(
        SchoolBusSimConfig(
            seed=seed,
            days=1,
            buses=3,
            start=epoch.date(),
            tenant=tenant,
            # A child asleep aboard in about a third of the runs, found by the driver half
            # the time: the guardians' and operator's alerts happen in one day.
            faults=FaultRates(asleep=0.35, driver_finds_child=0.5),
        )
    )
    world = sim.world
    school, depot = world.schools[0].id, world.depot.id
    school_meters = [
        _meter("meter-school-power", Medium.ELECTRICITY, seed),
        _meter("meter-school-water", Medium.WATER, seed + 1),
        _meter("meter-school-gas", Medium.GAS, seed + 2),
    ]
    rooms = SimulatedEnvironmentConfig(count=sensors, seed=seed, id_prefix="room")
    # The depot is no school: no school-day load, so any water at night is a leak.
    closed = SchoolCalendar(school_days=[])
    depot_meters = [
        _meter("meter-depot-power", Medium.ELECTRICITY, seed + 3, calendar=closed),
        _meter(
            LEAKING_METER,
            Medium.WATER,
            seed + 4,
            calendar=closed,
            leak=LeakProfile(start=epoch + LEAK_AFTER, rate=LEAK_RATE_M3_H),
        ),
    ]
    buses = [
        BusDevices(
            vehicle=bus.id,
            gateway=bus.gateway,
            devices=tuple(
                d
                for d in (bus.telematics, bus.door_reader, bus.cabin_scanner, bus.presence)
                if d is not None
            ),
        )
        for bus in world.buses
    ]
    return DayPlan(
        tenant=tenant,
        school=school,
        depot=depot,
        sensors=AgentConfig(
            tenant=tenant,
            agent_id=SCHOOL_AGENT,
            publish_interval_s=interval,
            drivers=[rooms, *school_meters],
            health=HEALTH,
            # The school's Zigbee sensors, through a Zigbee2MQTT (the demo's stand-in).
            zigbee2mqtt=Zigbee2MqttConfig(),
        ),
        depot_meters=AgentConfig(
            tenant=tenant,
            agent_id=DEPOT_AGENT,
            publish_interval_s=interval,
            drivers=depot_meters,
            health=HEALTH,
        ),
        simulation=sim,
        buses=buses,
    )


RULES = """\
# The demo day's rules (written by iotmon demo; edits are picked up without a restart).
tenant: TENANT
policy:
  group_by: [rule, site]
  repeat_interval_s: 14400
  escalate_after_s: 1800
rules:
  - name: water-leak
    type: threshold
    devices: ["meter-depot-*"]
    metric: water_m3
    above: 0.001
    for_s: 600
    severity: critical
    summary: "Water running at the depot with nobody there ({value} m3 a reading): a leak?"
  - name: boiler-room-flooded
    type: threshold
    devices: ["zb-*"]
    metric: water_leak
    above: 0.5
    severity: critical
    summary: "Water on the floor at the Zigbee leak sensor {device}"
  - name: room-too-hot
    type: threshold
    devices: ["room-*"]
    metric: temperature
    above: 28
    clear: 27
    for_s: 300
  - name: gateway-offline
    type: offline
    devices: ["*-gw"]
    for_s: 120
  - name: device-fault
    type: fault
    min_severity: error
bus:
  fleet: FLEET
"""


def write_rules(plan: DayPlan, folder: Path) -> Path:
    """The tenant's rule file, and the fleet file beside its folder (every YAML in the
    folder is read as a rule file); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    fleet = folder.parent / "fleet.yaml"
    fleet.write_text(yaml.safe_dump(plan.simulation.world.document(), sort_keys=False))
    text = RULES.replace("TENANT", plan.tenant, 1).replace("FLEET", json.dumps(str(fleet)))
    (folder / f"{plan.tenant}.yaml").write_text(text)
    return folder
