"""What the registry refuses, each error naming the thing and where it was looked for."""

from __future__ import annotations


class RegistryError(ValueError):
    """A request the registry cannot satisfy; the message names what and where."""


class InvalidId(RegistryError):
    """An id outside its pattern (tenant, site and device ids follow the wire contract)."""


class NotFound(RegistryError):
    """Something named in the request is not registered."""


class Conflict(RegistryError):
    """The request contradicts what is registered (a duplicate, a loop)."""


class RegistryUnavailable(RegistryError):
    """The database could not be reached or failed transiently: retry later."""


class SchemaVersionError(RegistryError):
    """The database's schema is not one this code can use (newer, or not a registry)."""
