"""Which devices may send telemetry: an optional YAML allow-list of ids or fnmatch patterns.

Example ``devices.yaml``::

    tenants:
      acme: ["env-*", "gw-1"]     # device ids or fnmatch patterns
      "demo*": ["*"]              # tenant keys may be patterns too

No file means every well-formed device is accepted.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

_CACHE_LIMIT = 100_000


class DeviceRegistryFile(BaseModel):
    """The registry YAML."""

    model_config = ConfigDict(extra="forbid")

    tenants: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Tenant id or fnmatch pattern → allowed device ids or fnmatch patterns.",
    )


class RegistryError(ValueError):
    """The registry file is unreadable or invalid; the message says where."""


class DeviceRegistry:
    """Answers ``is_known(tenant, device)`` from exact ids first, then patterns (cached)."""

    def __init__(self, allowed: dict[str, list[str]]) -> None:
        self._exact: set[tuple[str, str]] = set()
        patterns: list[str] = []
        for tenant, devices in allowed.items():
            for device in devices:
                if _is_pattern(tenant) or _is_pattern(device):
                    # fnmatch on "tenant/device": ids cannot contain "/".
                    patterns.append(fnmatch.translate(f"{tenant}/{device}"))
                else:
                    self._exact.add((tenant, device))
        self._pattern = re.compile("|".join(patterns)) if patterns else None
        # Pattern matching costs microseconds; a fleet has a bounded set of ids.
        self._cache: dict[tuple[str, str], bool] = {}

    def is_known(self, tenant: str, device: str) -> bool:
        key = (tenant, device)
        if key in self._exact:
            return True
        known = self._cache.get(key)
        if known is None:
            known = (
                self._pattern is not None and self._pattern.match(f"{tenant}/{device}") is not None
            )
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = known
        return known


def _is_pattern(value: str) -> bool:
    return any(char in value for char in "*?[")


def _line_of(document: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """1-based line of the YAML node at a pydantic error location, when it can be found."""
    node = document
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if key < len(node.value) else None
        else:
            break
        if node is None:
            return None
    return node.start_mark.line + 1 if node is not None else None


def load_registry(path: Path) -> DeviceRegistry:
    """Read and validate a registry file; raise RegistryError naming file, key and line."""
    try:
        text = path.read_text()
        data = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError(f"{path}: {exc}") from exc
    try:
        parsed = DeviceRegistryFile.model_validate(data)
    except ValidationError as exc:
        document = yaml.compose(text)
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "<root>"
            line = _line_of(document, tuple(error["loc"]))
            at = f" (line {line})" if line else ""
            problems.append(f"{path}: {where}{at}: {error['msg']}")
        raise RegistryError("\n".join(problems)) from None
    return DeviceRegistry(parsed.tenants)
