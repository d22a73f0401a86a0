"""The iotmon registry: who is who (tenants, sites, devices and gateways, children, guardians)."""

from iotmon_registry.errors import (
    Conflict,
    InvalidId,
    NotFound,
    RegistryError,
    RegistryUnavailable,
    SchemaVersionError,
)
from iotmon_registry.principals import (
    IssuedToken,
    Principal,
    PrincipalKind,
    Principals,
    TokenCheck,
    TokenFailure,
    TokenInfo,
)
from iotmon_registry.records import Child, Device, GatewayImport, GatewayMap, Guardian, Site
from iotmon_registry.registry import Registry
from iotmon_registry.schema import SCHEMA_VERSION
from iotmon_registry.settings import RegistrySettings

__all__ = [
    "SCHEMA_VERSION",
    "Child",
    "Conflict",
    "Device",
    "GatewayImport",
    "GatewayMap",
    "Guardian",
    "InvalidId",
    "IssuedToken",
    "NotFound",
    "Principal",
    "PrincipalKind",
    "Principals",
    "Registry",
    "RegistryError",
    "RegistrySettings",
    "RegistryUnavailable",
    "SchemaVersionError",
    "Site",
    "TokenCheck",
    "TokenFailure",
    "TokenInfo",
]
