"""What the registry answers with: plain frozen records, detached from the database."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Site:
    tenant: str
    site: str
    name: str


@dataclass(frozen=True, slots=True)
class Device:
    tenant: str
    device: str
    name: str
    site: str | None
    """The device's own site, if set."""
    gateway: str | None
    """The gateway that speaks for it (it is that gateway's child), if any."""
    effective_site: str | None
    """Its own site, else its gateway's: where the device is for a facility's scope."""


@dataclass(frozen=True, slots=True)
class Child:
    tenant: str
    child: str
    name: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Guardian:
    tenant: str
    guardian: str
    name: str
    children: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GatewayImport:
    """What importing an edge agent's config changed."""

    tenant: str
    gateway: str
    children: int
    added: int
    moved: int
    """Children that had another gateway (or none) before."""
    released: int
    """Former children of this gateway that its config no longer declares."""


@dataclass(frozen=True, slots=True)
class GatewayMap:
    """Every child's gateway, and the registry revision it was read at."""

    revision: int
    gateways: dict[tuple[str, str], str]
    """(tenant, child device) → gateway device."""
