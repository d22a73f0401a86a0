"""The registry: tenants, sites, devices with their gateways, children and guardians.

``Registry(settings)`` only stores; ``open()`` connects and creates or upgrades
the schema. Every method is one transaction and answers with detached records
(``iotmon_registry.records``); every change bumps the revision.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased

from iotmon_contract.topics import IDENTIFIER_PATTERN
from iotmon_registry.database import build_engine
from iotmon_registry.errors import Conflict, InvalidId, NotFound, RegistryUnavailable
from iotmon_registry.migrations import prepare
from iotmon_registry.records import Child, Device, GatewayImport, GatewayMap, Guardian, Site
from iotmon_registry.schema import (
    META_REVISION,
    ChildRow,
    ChildTagRow,
    DeviceRow,
    GuardianRow,
    GuardianshipRow,
    MetaRow,
    SiteRow,
    TenantRow,
)
from iotmon_registry.settings import RegistrySettings

TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
"""Tag ids as readers report them: hex EPCs, BLE MACs with colons, vendor ids."""

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_TAG = re.compile(TAG_PATTERN)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_id(kind: str, value: str) -> str:
    """``value`` if it is a contract identifier, else InvalidId naming the kind."""
    if not _IDENTIFIER.match(value):
        raise InvalidId(
            f"{kind} id {value!r} is not valid: lowercase letters, digits, '_', '.', '-', "
            "starting with a letter or digit, at most 64 characters"
        )
    return value


def check_tag(value: str) -> str:
    if not _TAG.match(value):
        raise InvalidId(
            f"tag id {value!r} is not valid: letters, digits, '_', '.', ':', '-', "
            "at most 128 characters"
        )
    return value


class Registry:
    """Who is who: the SQL registry ingest and the API read, and ``iotmon registry`` edits."""

    def __init__(self, settings: RegistrySettings, *, clock: Clock = utc_now) -> None:
        self._settings = settings
        self._clock = clock
        self._engine: Engine | None = None
        self.schema_version_found: int | None = None
        """The schema version the database had when opened (0: created now)."""

    # -- lifecycle ---------------------------------------------------------------

    @property
    def where(self) -> str:
        """The database, password hidden: for messages."""
        return self._settings.display_url()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the registry is not open: call open() first")
        return self._engine

    def open(self) -> Self:
        """Connect, then create or upgrade the schema; raises RegistryUnavailable or
        SchemaVersionError naming the database."""
        if self._engine is not None:
            return self
        try:
            engine = build_engine(self._settings)
        except OSError as exc:
            raise RegistryUnavailable(f"registry {self.where}: {exc}") from exc
        try:
            self.schema_version_found = prepare(engine, self.where)
        except DBAPIError as exc:
            engine.dispose()
            raise RegistryUnavailable(f"registry {self.where}: {_reason(exc)}") from exc
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        return self

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction; database failures become RegistryUnavailable or Conflict."""
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
                if write:
                    session.execute(
                        update(MetaRow)
                        .where(MetaRow.key == META_REVISION)
                        .values(value=MetaRow.value + 1)
                    )
        except IntegrityError as exc:
            raise Conflict(f"registry {self.where}: {_reason(exc)}") from exc
        except OperationalError as exc:
            raise RegistryUnavailable(f"registry {self.where}: {_reason(exc)}") from exc

    def revision(self) -> int:
        """Bumped by every change made through this class: cheap to poll."""
        with self.session() as session:
            return session.execute(
                select(MetaRow.value).where(MetaRow.key == META_REVISION)
            ).scalar_one()

    # -- tenants and sites -------------------------------------------------------

    def _ensure_tenant(self, session: Session, tenant: str) -> None:
        check_id("tenant", tenant)
        if session.get(TenantRow, tenant) is None:
            session.add(TenantRow(id=tenant, name="", created_at=self._clock()))
            session.flush()

    def tenants(self) -> list[str]:
        with self.session() as session:
            return list(session.scalars(select(TenantRow.id).order_by(TenantRow.id)))

    def add_site(self, tenant: str, site: str, *, name: str = "") -> Site:
        """Register a site (and its tenant, if new); Conflict if it exists."""
        check_id("site", site)
        with self.session(write=True) as session:
            self._ensure_tenant(session, tenant)
            if session.get(SiteRow, (tenant, site)) is not None:
                raise Conflict(f"tenant {tenant!r}: site {site!r} is already registered")
            session.add(SiteRow(tenant_id=tenant, id=site, name=name))
        return Site(tenant, site, name)

    def sites(self, tenant: str | None = None) -> list[Site]:
        query = select(SiteRow).order_by(SiteRow.tenant_id, SiteRow.id)
        if tenant is not None:
            query = query.where(SiteRow.tenant_id == tenant)
        with self.session() as session:
            return [Site(r.tenant_id, r.id, r.name) for r in session.scalars(query)]

    def _require_site(self, session: Session, tenant: str, site: str) -> None:
        check_id("site", site)
        if session.get(SiteRow, (tenant, site)) is None:
            raise NotFound(
                f"tenant {tenant!r}: site {site!r} is not registered "
                f"(add it: iotmon registry add-site {site} --tenant {tenant})"
            )

    # -- devices -----------------------------------------------------------------

    def add_device(
        self,
        tenant: str,
        device: str,
        *,
        site: str | None = None,
        gateway: str | None = None,
        name: str = "",
    ) -> Device:
        """Register a device, on a site and behind a gateway if given; Conflict if it exists."""
        check_id("device", device)
        with self.session(write=True) as session:
            self._ensure_tenant(session, tenant)
            if session.get(DeviceRow, (tenant, device)) is not None:
                raise Conflict(f"tenant {tenant!r}: device {device!r} is already registered")
            if site is not None:
                self._require_site(session, tenant, site)
            if gateway is not None:
                check_id("gateway", gateway)
                if gateway == device:
                    raise Conflict(
                        f"tenant {tenant!r}: device {device!r} cannot be its own gateway"
                    )
                if session.get(DeviceRow, (tenant, gateway)) is None:
                    raise NotFound(
                        f"tenant {tenant!r}: gateway {gateway!r} is not registered "
                        f"(add it first: iotmon registry add-device {gateway} --tenant {tenant})"
                    )
            session.add(
                DeviceRow(tenant_id=tenant, id=device, name=name, site_id=site, gateway_id=gateway)
            )
            session.flush()
            found = self._devices(session, tenant, [device])
        return found[0]

    def remove_device(self, tenant: str, device: str) -> Device:
        """Remove a registered device and return what it was; NotFound if it is not there.

        Its children stay registered, released (without a gateway), as ``import_gateway``
        releases the children a config no longer declares. Consumers that follow the
        registry (ingest's gateway map, the Home Assistant bridge) notice by the revision.
        """
        check_id("device", device)
        with self.session(write=True) as session:
            found = self._devices(session, tenant, [device])
            if not found:
                raise NotFound(f"tenant {tenant!r}: device {device!r} is not registered")
            session.execute(
                update(DeviceRow)
                .where(DeviceRow.tenant_id == tenant, DeviceRow.gateway_id == device)
                .values(gateway_id=None)
            )
            session.execute(
                delete(DeviceRow).where(DeviceRow.tenant_id == tenant, DeviceRow.id == device)
            )
        return found[0]

    def import_gateway(
        self,
        tenant: str,
        gateway: str,
        children: Sequence[str],
        *,
        site: str | None = None,
    ) -> GatewayImport:
        """Make ``gateway`` the gateway of exactly ``children`` (an edge agent's config).

        Registers what is missing, moves children from another gateway, and releases
        (leaves registered, without a gateway) former children no longer declared.
        Idempotent: importing the same config again changes nothing.
        """
        check_id("gateway", gateway)
        wanted = {check_id("device", child) for child in children}
        if gateway in wanted:
            raise Conflict(f"tenant {tenant!r}: gateway {gateway!r} is declared as its own child")
        with self.session(write=True) as session:
            self._ensure_tenant(session, tenant)
            if site is not None:
                self._require_site(session, tenant, site)
            row = session.get(DeviceRow, (tenant, gateway))
            if row is None:
                row = DeviceRow(tenant_id=tenant, id=gateway, name="", site_id=site)
                session.add(row)
            elif site is not None:
                row.site_id = site
            self._refuse_loop(session, tenant, gateway, wanted)
            existing = {
                r.id: r
                for r in session.scalars(
                    select(DeviceRow).where(
                        DeviceRow.tenant_id == tenant,
                        (DeviceRow.id.in_(wanted)) | (DeviceRow.gateway_id == gateway),
                    )
                )
            }
            added = moved = released = 0
            for child in sorted(wanted):
                current = existing.get(child)
                if current is None:
                    session.add(DeviceRow(tenant_id=tenant, id=child, name="", gateway_id=gateway))
                    added += 1
                elif current.gateway_id != gateway:
                    current.gateway_id = gateway
                    moved += 1
            for device_id, current in existing.items():
                if device_id not in wanted and current.gateway_id == gateway:
                    current.gateway_id = None
                    released += 1
        return GatewayImport(tenant, gateway, len(wanted), added, moved, released)

    @staticmethod
    def _refuse_loop(session: Session, tenant: str, gateway: str, children: set[str]) -> None:
        """A child may not be the gateway's own gateway (or that one's, up the chain)."""
        seen = {gateway}
        current = session.get(DeviceRow, (tenant, gateway))
        while current is not None and current.gateway_id is not None:
            upstream = current.gateway_id
            if upstream in children:
                raise Conflict(
                    f"tenant {tenant!r}: {upstream!r} is upstream of gateway {gateway!r} "
                    "and cannot also be its child"
                )
            if upstream in seen:
                break
            seen.add(upstream)
            current = session.get(DeviceRow, (tenant, upstream))

    def _devices(
        self, session: Session, tenant: str | None, ids: Iterable[str] | None = None
    ) -> list[Device]:
        gateway = aliased(DeviceRow)
        query = (
            select(DeviceRow, gateway.site_id)
            .outerjoin(
                gateway,
                (gateway.tenant_id == DeviceRow.tenant_id) & (gateway.id == DeviceRow.gateway_id),
            )
            .order_by(DeviceRow.tenant_id, DeviceRow.id)
        )
        if tenant is not None:
            query = query.where(DeviceRow.tenant_id == tenant)
        if ids is not None:
            query = query.where(DeviceRow.id.in_(list(ids)))
        return [
            Device(
                tenant=row.tenant_id,
                device=row.id,
                name=row.name,
                site=row.site_id,
                gateway=row.gateway_id,
                effective_site=row.site_id or gateway_site,
            )
            for row, gateway_site in session.execute(query)
        ]

    def devices(self, tenant: str | None = None) -> list[Device]:
        with self.session() as session:
            return self._devices(session, tenant)

    def device(self, tenant: str, device: str) -> Device | None:
        with self.session() as session:
            found = self._devices(session, tenant, [device])
        return found[0] if found else None

    def devices_on_sites(self, tenant: str, sites: Iterable[str]) -> set[str]:
        """Ids of the tenant's devices whose effective site is one of ``sites``."""
        wanted = set(sites)
        if not wanted:
            return set()
        gateway = aliased(DeviceRow)
        effective = func.coalesce(DeviceRow.site_id, gateway.site_id)
        query = (
            select(DeviceRow.id)
            .outerjoin(
                gateway,
                (gateway.tenant_id == DeviceRow.tenant_id) & (gateway.id == DeviceRow.gateway_id),
            )
            .where(DeviceRow.tenant_id == tenant, effective.in_(sorted(wanted)))
        )
        with self.session() as session:
            return set(session.scalars(query))

    def gateway_map(self) -> GatewayMap:
        """Every child's gateway, read in one transaction with the revision."""
        with self.session() as session:
            revision = session.execute(
                select(MetaRow.value).where(MetaRow.key == META_REVISION)
            ).scalar_one()
            rows = session.execute(
                select(DeviceRow.tenant_id, DeviceRow.id, DeviceRow.gateway_id).where(
                    DeviceRow.gateway_id.is_not(None)
                )
            )
            gateways = {(tenant, device): str(gw) for tenant, device, gw in rows}
        return GatewayMap(revision, gateways)

    # -- children and guardians --------------------------------------------------

    def add_child(self, tenant: str, child: str, tags: Sequence[str], *, name: str = "") -> Child:
        """Register a child with the tags they carry; Conflict if a tag is someone else's."""
        check_id("child", child)
        unique_tags = sorted({check_tag(tag) for tag in tags})
        with self.session(write=True) as session:
            self._ensure_tenant(session, tenant)
            if session.get(ChildRow, (tenant, child)) is not None:
                raise Conflict(f"tenant {tenant!r}: child {child!r} is already registered")
            for tag in unique_tags:
                holder = session.get(ChildTagRow, (tenant, tag))
                if holder is not None:
                    raise Conflict(
                        f"tenant {tenant!r}: tag {tag!r} already belongs to child "
                        f"{holder.child_id!r}"
                    )
            session.add(ChildRow(tenant_id=tenant, id=child, name=name))
            session.flush()
            session.add_all(
                ChildTagRow(tenant_id=tenant, tag=tag, child_id=child) for tag in unique_tags
            )
        return Child(tenant, child, name, tuple(unique_tags))

    def _children(
        self, session: Session, tenant: str | None, ids: Iterable[str] | None = None
    ) -> list[Child]:
        query = select(ChildRow).order_by(ChildRow.tenant_id, ChildRow.id)
        tag_query = select(ChildTagRow).order_by(ChildTagRow.tag)
        if tenant is not None:
            query = query.where(ChildRow.tenant_id == tenant)
            tag_query = tag_query.where(ChildTagRow.tenant_id == tenant)
        if ids is not None:
            wanted = list(ids)
            query = query.where(ChildRow.id.in_(wanted))
            tag_query = tag_query.where(ChildTagRow.child_id.in_(wanted))
        tags: dict[tuple[str, str], list[str]] = {}
        for tag in session.scalars(tag_query):
            tags.setdefault((tag.tenant_id, tag.child_id), []).append(tag.tag)
        return [
            Child(row.tenant_id, row.id, row.name, tuple(tags.get((row.tenant_id, row.id), ())))
            for row in session.scalars(query)
        ]

    def children(self, tenant: str | None = None, *, guardian: str | None = None) -> list[Child]:
        """Children of a tenant (or all), or only ``guardian``'s (tenant required then)."""
        with self.session() as session:
            if guardian is None:
                return self._children(session, tenant)
            if tenant is None:
                raise ValueError("a guardian is named within a tenant")
            ids = session.scalars(
                select(GuardianshipRow.child_id).where(
                    GuardianshipRow.tenant_id == tenant, GuardianshipRow.guardian_id == guardian
                )
            )
            return self._children(session, tenant, list(ids))

    def child(self, tenant: str, child: str) -> Child | None:
        with self.session() as session:
            found = self._children(session, tenant, [child])
        return found[0] if found else None

    def add_guardian(
        self, tenant: str, guardian: str, children: Sequence[str], *, name: str = ""
    ) -> Guardian:
        """Register a guardian of some registered children; Conflict if it exists."""
        check_id("guardian", guardian)
        wanted = sorted({check_id("child", child) for child in children})
        with self.session(write=True) as session:
            self._ensure_tenant(session, tenant)
            if session.get(GuardianRow, (tenant, guardian)) is not None:
                raise Conflict(f"tenant {tenant!r}: guardian {guardian!r} is already registered")
            for child in wanted:
                if session.get(ChildRow, (tenant, child)) is None:
                    raise NotFound(
                        f"tenant {tenant!r}: child {child!r} is not registered "
                        f"(add it: iotmon registry add-child {child} --tenant {tenant} --tag …)"
                    )
            session.add(GuardianRow(tenant_id=tenant, id=guardian, name=name))
            session.flush()
            session.add_all(
                GuardianshipRow(tenant_id=tenant, guardian_id=guardian, child_id=child)
                for child in wanted
            )
        return Guardian(tenant, guardian, name, tuple(wanted))

    def guardians(self, tenant: str | None = None) -> list[Guardian]:
        query = select(GuardianRow).order_by(GuardianRow.tenant_id, GuardianRow.id)
        links = select(GuardianshipRow).order_by(GuardianshipRow.child_id)
        if tenant is not None:
            query = query.where(GuardianRow.tenant_id == tenant)
            links = links.where(GuardianshipRow.tenant_id == tenant)
        with self.session() as session:
            children: dict[tuple[str, str], list[str]] = {}
            for link in session.scalars(links):
                children.setdefault((link.tenant_id, link.guardian_id), []).append(link.child_id)
            return [
                Guardian(
                    row.tenant_id,
                    row.id,
                    row.name,
                    tuple(children.get((row.tenant_id, row.id), ())),
                )
                for row in session.scalars(query)
            ]

    def guardian(self, tenant: str, guardian: str) -> Guardian | None:
        return next((g for g in self.guardians(tenant) if g.guardian == guardian), None)


def _reason(exc: DBAPIError) -> str:
    """The driver's message without SQLAlchemy's statement and parameter dump."""
    return str(exc.orig).splitlines()[0][:300] if exc.orig is not None else str(exc)[:300]
