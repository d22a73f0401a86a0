"""What each CLI's ``--version`` says: the distribution's version and the contract's."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from iotmon_contract import CONTRACT_VERSION


def distribution_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def version_line(program: str, distribution: str) -> str:
    return f"{program} {distribution_version(distribution)} (wire contract {CONTRACT_VERSION})"
