#!/usr/bin/env bash
# Resolve the edge agent's dependencies for a Raspberry Pi (manylinux_2_17_aarch64,
# CPython 3.11) from PyPI, binary wheels only, with the real drivers' libraries
# (iotmon-devices[hardware]), and check that nothing heavy or cloud-side comes along
# (torch, OpenCV, FastAPI, an InfluxDB client...).
#
#   edge/install/resolve-aarch64.sh [folder]     # keeps the wheels in folder if given
#
# Needs the package registry. Exit status: 0 resolved and clean, 1 a forbidden
# package, 2 resolution failed (registry unreachable, or no aarch64 wheel).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
if [[ -x "$repo/.venv/bin/python" && -z "${PYTHON:-}" ]]; then
    python="$repo/.venv/bin/python"
fi
work="${1:-$(mktemp -d)}"
mkdir -p "$work/local" "$work/wheels"

# The local distributions are pure Python: build them as wheels for the resolver.
"$python" -m pip wheel --quiet --no-deps -w "$work/local" \
    "$repo/contract" "$repo/runtime" "$repo/devices" "$repo/edge"

if ! "$python" -m pip download --quiet --only-binary=:all: \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
    --python-version 3.11 --implementation cp \
    --find-links "$work/local" -d "$work/wheels" iotmon-edge "iotmon-devices[hardware]"; then
    echo "resolve-aarch64: pip could not resolve for manylinux_2_17_aarch64 / CPython 3.11" >&2
    echo "resolve-aarch64: (is the package registry reachable?)" >&2
    exit 2
fi

"$python" - "$work/wheels" <<'PY'
import sys
from pathlib import Path

FORBIDDEN = ("torch", "opencv", "fastapi", "starlette", "uvicorn", "influxdb", "httpx",
             "sqlalchemy", "numpy")
wheels = sorted(Path(sys.argv[1]).glob("*.whl"))
bad = []
total = 0
for wheel in wheels:
    name, version, *rest = wheel.name[: -len(".whl")].split("-")
    tag = "-".join(rest[-3:])
    size = wheel.stat().st_size
    total += size
    print(f"{name:<28} {version:<12} {tag:<55} {size / 1024:8.0f} KiB")
    if name.lower().replace("_", "-").startswith(FORBIDDEN):
        bad.append(name)
print(f"{len(wheels)} wheels, {total / 1024 / 1024:.1f} MiB, for manylinux_2_17_aarch64 / cp311")
if bad:
    print(f"FORBIDDEN on the edge: {', '.join(bad)}", file=sys.stderr)
    sys.exit(1)
print("no torch, OpenCV, FastAPI, InfluxDB client or other heavy dependency")
PY
