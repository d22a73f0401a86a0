"""Broker identities under Mosquitto's dynamic-security plugin: roles, the plugin's file,
and administration of a running broker over ``$CONTROL/dynamic-security/v1``."""

from iotmon_tools.broker.admin import BrokerAdmin, ClientExists, ClientInfo, UnknownClient
from iotmon_tools.broker.control import (
    BrokerAdminError,
    BrokerUnreachable,
    CommandFailed,
    DynsecSession,
    NoAnswer,
    NotAuthorised,
)
from iotmon_tools.broker.dynsec_file import Provisioned, build_config, write_config
from iotmon_tools.broker.identities import (
    Identity,
    IdentityError,
    IdentityKind,
    admin_identity,
    device_identity,
    gateway_identity,
    health_identity,
    service_identity,
)

__all__ = [
    "BrokerAdmin",
    "BrokerAdminError",
    "BrokerUnreachable",
    "ClientExists",
    "ClientInfo",
    "CommandFailed",
    "DynsecSession",
    "Identity",
    "IdentityError",
    "IdentityKind",
    "NoAnswer",
    "NotAuthorised",
    "Provisioned",
    "UnknownClient",
    "admin_identity",
    "build_config",
    "device_identity",
    "gateway_identity",
    "health_identity",
    "service_identity",
    "write_config",
]
