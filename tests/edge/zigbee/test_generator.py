"""The committed fixtures are what generate.mjs makes from the pinned converters."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.edge.zigbee.fixtures import GENERATIONS, HERE, load

ALIASES = {"z2m1": "zhc-z2m1", "z2m2": "zhc-z2m2"}


def test_fixtures_carry_the_pinned_converter_versions_and_generator_version() -> None:
    """CI-safe: no node needed. A fixture from another converter version or an older
    generator (or edited by hand into one) fails here."""
    package = json.loads((HERE / "package.json").read_text())
    lock = json.loads((HERE / "package-lock.json").read_text())
    found = re.search(r"const GENERATOR_VERSION = (\d+);", (HERE / "generate.mjs").read_text())
    assert found is not None
    for generation in GENERATIONS:
        alias = ALIASES[generation]
        pinned = package["dependencies"][alias].rsplit("@", 1)[1]
        locked = lock["packages"][f"node_modules/{alias}"]["version"]
        fixture = load(generation)
        assert fixture.generator["zigbee_herdsman_converters"] == pinned == locked
        assert fixture.generator["version"] == int(found.group(1))
    assert load("z2m1").generator["zigbee2mqtt"].startswith("1.")
    assert load("z2m2").generator["zigbee2mqtt"].startswith("2.")


def test_fixtures_are_what_the_generator_makes_now() -> None:
    """With the converters installed (npm ci in tests/edge/zigbee), regenerate and compare."""
    node = shutil.which("node")
    if node is None or not all((HERE / "node_modules" / a).is_dir() for a in ALIASES.values()):
        pytest.skip("run `npm ci` in tests/edge/zigbee (node 20) to regenerate and compare")
    result = subprocess.run(
        [node, str(HERE / "generate.mjs"), "--check"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
