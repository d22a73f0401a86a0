"""A tenant's school-bus fleet and rule settings, read from the alert service's rule file.

The console reads the same files the alert service runs on (``<rules_dir>/<tenant>.yaml``
and the fleet its ``bus`` section names), so its bus view counts with the same fleet and
settings. Read on each request: they are small, and an edit shows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iotmon_alerts.bus import BusRules, Fleet, load_fleet
from iotmon_alerts.bus_channel import bus_rules
from iotmon_alerts.rulefile import RuleFile
from iotmon_api.problems import ApiProblem
from iotmon_runtime.config_files import ConfigError, parse_yaml_model


class ConsoleMisconfigured(ApiProblem):
    status_code = 503
    kind = "console-misconfigured"
    title = "The console's configuration cannot be read"


@dataclass(frozen=True, slots=True)
class TenantFleet:
    fleet: Fleet
    rules: BusRules


def tenant_fleet(rules_dir: Path | None, tenant: str) -> TenantFleet | None:
    """The tenant's fleet (None: no rules folder, no rule file, or no bus section);
    ConsoleMisconfigured naming file and key when a file is bad."""
    if rules_dir is None:
        return None
    path = rules_dir / f"{tenant}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConsoleMisconfigured(f"{path}: cannot read: {exc}") from None
    try:
        file = parse_yaml_model(text, RuleFile, source=str(path))
        if file.bus is None:
            return None
        fleet_path = file.bus.fleet if file.bus.fleet.is_absolute() else rules_dir / file.bus.fleet
        fleet = load_fleet(fleet_path)
        if fleet.tenant != tenant:
            raise ConfigError(f"{fleet_path}: tenant: {fleet.tenant!r} is not {tenant!r}")
        return TenantFleet(fleet, bus_rules(file.bus.settings, str(path)))
    except (ConfigError, ValueError, OSError) as exc:
        raise ConsoleMisconfigured(str(exc)) from None
