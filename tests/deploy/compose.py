"""Reading docker-compose.yml as Compose would: interpolation, override files, profiles,
secrets and mounts mapped back to the repository."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from iotmon_edge import AgentConfig, load_agent_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
TLS_FILE = REPO / "docker-compose.tls.yml"
SECRETS_MOUNT = PurePosixPath("/run/secrets")

_BRACED = re.compile(r"(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)
_BARE = re.compile(r"\w+")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: $VAR, ${VAR}, ${VAR:-default} (nested defaults too),
    ${VAR-default}, ${VAR:?err}, ${VAR:+alt}, and $$ for a literal $."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "$":
            out.append(char)
            index += 1
        elif text.startswith("$$", index):
            out.append("$")
            index += 2
        elif text.startswith("${", index):
            end = _closing_brace(text, index + 2)
            out.append(_braced(text[index + 2 : end], env))
            index = end + 1
        elif match := _BARE.match(text, index + 1):
            out.append(env.get(match.group(0), ""))
            index = match.end()
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    index = start
    while index < len(text):
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError(f"unclosed ${{ in {text!r}")


def _braced(body: str, env: Mapping[str, str]) -> str:
    match = _BRACED.fullmatch(body)
    if match is None:
        raise ValueError(f"invalid interpolation ${{{body}}}")
    name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
    value = env.get(name)
    unset = value is None or (value == "" and op is not None and op.startswith(":"))
    if op in ("-", ":-"):
        return interpolate(arg, env) if unset else str(value)
    if op in ("?", ":?"):
        if unset:
            raise ValueError(f"{name}: {interpolate(arg, env)}")
        return str(value)
    if op in ("+", ":+"):
        return "" if unset else interpolate(arg, env)
    return value or ""


def load_compose(
    env: Mapping[str, str] | None = None, *, overrides: Iterable[Path] = ()
) -> dict[str, Any]:
    """The compose file (merged with ``overrides``, as ``-f a -f b`` does) with every
    string interpolated from ``env`` (default: nothing set, a fresh checkout)."""
    merged: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    for path in overrides:
        merged = _merge(merged, yaml.safe_load(path.read_text()), ())
    loaded: dict[str, Any] = _walk(merged, env or {})
    return loaded


def _merge(base: Any, over: Any, path: tuple[str, ...]) -> Any:
    """Compose's merge of an override file: mappings merge, ``ports`` and ``secrets``
    add, ``volumes`` replace the mount with the same target, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _merge(base[key], value, (*path, key)) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(over, list) and path:
        if path[-1] == "volumes":
            targets = {_mount_target(v): v for v in base}
            targets.update({_mount_target(v): v for v in over})
            return list(targets.values())
        if path[-1] in ("ports", "secrets"):
            return base + [v for v in over if v not in base]
    return over


def _mount_target(volume: Any) -> str:
    return str(volume["target"]) if isinstance(volume, dict) else str(volume).split(":")[1]


def _walk(value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, dict):
        return {k: _walk(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, env) for v in value]
    return value


def enabled_services(compose: Mapping[str, Any], *profiles: str) -> dict[str, dict[str, Any]]:
    """The services ``docker compose --profile …`` starts: those without profiles, and
    those with one of ``profiles``."""
    return {
        name: service
        for name, service in compose["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of Compose's two forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends_on(service: Mapping[str, Any], *, optional: bool = True) -> dict[str, str]:
    """Each dependency with its condition (the short list form means service_started);
    ``optional=False`` leaves out those marked ``required: false``."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {
        name: spec.get("condition", "service_started")
        for name, spec in deps.items()
        if optional or spec.get("required", True)
    }


def secret_files(compose: Mapping[str, Any]) -> dict[str, Path]:
    """Each top-level secret and the file on this machine it is read from."""
    found = {}
    for name, spec in (compose.get("secrets") or {}).items():
        assert set(spec) == {"file"}, f"secret {name}: only file secrets are used: {spec}"
        path = Path(spec["file"])
        found[name] = path if path.is_absolute() else REPO / path
    return found


def dev_secrets() -> dict[str, str]:
    """The development secrets a fresh checkout mounts, as the services read them."""
    return {
        name: path.read_text().rstrip("\r\n") for name, path in secret_files(load_compose()).items()
    }


def mounted_secrets(service: Mapping[str, Any]) -> dict[PurePosixPath, str]:
    """Where each secret the service declares appears in its container."""
    mounted = {}
    for entry in service.get("secrets") or []:
        name = entry if isinstance(entry, str) else entry["source"]
        target = name if isinstance(entry, str) else entry.get("target", name)
        mounted[SECRETS_MOUNT / target] = name
    return mounted


def local_environment(service: Mapping[str, Any], compose: Mapping[str, Any]) -> dict[str, str]:
    """The service's environment with every path under /run/secrets moved to the file
    on this machine that Compose would mount there (a path it does not mount fails)."""
    files = secret_files(compose)
    mounted = mounted_secrets(service)
    env = environment(service)
    for variable, value in env.items():
        if value.startswith(f"{SECRETS_MOUNT}/"):
            name = mounted.get(PurePosixPath(value))
            assert name is not None, f"{variable}={value}: the service mounts no such secret"
            env[variable] = str(files[name])
    return env


def simulator_config() -> AgentConfig:
    """The agent YAML the simulators container mounts, validated as the agent would."""
    simulators = load_compose()["services"]["simulators"]
    mounts = {
        target: source for source, target in (v.split(":")[:2] for v in simulators["volumes"])
    }
    command = simulators["command"]
    path = command[command.index("--config") + 1]
    return load_agent_config(REPO / mounts[path])


def local_paths(text: str, service: Mapping[str, Any], compose: Mapping[str, Any]) -> str:
    """``text`` (a command, a config file) with each /run/secrets path the service
    mounts replaced by the file on this machine."""
    files = secret_files(compose)
    for target, name in mounted_secrets(service).items():
        text = text.replace(str(target), str(files[name]))
    return text


def broker_init_command(
    service: Mapping[str, Any], compose: Mapping[str, Any], dynsec_file: Path, work: Path
) -> list[str]:
    """broker-admin's command with its container paths moved to this machine: the
    plugin file to ``dynsec_file``, the identities file to a copy whose password files
    are the secrets broker-admin mounts."""
    mounts = {target: source for source, target in (v.split(":")[:2] for v in service["volumes"])}
    command = [str(part) for part in service["command"]]
    command[command.index("--file") + 1] = str(dynsec_file)
    at = command.index("--identities") + 1
    identities = (REPO / mounts[command[at]]).read_text()
    copy = work / "broker-identities.yaml"
    copy.write_text(local_paths(identities, service, compose))
    command[at] = str(copy)
    at = command.index("--password-file") + 1
    command[at] = local_paths(command[at], service, compose)
    return command
