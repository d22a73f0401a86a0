"""The Raspberry Pi install: install.sh into a temporary root, the unit file through
``systemd-analyze verify``, and the check that keeps a bad configuration from being enabled.

The install is real (a venv, pip, the four distributions); only the system user is left
out (``--skip-user``: creating one needs the host's user database).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from iotmon_edge.config import load_agent_config

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "edge" / "install"

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    root: Path
    output: str

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "iotmon"

    @property
    def unit(self) -> Path:
        return self.root / "etc" / "systemd" / "system" / "iotmon-edge.service"

    @property
    def enabled_link(self) -> Path:
        return self.unit.parent / "multi-user.target.wants" / "iotmon-edge.service"

    @property
    def agent(self) -> Path:
        return self.root / "opt" / "iotmon-edge" / "venv" / "bin" / "iotmon-edge"


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The environment of a fresh shell: no IOTMON_* from the test run, no active venv.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IOTMON_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    return subprocess.run(
        [str(INSTALL / "install.sh"), "--root", str(root), "--skip-user",
         "--python", _base_python(), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )  # fmt: skip


def _base_python() -> str:
    """The interpreter the test venv was made from (a venv's python would nest venvs)."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("root")
    result = _install(root, "--tenant", "acme", "--agent-id", "bus-12")
    assert result.returncode == 0, result.stdout + result.stderr
    return Installed(root, result.stdout)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_agent_is_installed_in_its_own_venv(installed: Installed) -> None:
    version = subprocess.run(
        [str(installed.agent), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("iotmon-edge ")
    assert "(wire contract" in version.stdout


def test_configuration_comes_from_the_templates_with_tight_permissions(
    installed: Installed,
) -> None:
    config = load_agent_config(installed.etc / "edge.yaml")
    assert (config.tenant, config.agent_id) == ("acme", "bus-12")
    assert config.queue is not None
    assert config.queue.path == Path("queue.db")  # in the unit's working directory
    assert _mode(installed.etc) == 0o750
    assert _mode(installed.etc / "edge.yaml") == 0o640
    assert _mode(installed.etc / "edge.env") == 0o640  # it holds the broker password
    state = installed.root / "var" / "lib" / "iotmon-edge"
    assert state.is_dir()
    assert _mode(state) == 0o750


def test_the_configuration_was_checked_and_the_unit_enabled(installed: Installed) -> None:
    assert "edge.yaml: OK (tenant acme, agent bus-12" in installed.output
    assert installed.unit.read_text() == (INSTALL / "iotmon-edge.service").read_text()
    assert installed.enabled_link.is_symlink()
    assert os.readlink(installed.enabled_link) == "/etc/systemd/system/iotmon-edge.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_unit_file_verifies_cleanly(installed: Installed, tmp_path: Path) -> None:
    # verify wants ExecStart to exist on this machine: point it into the temporary root.
    unit = tmp_path / "iotmon-edge.service"
    unit.write_text(
        installed.unit.read_text().replace(
            "/opt/iotmon-edge/", f"{installed.root}/opt/iotmon-edge/"
        )
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    # Unknown keys and bad values are only warnings: none may appear.
    assert result.stdout + result.stderr == ""
    text = unit.read_text()
    for line in ("Type=notify", "WatchdogSec=60", "Restart=always", "RestartPreventExitStatus=2"):
        assert line in text.splitlines()


def test_a_second_run_upgrades_and_keeps_the_site_configuration(installed: Installed) -> None:
    config = installed.etc / "edge.yaml"
    edited = config.read_text().replace("publish_interval_s: 10", "publish_interval_s: 30")
    config.write_text(edited)
    result = _install(installed.root)  # no --tenant/--agent-id needed any more
    assert result.returncode == 0, result.stdout + result.stderr
    assert config.read_text() == edited
    assert "every 30.0s" in result.stdout


def test_a_configuration_that_fails_its_check_is_not_enabled(installed: Installed) -> None:
    config = installed.etc / "edge.yaml"
    good = config.read_text()
    installed.enabled_link.unlink()
    config.write_text(good.replace("drivers: []", "drivers: []\ncolour: red"))
    try:
        result = _install(installed.root)
        assert result.returncode == 2
        assert "colour: Extra inputs are not permitted" in result.stderr
        assert "the service is not enabled" in result.stderr
        assert not installed.enabled_link.exists()
    finally:
        config.write_text(good)
