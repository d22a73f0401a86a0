"""Rule files on disk → validated ``RuleFile``s, and reloading them without a restart.

One YAML per tenant in the rules folder, named ``<tenant>.yaml``. ``load_all``
refuses the whole folder if any file is bad (start-up and ``config check``:
fail fast, naming file, key path and line). ``RuleWatcher.poll`` reloads what
changed: a bad file keeps that tenant's previous rules and says why; a file
removed removes its tenant's rules.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from iotmon_alerts.domain.bus_bridge import BusChannel
from iotmon_alerts.rulefile import BusSection, RuleFile
from iotmon_runtime.config_files import ConfigError, parse_yaml_model

logger = logging.getLogger(__name__)

BusFactory = Callable[[str, BusSection, Path], BusChannel]
"""Builds a tenant's bus engine from its rule file's ``bus`` section (folder for the fleet)."""


@dataclass(frozen=True, slots=True)
class LoadedRules:
    file: RuleFile
    bus: BusChannel | None
    digest: str
    path: Path


@dataclass(slots=True)
class ReloadReport:
    """What one poll changed: tenants loaded or removed, and files refused (with why)."""

    loaded: list[LoadedRules] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _digest(path: Path, text: str, bus_text: str) -> str:
    return hashlib.sha256(f"{path}\x1f{text}\x1f{bus_text}".encode()).hexdigest()


def rule_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if p.is_file()) + sorted(
        p for p in folder.glob("*.yml") if p.is_file()
    )


def _read_fleet_text(path: Path, file: RuleFile) -> str:
    """The fleet file's text, so a fleet edit counts as a change of the rules."""
    if file.bus is None:
        return ""
    fleet = file.bus.fleet if file.bus.fleet.is_absolute() else path.parent / file.bus.fleet
    try:
        return fleet.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{path}: bus.fleet: cannot read {fleet}: {exc.strerror or exc}"
        ) from None


def load_file(path: Path, bus_factory: BusFactory | None) -> LoadedRules:
    """One rule file, validated; raises ConfigError naming file, key path and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    file = parse_yaml_model(text, RuleFile, source=str(path))
    expected = path.stem
    if file.tenant != expected:
        raise ConfigError(
            f"{path}: tenant: {file.tenant!r} does not match the file name (expected {expected!r})"
        )
    fleet_text = _read_fleet_text(path, file)
    bus = None
    if file.bus is not None:
        if bus_factory is None:
            raise ConfigError(f"{path}: bus: the school-bus rules are not available here")
        try:
            bus = bus_factory(file.tenant, file.bus, path.parent)
        except ConfigError:
            raise
        except (ValueError, OSError) as exc:
            raise ConfigError(f"{path}: bus: {exc}") from None
    return LoadedRules(file, bus, _digest(path, text, fleet_text), path)


def load_all(folder: Path, bus_factory: BusFactory | None) -> list[LoadedRules]:
    """Every rule file in ``folder``; ConfigError listing every bad one."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: the rules folder does not exist")
    loaded, errors = [], []
    for path in rule_files(folder):
        try:
            loaded.append(load_file(path, bus_factory))
        except ConfigError as exc:
            errors.append(str(exc))
    tenants: dict[str, Path] = {}
    for rules in loaded:
        if rules.file.tenant in tenants:
            errors.append(
                f"{rules.path}: tenant {rules.file.tenant!r} already has "
                f"{tenants[rules.file.tenant]}"
            )
        tenants[rules.file.tenant] = rules.path
    if errors:
        raise ConfigError("\n".join(errors))
    return loaded


class RuleWatcher:
    """Reloads changed rule files; keeps the last good version of a file that went bad."""

    def __init__(self, folder: Path, bus_factory: BusFactory | None) -> None:
        self._folder = folder
        self._bus_factory = bus_factory
        self._current: dict[str, LoadedRules] = {}
        self._stamps: dict[Path, tuple[float, int]] = {}
        self._failed: dict[Path, str] = {}

    @property
    def current(self) -> dict[str, LoadedRules]:
        return dict(self._current)

    def start(self, loaded: list[LoadedRules]) -> None:
        for rules in loaded:
            self._current[rules.file.tenant] = rules
            self._stamps[rules.path] = self._stamp(rules.path)

    @staticmethod
    def _stamp(path: Path) -> tuple[float, int]:
        try:
            info = path.stat()
        except OSError:
            return (0.0, -1)
        return (info.st_mtime, info.st_size)

    def poll(self, *, force: bool = False) -> ReloadReport:
        """Reload files whose mtime or size changed (every file with ``force``)."""
        report = ReloadReport()
        present = set(rule_files(self._folder)) if self._folder.is_dir() else set()
        by_path = {rules.path: tenant for tenant, rules in self._current.items()}
        for path in sorted(present):
            stamp = self._stamp(path)
            if not force and self._stamps.get(path) == stamp:
                continue
            self._stamps[path] = stamp
            try:
                rules = load_file(path, self._bus_factory)
            except ConfigError as exc:
                message = f"{exc} (keeping the rules loaded before)"
                if self._failed.get(path) != message:
                    report.errors.append(message)
                self._failed[path] = message
                continue
            self._failed.pop(path, None)
            tenant = rules.file.tenant
            owner = self._current.get(tenant)
            if owner is not None and owner.path != path:
                report.errors.append(f"{path}: tenant {tenant!r} already has {owner.path}")
                continue
            if owner is not None and owner.digest == rules.digest:
                continue
            self._current[tenant] = rules
            report.loaded.append(rules)
        for path, tenant in by_path.items():
            if path not in present:
                self._current.pop(tenant, None)
                self._stamps.pop(path, None)
                report.removed.append(tenant)
        return report
