"""Pictures the tests take: kept as test artefacts, and the README's copies made from them.

Every picture lands in ``.state/test-artifacts/`` (ignored by git). With
``IOTMON_UPDATE_SCREENSHOTS=1`` a test also copies its picture to ``docs/images/``, which
is how the README's pictures are made: by the tests, never by hand.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / ".state" / "test-artifacts"
IMAGES = REPO / "docs" / "images"
CHROMIUM = Path("/usr/bin/chromium")


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def publish(picture: Path, name: str) -> Path | None:
    """Copy a picture for the README when asked to (``IOTMON_UPDATE_SCREENSHOTS=1``)."""
    if os.environ.get("IOTMON_UPDATE_SCREENSHOTS") != "1":
        return None
    IMAGES.mkdir(parents=True, exist_ok=True)
    target = IMAGES / name
    shutil.copyfile(picture, target)
    return target
