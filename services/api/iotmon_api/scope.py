"""What a principal may read, decided before any data is fetched.

- service: every tenant.
- operator: everything of its tenant.
- facility: the devices of its tenant whose site (own, else their gateway's) is
  one of its sites, and their dead letters; no children.
- guardian: its own children (from the registry); no telemetry, no dead letters.

A request that names something outside the scope gets 403 whether or not that
thing exists (the answer never depends on another tenant's data); inside the
scope, something missing is 404. A listing is silently limited to the scope,
except that asking to list another tenant is 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from iotmon_api.problems import Forbidden
from iotmon_contract.topics import topic_prefix
from iotmon_registry import Principal, PrincipalKind, Registry


@dataclass(frozen=True, slots=True)
class DeviceScope:
    """Which devices a listing may show: ``tenant`` (None: all); ``devices`` (None: all)."""

    tenant: str | None
    devices: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class ChildScope:
    """Which children a listing may show: ``tenant`` (None: all); ``guardian`` (None: all)."""

    tenant: str | None
    guardian: str | None


@dataclass(frozen=True, slots=True)
class AlertScope:
    """Which alerts and notices a listing may show: a tenant (None: all), and within it
    a facility's sites or a guardian's own (named) alerts."""

    tenant: str | None
    sites: frozenset[str] | None = None
    guardian: str | None = None


class Scope:
    """One request's principal with the registry to resolve sites and children."""

    def __init__(self, principal: Principal, registry: Registry) -> None:
        self.principal = principal
        self._registry = registry

    def _own_tenant(self, tenant: str | None) -> str | None:
        """The tenant a listing is limited to; 403 if another tenant is asked for."""
        principal = self.principal
        if principal.kind is PrincipalKind.SERVICE:
            return tenant
        if tenant is not None and tenant != principal.tenant:
            raise Forbidden(
                f"this {principal.kind.value} token is for tenant {principal.tenant!r}, "
                f"not {tenant!r}"
            )
        return principal.tenant

    def _no_telemetry_for_guardians(self) -> None:
        if self.principal.kind is PrincipalKind.GUARDIAN:
            raise Forbidden("a guardian token reads the guardian's children, not telemetry")

    def _site_devices(self, tenant: str) -> frozenset[str]:
        return frozenset(self._registry.devices_on_sites(tenant, self.principal.sites))

    def devices(self, tenant: str | None) -> DeviceScope:
        """The devices a device listing may show."""
        self._no_telemetry_for_guardians()
        own = self._own_tenant(tenant)
        if self.principal.kind is PrincipalKind.FACILITY:
            assert own is not None
            return DeviceScope(own, self._site_devices(own))
        return DeviceScope(own, None)

    def device(self, tenant: str, device: str) -> None:
        """403 unless the principal may read this device's telemetry."""
        self._no_telemetry_for_guardians()
        self._own_tenant(tenant)
        if self.principal.kind is PrincipalKind.FACILITY and device not in self._site_devices(
            tenant
        ):
            sites = ", ".join(sorted(self.principal.sites))
            raise Forbidden(f"device {tenant}/{device} is not on this token's sites ({sites})")

    def dead_letter_topics(self) -> list[str] | None:
        """Topic prefixes of the dead letters the principal may see (None: all)."""
        principal = self.principal
        if principal.kind is PrincipalKind.SERVICE:
            return None
        if principal.kind is PrincipalKind.GUARDIAN:
            raise Forbidden("a guardian token reads the guardian's children, not dead letters")
        assert principal.tenant is not None
        if principal.kind is PrincipalKind.OPERATOR:
            return [topic_prefix(principal.tenant)]
        devices = sorted(self._site_devices(principal.tenant))
        return [topic_prefix(principal.tenant, device) for device in devices]

    def children(self, tenant: str | None) -> ChildScope:
        """The children a listing may show."""
        principal = self.principal
        if principal.kind is PrincipalKind.FACILITY:
            raise Forbidden("a facility token reads its sites' devices, not children")
        own = self._own_tenant(tenant)
        return ChildScope(own, principal.guardian)

    def child(self, tenant: str, child: str) -> None:
        """403 unless the principal may read this child."""
        scope = self.children(tenant)
        if scope.guardian is not None:
            mine = {c.child for c in self._registry.children(tenant, guardian=scope.guardian)}
            if child not in mine:
                raise Forbidden(f"child {tenant}/{child} is not one of this guardian's children")

    def alerts(self, tenant: str | None) -> AlertScope:
        """Alerts and notices: a facility sees its sites', a guardian those addressed to it."""
        principal = self.principal
        own = self._own_tenant(tenant)
        if principal.kind is PrincipalKind.FACILITY:
            return AlertScope(own, sites=principal.sites)
        if principal.kind is PrincipalKind.GUARDIAN:
            return AlertScope(own, guardian=principal.guardian)
        return AlertScope(own)

    def writer(self, tenant: str, what: str) -> None:
        """403 unless the principal may ``what`` in ``tenant`` (a service token only reads)."""
        if self.principal.kind is PrincipalKind.SERVICE:
            raise Forbidden(f"a service token reads; it cannot {what}")
        self._own_tenant(tenant)

    def operator(self, tenant: str, what: str) -> None:
        """403 unless an operator of ``tenant`` (silences: tenant-wide by nature)."""
        self.writer(tenant, what)
        if self.principal.kind is not PrincipalKind.OPERATOR:
            raise Forbidden(f"only an operator token can {what}")
