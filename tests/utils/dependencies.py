"""Walk an installed distribution's dependency closure: what a service's image would carry.

The closure is walked over the installed distributions' metadata (markers evaluated
for this interpreter, extras not followed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

Reasons = Mapping[str, str]
"""Distribution name (or name prefix ending in '-') → why it must stay out."""


def runtime_requirements(requires: list[str] | None) -> list[Requirement]:
    """Requirements that apply here, without extras (``extra == ...`` markers are false)."""
    applying = []
    for line in requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            applying.append(requirement)
    return applying


def closure(root: str) -> dict[str, list[str]]:
    """Every distribution ``root`` pulls in, each with the chain that brings it."""
    chains: dict[str, list[str]] = {canonicalize_name(root): [root]}
    pending = [canonicalize_name(root)]
    while pending:
        name = pending.pop()
        try:
            requires = metadata.distribution(name).requires
        except metadata.PackageNotFoundError:
            pytest.fail(f"{' -> '.join(chains[name])} is required but not installed")
        for requirement in runtime_requirements(requires):
            child = canonicalize_name(requirement.name)
            if child not in chains:
                chains[child] = [*chains[name], requirement.name]
                pending.append(child)
    return chains


def judge(reasons: Reasons) -> Callable[[str], str | None]:
    """``why(name)``: the reason a distribution is forbidden, or None."""

    def why(name: str) -> str | None:
        name = canonicalize_name(name)
        for forbidden, reason in reasons.items():
            if name == forbidden or (forbidden.endswith("-") and name.startswith(forbidden)):
                return reason
        return None

    return why


def offenders(root: str, reasons: Reasons) -> list[str]:
    """Each forbidden distribution in ``root``'s closure, with the chain that brings it."""
    why = judge(reasons)
    return [
        f"{' -> '.join(chain)} ({reason})"
        for name, chain in sorted(closure(root).items())
        if (reason := why(name))
    ]
