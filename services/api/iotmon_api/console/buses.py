"""Bus views in a principal's scope: the fleet from the rule file, the events from the store."""

from __future__ import annotations

from datetime import datetime, timedelta

from iotmon_alerts.bus.view import BusView, bus_view
from iotmon_api.console.events import BUS_EVENT_TYPES, bus_events
from iotmon_api.console.fleets import TenantFleet
from iotmon_api.console.schemas import (
    BusViewPublic,
    ChildAboardPublic,
    PeopleSeenPublic,
    PositionPublic,
    SweepPublic,
    SweepReadPublic,
)
from iotmon_api.console.settings import ConsoleSettings
from iotmon_storage import TimeSeriesStore


def visible_buses(tenant_fleet: TenantFleet, devices: frozenset[str] | None) -> list[str]:
    """The fleet's buses a principal may see: all (``devices`` None), or those with a
    device on the principal's sites (a facility: its depot's or school's buses)."""
    fleet = tenant_fleet.fleet
    if devices is None:
        return sorted(fleet.buses)
    return sorted({d.bus for name, d in fleet.devices.items() if name in devices})


def bus_views(
    store: TimeSeriesStore,
    settings: ConsoleSettings,
    tenant_fleet: TenantFleet,
    buses: list[str],
    now: datetime,
) -> list[BusViewPublic]:
    if not buses:
        return []
    fleet = tenant_fleet.fleet
    # The newest events of the window: a very busy tenant loses its oldest, not its latest.
    stored = store.events(
        fleet.tenant,
        None,
        now - timedelta(hours=settings.bus_window_h),
        now + timedelta(seconds=1),
        types=BUS_EVENT_TYPES,
        limit=settings.bus_max_events,
        newest_first=True,
    )
    events = bus_events(stored[::-1])
    return [
        _public(fleet.tenant, bus_view(fleet, tenant_fleet.rules, bus, events, now))
        for bus in buses
    ]


def _public(tenant: str, view: BusView) -> BusViewPublic:
    sweep = view.last_sweep
    return BusViewPublic(
        tenant=tenant,
        bus=view.bus,
        driver=view.driver,
        route=view.route,
        phase=view.phase.value,
        run=view.run,
        run_started_at=view.run_started_at,
        run_ended_at=view.run_ended_at,
        run_end_place=view.run_end_place,
        aboard=[
            ChildAboardPublic(tag=c.tag, child=c.child, name=c.name, boarded_at=c.boarded_at)
            for c in view.aboard
        ],
        last_sweep=None
        if sweep is None
        else SweepPublic(
            sweep_id=sweep.sweep_id,
            started_at=sweep.started_at,
            finished_at=sweep.finished_at,
            expected=sweep.expected,
            received=sweep.received,
            complete=sweep.complete,
            after_run_end=sweep.after_run_end,
            reads=[
                SweepReadPublic(tag=r.tag, child=r.child, rssi=r.rssi, inside=r.inside, ts=r.ts)
                for r in sweep.reads
            ],
        ),
        position=None
        if view.position is None
        else PositionPublic(
            lat=view.position.lat,
            lon=view.position.lon,
            ts=view.position.ts,
            place=view.position.place,
        ),
        ignition_on=view.ignition_on,
        people_seen=None
        if view.people_seen is None
        else PeopleSeenPublic(
            people=view.people_seen.people,
            ts=view.people_seen.ts,
            device=view.people_seen.device,
            snapshot_url=view.people_seen.snapshot_url,
        ),
        events=view.events,
    )
