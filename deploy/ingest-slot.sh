#!/bin/sh
# Entry point of the ingest image under docker-compose.yml, where ingest scales by
# replicas (deploy.replicas): each replica claims the lowest free slot N with a lock
# file on the shared ingest-state volume and runs as instance ingest-N.
#
# Why slots and not the container's host name: the instance id names ingest's broker
# session and its spool. A recreated container with a new id would leave the old
# persistent session in the share group, and mosquitto keeps handing an offline
# member its turn of the telemetry (queued to a session nobody resumes), and would
# leave spooled batches nobody replays. A slot is taken over by whichever replica
# starts next: it resumes that session and replays that spool.
#
#   INGEST_SHARE_GROUP   the MQTT 5 share group; required as soon as a second
#                        replica runs (without one every replica would receive
#                        every reading). Empty: one plain subscription.
#   INGEST_SLOTS_DIR     where the lock files live (default /var/lib/iotmon/slots).
#   INGEST_MAX_SLOTS     how many replicas at most (default 32).
#   INGEST_ID_FILE       where the claimed id is written for the health check
#                        (default /tmp/iotmon-ingest-instance).
set -eu

slots_dir="${INGEST_SLOTS_DIR:-/var/lib/iotmon/slots}"
max_slots="${INGEST_MAX_SLOTS:-32}"
id_file="${INGEST_ID_FILE:-/tmp/iotmon-ingest-instance}"
share_group="${INGEST_SHARE_GROUP:-}"
unset INGEST_SLOTS_DIR INGEST_MAX_SLOTS INGEST_ID_FILE INGEST_SHARE_GROUP

if [ "$#" -eq 0 ]; then
    echo "ingest-slot: no command to run" >&2
    exit 2
fi
mkdir -p "$slots_dir"
slot=0
while [ "$slot" -lt "$max_slots" ]; do
    # fd 9 stays open across exec: the lock lives exactly as long as ingest does.
    exec 9>"$slots_dir/ingest-$slot.lock"
    if flock -n 9; then
        if [ -z "$share_group" ] && [ "$slot" -gt 0 ]; then
            echo "ingest-slot: replica ingest-$slot found ingest-0 running: several" \
                "replicas need a share group (IOTMON_INGEST_SHARE_GROUP=iotmon-ingest)" >&2
            exit 2
        fi
        IOTMON_INGEST_INSTANCE_ID="ingest-$slot"
        export IOTMON_INGEST_INSTANCE_ID
        if [ -n "$share_group" ]; then
            IOTMON_INGEST_MQTT__SHARE_GROUP="$share_group"
            export IOTMON_INGEST_MQTT__SHARE_GROUP
        fi
        printf '%s\n' "$IOTMON_INGEST_INSTANCE_ID" >"$id_file"
        echo "ingest-slot: running as $IOTMON_INGEST_INSTANCE_ID" >&2
        exec "$@"
    fi
    exec 9>&-
    slot=$((slot + 1))
done
echo "ingest-slot: all $max_slots slots in $slots_dir are taken" >&2
exit 2
