"""Reading docker-compose.yml as Compose would: variable interpolation and service lookups."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from iotmon_edge import AgentConfig, load_agent_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<braced>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        unset = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-") and unset:
            return arg
        if op in ("?", ":?") and unset:
            raise ValueError(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(replace, text)


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file with every string interpolated from ``env`` (default: nothing set)."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    loaded: dict[str, Any] = _walk(raw, env or {})
    return loaded


def _walk(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, dict):
        return {k: _walk(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, env) for v in value]
    return value


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of Compose's two forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    """Each dependency with its condition (the short list form means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def simulator_config() -> AgentConfig:
    """The agent YAML the simulators container mounts, validated as the agent would."""
    simulators = load_compose()["services"]["simulators"]
    mounts = {
        target: source for source, target in (v.split(":")[:2] for v in simulators["volumes"])
    }
    command = simulators["command"]
    path = command[command.index("--config") + 1]
    return load_agent_config(REPO / mounts[path])
