"""deploy/: the entry points docker-compose.yml puts in front of containers, run here.

The scripts run as the containers run them (sh or bash, real flock, real files); the
programs they hand over to (iotmon-ingest, the InfluxDB images' entrypoints, the influx
and influxdb3 CLIs) are stand-ins, named as such: small scripts that record what they
were given, because those images cannot run here.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.compose import REPO, environment, load_compose, local_environment

DEPLOY = REPO / "deploy"
COMPOSE = load_compose()
SERVICES = COMPOSE["services"]


def _stand_in(folder: Path, name: str, body: str) -> Path:
    """An executable stand-in for a program the real image has."""
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# -- ingest-slot.sh: one slot, one instance id, per replica --------------------------


class Replicas:
    """Replicas of ingest as compose starts them: the slot script in front of a stand-in
    iotmon-ingest that reports its instance id and share group, then stays up."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.slots = folder / "slots"
        self.running: list[subprocess.Popen[str]] = []
        self.program = _stand_in(
            folder,
            "iotmon-ingest",
            'echo "$IOTMON_INGEST_INSTANCE_ID ${IOTMON_INGEST_MQTT__SHARE_GROUP:-plain} $*"\n'
            "exec sleep 60",
        )

    def start(self, share_group: str = "") -> subprocess.Popen[str]:
        index = len(self.running)
        env = {
            "PATH": os.environ["PATH"],
            "INGEST_SHARE_GROUP": share_group,
            "INGEST_SLOTS_DIR": str(self.slots),
            "INGEST_ID_FILE": str(self.folder / f"id-{index}"),
        }
        process = subprocess.Popen(
            ["sh", str(DEPLOY / "ingest-slot.sh"), str(self.program), "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.running.append(process)
        return process

    @staticmethod
    def first_line(process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        return process.stdout.readline().strip()

    def stop(self) -> None:
        for process in self.running:
            process.kill()
            process.wait(10)


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    started = Replicas(tmp_path)
    yield started
    started.stop()


def test_each_replica_claims_its_own_slot_and_a_recreated_one_takes_the_free_slot(
    replicas: Replicas,
) -> None:
    first = [replicas.start("iotmon-ingest") for _ in range(3)]
    seen = sorted(replicas.first_line(p) for p in first)
    assert seen == [f"ingest-{n} iotmon-ingest run" for n in range(3)]
    # The health check reads the id each replica wrote.
    ids = sorted((replicas.folder / f"id-{n}").read_text().strip() for n in range(3))
    assert ids == ["ingest-0", "ingest-1", "ingest-2"]
    # A replica dies (the container is recreated): its lock goes with it, and the next
    # replica to start resumes that slot, so its session and spool, not a new one.
    victim = first[1]
    victim_id = (replicas.folder / "id-1").read_text().strip()
    victim.kill()
    victim.wait(10)
    again = replicas.start("iotmon-ingest")
    assert replicas.first_line(again) == f"{victim_id} iotmon-ingest run"


def test_one_replica_subscribes_plainly_and_a_second_one_needs_a_share_group(
    replicas: Replicas,
) -> None:
    alone = replicas.start()
    assert replicas.first_line(alone) == "ingest-0 plain run"
    second = replicas.start()
    assert second.wait(10) == 2
    assert second.stderr is not None
    assert "need a share group (IOTMON_INGEST_SHARE_GROUP=iotmon-ingest)" in second.stderr.read()


def test_no_free_slot_is_an_error(tmp_path: Path) -> None:
    program = _stand_in(tmp_path, "iotmon-ingest", "exec sleep 60")
    env = {
        "PATH": os.environ["PATH"],
        "INGEST_SHARE_GROUP": "iotmon-ingest",
        "INGEST_SLOTS_DIR": str(tmp_path / "slots"),
        "INGEST_MAX_SLOTS": "1",
        "INGEST_ID_FILE": str(tmp_path / "id"),
    }
    holder = subprocess.Popen(["sh", str(DEPLOY / "ingest-slot.sh"), str(program)], env=env)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "id").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        done = subprocess.run(
            ["sh", str(DEPLOY / "ingest-slot.sh"), str(program)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2
        assert "all 1 slots" in done.stderr
    finally:
        holder.kill()
        holder.wait(10)


def test_compose_runs_ingest_through_the_slot_script() -> None:
    ingest = SERVICES["ingest"]
    assert ingest["entrypoint"] == ["sh", "/usr/local/bin/iotmon-ingest-slot", "iotmon-ingest"]
    assert ingest["deploy"]["replicas"] == "1"
    scaled = load_compose(
        {"IOTMON_INGEST_REPLICAS": "3", "IOTMON_INGEST_SHARE_GROUP": "iotmon-ingest"}
    )["services"]["ingest"]
    assert scaled["deploy"]["replicas"] == "3"
    assert environment(scaled)["INGEST_SHARE_GROUP"] == "iotmon-ingest"
    # Nothing pins the instance id or the client id: the slot does.
    env = environment(ingest)
    assert "IOTMON_INGEST_INSTANCE_ID" not in env
    assert "IOTMON_INGEST_MQTT__CLIENT_ID" not in env
    # The slots are on the volume every replica shares (and that outlives them).
    assert "ingest-state:/var/lib/iotmon" in ingest["volumes"]
    assert '"${INGEST_SLOTS_DIR:-/var/lib/iotmon/slots}"' in (DEPLOY / "ingest-slot.sh").read_text()


# -- influxdb1-entrypoint.sh: the 1.8 image's passwords from secret files ------------


def _influxdb1(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    image_entrypoint = _stand_in(
        tmp_path, "entrypoint.sh", 'env | grep "^INFLUXDB_" | sort\necho "args $*"'
    )
    return subprocess.run(
        ["bash", str(DEPLOY / "influxdb1-entrypoint.sh"), "influxd"],
        env={"PATH": os.environ["PATH"], "INFLUXDB_IMAGE_ENTRYPOINT": str(image_entrypoint), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_influxdb1_passwords_come_from_the_compose_secrets(tmp_path: Path) -> None:
    influx = SERVICES["influxdb"]
    assert influx["entrypoint"] == ["bash", "/iotmon/influxdb1-entrypoint.sh"]
    env = {k: v for k, v in local_environment(influx, COMPOSE).items()}
    done = _influxdb1(tmp_path, env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "INFLUXDB_ADMIN_PASSWORD=dev-admin-password" in lines
    assert "INFLUXDB_WRITE_USER_PASSWORD=dev-write-password" in lines
    assert "INFLUXDB_READ_USER_PASSWORD=dev-read-password" in lines
    assert not [line for line in lines if "_PASSWORD_FILE=" in line]
    assert lines[-1] == "args influxd"


@pytest.mark.parametrize(
    ("content", "both", "message"),
    [
        ("pw'; DROP", False, "holds a quote or backslash"),
        ("", False, "is empty"),
        ("fine-password", True, "are both set"),
    ],
)
def test_influxdb1_refuses_what_its_init_script_would_mangle(
    tmp_path: Path, content: str, both: bool, message: str
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(content + "\n")
    env = {"INFLUXDB_WRITE_USER_PASSWORD_FILE": str(secret)}
    if both:
        env["INFLUXDB_WRITE_USER_PASSWORD"] = "other"
    done = _influxdb1(tmp_path, env)
    assert done.returncode == 2
    assert message in done.stderr
    assert "DROP" not in done.stderr


# -- influxdb2-init.sh: DBRP mapping and v1 users, idempotent -------------------------


STAND_IN_INFLUX = r"""
# Stand-in for the influx CLI of the influxdb:2 image: answers from files under $STATE
# and logs each call (secrets included, to check which were sent).
echo "$*" >> "$STATE/calls"
[ "$INFLUX_TOKEN" = "$(cat "$STATE/operator-token")" ] || { echo "unauthorized" >&2; exit 1; }
case "$1 $2 $3" in
  "bucket list --name") [ "$4" = iotmon ] && printf '0a1b2c3d\tiotmon\n' ;;
  "v1 dbrp list") cat "$STATE/dbrp" 2>/dev/null || true ;;
  "v1 dbrp create") echo "$*" > "$STATE/dbrp" ;;
  "v1 auth list") grep -s -- "--username $5 " "$STATE/auths" || true ;;
  "v1 auth create") echo "$* " >> "$STATE/auths" ;;
  "v1 auth set-password") ;;
  *) echo "unexpected: $*" >&2; exit 1 ;;
esac
"""


def test_influxdb2_init_maps_the_database_and_makes_the_v1_users_once(tmp_path: Path) -> None:
    init = SERVICES["influxdb2-init"]
    assert init["entrypoint"] == ["bash", "/iotmon/influxdb2-init.sh"]
    assert init["depends_on"]["influxdb2"]["condition"] == "service_healthy"
    state = tmp_path / "state"
    state.mkdir()
    env = local_environment(init, COMPOSE)
    (state / "operator-token").write_text(Path(env["INFLUX_TOKEN_FILE"]).read_text().rstrip("\n"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stand_in(bin_dir, "influx", STAND_IN_INFLUX)
    run_env = {**env, "STATE": str(state), "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run() -> list[str]:
        (state / "calls").unlink(missing_ok=True)
        done = subprocess.run(
            ["bash", str(DEPLOY / "influxdb2-init.sh")],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return (state / "calls").read_text().splitlines()

    first = run()
    assert "v1 dbrp create --db iotmon --rp autogen --bucket-id 0a1b2c3d --default" in first
    creates = [c for c in first if c.startswith("v1 auth create")]
    assert creates == [
        "v1 auth create --username iotmon-ingest --password dev-write-password "
        "--write-bucket 0a1b2c3d --description iotmon write (iotmon-ingest)",
        "v1 auth create --username iotmon-reader --password dev-read-password "
        "--read-bucket 0a1b2c3d --description iotmon read (iotmon-reader)",
    ]
    # Every start runs it again: nothing is made twice, passwords are set again.
    second = run()
    assert not [c for c in second if "create" in c]
    assert "v1 auth set-password --username iotmon-ingest --password dev-write-password" in second
    assert "v1 auth set-password --username iotmon-reader --password dev-read-password" in second


def test_influxdb2_init_fails_without_the_bucket(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    env = local_environment(SERVICES["influxdb2-init"], COMPOSE)
    (state / "operator-token").write_text(Path(env["INFLUX_TOKEN_FILE"]).read_text().strip())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stand_in(bin_dir, "influx", STAND_IN_INFLUX)
    env = {**env, "IOTMON_DATABASE": "other", "STATE": str(state)}
    env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", str(DEPLOY / "influxdb2-init.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "no bucket other in org iotmon" in done.stderr


# -- influxdb3-serve.sh: the operator token from the compose secret -------------------


def _influxdb3(tmp_path: Path, token_file: Path) -> subprocess.CompletedProcess[str]:
    stand_in = _stand_in(
        tmp_path,
        "influxdb3",
        'echo "args $*"\nfile="${@: -1}"\ncat "$file"\nstat -c "%a" "$file"',
    )
    service = SERVICES["influxdb3"]
    env = local_environment(service, COMPOSE)
    env["INFLUXDB3_TOKEN_FILE"] = str(token_file)
    env["INFLUXDB3_ADMIN_TOKEN_JSON"] = str(tmp_path / "admin-token.json")
    command = [str(part) for part in service["command"]]
    command[0] = str(stand_in)
    return subprocess.run(
        ["sh", str(DEPLOY / "influxdb3-serve.sh"), *command],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_influxdb3_starts_with_the_token_of_the_secret(tmp_path: Path) -> None:
    env = local_environment(SERVICES["influxdb3"], COMPOSE)
    assert SERVICES["influxdb3"]["entrypoint"] == ["sh", "/iotmon/influxdb3-serve.sh"]
    done = _influxdb3(tmp_path, Path(env["INFLUXDB3_TOKEN_FILE"]))
    assert done.returncode == 0, done.stderr
    args, document, mode = done.stdout.splitlines()
    assert args.startswith("args serve --node-id=iotmon --object-store=file")
    assert args.endswith(f"--admin-token-file {tmp_path / 'admin-token.json'}")
    # InfluxDB 3's offline admin token file: {"token": "apiv3_…", "name": "_admin"}.
    assert json.loads(document) == {"token": "apiv3_dev-influxdb3-token", "name": "_admin"}
    assert mode == "600"


@pytest.mark.parametrize(
    ("token", "message"),
    [("dev-token-without-prefix", "beginning with apiv3_"), ('apiv3_a"b', "base64 only")],
)
def test_influxdb3_refuses_a_token_it_could_not_use(
    tmp_path: Path, token: str, message: str
) -> None:
    secret = tmp_path / "token"
    secret.write_text(token + "\n")
    done = _influxdb3(tmp_path, secret)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "admin-token.json").exists()
