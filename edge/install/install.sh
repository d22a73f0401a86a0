#!/usr/bin/env bash
# Install the iotmon edge agent as a systemd service on Raspberry Pi OS (bookworm,
# Python 3.11), from a clone of the repository:
#
#   sudo edge/install/install.sh --tenant acme --agent-id bus-12
#
# What it does, each step safe to repeat (an upgrade is the same command):
#   - a system user iotmon-edge (in the gpio, i2c, spi and dialout groups that exist)
#   - a virtual environment in /opt/iotmon-edge/venv with the four edge distributions
#   - /etc/iotmon/edge.yaml and edge.env from templates, only where absent (root:iotmon-edge 0640)
#   - /var/lib/iotmon-edge for the durable queue (iotmon-edge 0750)
#   - /etc/systemd/system/iotmon-edge.service
#   - iotmon-edge config check, as the service user with its environment; only if it
#     passes is the unit enabled and (re)started
#
# Options:
#   --tenant T / --agent-id A   fill a new edge.yaml (ignored when one exists)
#   --wheels DIR                install offline from a wheelhouse (pip --no-index)
#   --python PY                 interpreter for the venv (default python3)
#   --no-hardware               leave out the real drivers' libraries (iotmon-devices[hardware]:
#                               smbus2, gpiozero, pymodbus, pyserial, pynmea2): simulators only
#   --no-enable                 install and check, leave the service alone
#   --root DIR                  install under DIR instead of / (tests, image staging;
#                               the venv's scripts then name DIR in their shebangs)
#   --skip-user                 do not create the user (tests, or users managed elsewhere)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source_dir="$(cd "$here/../.." && pwd)"
root=/
tenant=""
agent_id=""
wheels=""
python=python3
enable=1
make_user=1
hardware=1
service_user=iotmon-edge

die() { echo "install.sh: $*" >&2; exit 1; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --root) root="$2"; shift 2 ;;
        --tenant) tenant="$2"; shift 2 ;;
        --agent-id) agent_id="$2"; shift 2 ;;
        --wheels) wheels="$2"; shift 2 ;;
        --python) python="$2"; shift 2 ;;
        --no-enable) enable=0; shift ;;
        --no-hardware) hardware=0; shift ;;
        --skip-user) make_user=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

root="${root%/}"
prefix="$root/opt/iotmon-edge"
venv="$prefix/venv"
etc="$root/etc/iotmon"
state="$root/var/lib/iotmon-edge"
unit="$root/etc/systemd/system/iotmon-edge.service"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$python is older than 3.11 (Raspberry Pi OS bookworm has 3.11)"

# -- the user ------------------------------------------------------------------------
owner=root
group="$service_user"
if [[ $make_user -eq 1 ]]; then
    prefix_args=()
    [[ -n "$root" ]] && prefix_args=(--prefix "$root")
    if ! grep -qs "^$service_user:" "${root:-}/etc/passwd"; then
        useradd "${prefix_args[@]}" --system --user-group --home-dir /var/lib/iotmon-edge \
            --no-create-home --shell /usr/sbin/nologin "$service_user"
        echo "created system user $service_user"
    fi
    # Drivers read I2C, 1-Wire/GPIO and serial devices through these groups.
    for extra in gpio i2c spi dialout; do
        if grep -qs "^$extra:" "${root:-}/etc/group"; then
            usermod "${prefix_args[@]}" --append --groups "$extra" "$service_user"
        fi
    done
else
    owner="$(id -un)"
    group="$(id -gn)"
    service_user="$owner"
fi

# -- the software --------------------------------------------------------------------
mkdir -p "$prefix"
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --upgrade)
extras=""
[[ $hardware -eq 1 ]] && extras="[hardware]"
if [[ -n "$wheels" ]]; then
    "${pip[@]}" --no-index --find-links "$wheels" iotmon-edge "iotmon-devices$extras"
else
    "${pip[@]}" "$source_dir/contract" "$source_dir/runtime" "$source_dir/devices$extras" \
        "$source_dir/edge"
fi
echo "installed $("$venv/bin/iotmon-edge" --version) in $venv"

# -- configuration and state ---------------------------------------------------------
install -d -m 0750 -o "$owner" -g "$group" "$etc"
if [[ ! -e "$etc/edge.yaml" ]]; then
    [[ -n "$tenant" && -n "$agent_id" ]] || die "a new install needs --tenant and --agent-id"
    sed -e "s/__TENANT__/$tenant/" -e "s/__AGENT_ID__/$agent_id/" "$here/edge.yaml" \
        > "$etc/edge.yaml.new"
    install -m 0640 -o "$owner" -g "$group" "$etc/edge.yaml.new" "$etc/edge.yaml"
    rm -f "$etc/edge.yaml.new"
    echo "wrote $etc/edge.yaml (tenant $tenant, agent $agent_id)"
fi
if [[ ! -e "$etc/edge.env" ]]; then
    install -m 0640 -o "$owner" -g "$group" "$here/edge.env" "$etc/edge.env"
    echo "wrote $etc/edge.env: set the broker and this agent's credentials there"
fi
install -d -m 0750 -o "$service_user" -g "$group" "$state"
install -D -m 0644 "$here/iotmon-edge.service" "$unit"

# -- check before enabling -----------------------------------------------------------
check=("$venv/bin/iotmon-edge" config check "$etc/edge.yaml")
as_user=()
if [[ $make_user -eq 1 ]] && [[ -z "$root" ]] && command -v runuser >/dev/null; then
    as_user=(runuser -u "$service_user" --)  # so an unreadable key file shows now
fi
if ! (cd "$state" && set -a && . "$etc/edge.env" && set +a && "${as_user[@]}" "${check[@]}"); then
    echo "install.sh: the configuration does not pass; the service is not enabled." >&2
    echo "install.sh: fix $etc/edge.yaml and $etc/edge.env, then run this again." >&2
    exit 2
fi

if [[ $enable -eq 0 ]]; then
    echo "installed; not enabled (--no-enable)"
elif [[ -n "$root" ]]; then
    systemctl --root="$root" enable iotmon-edge.service
else
    systemctl daemon-reload
    systemctl enable iotmon-edge.service
    systemctl restart iotmon-edge.service
    echo "iotmon-edge is running: journalctl -u iotmon-edge -f"
fi
