#!/bin/bash
# One-shot job of the compose profile influxdb2, run in the influxdb:2 image (which
# has the influx CLI) once InfluxDB 2.x has made its org, bucket and operator token.
# It makes what iotmon's InfluxDB 1.x clients (ingest, the API, alerts, Grafana's
# InfluxQL datasource) need to use 2.x through its v1 API, unchanged:
#   - the DBRP mapping: database $IOTMON_DATABASE, retention policy autogen -> the
#     bucket of that name (the default mapping for the database);
#   - v1 authorizations with the usernames and passwords the 1.8 stack uses: the
#     writer may write the bucket, the reader may read it.
# Run on every start and idempotent: what exists is kept, passwords are set again
# (so a rotated secret file takes effect on the next `docker compose up`).
set -euo pipefail

: "${INFLUX_HOST:?}" "${INFLUX_ORG:?}" "${IOTMON_DATABASE:?}" "${INFLUX_TOKEN_FILE:?}"
: "${IOTMON_WRITER:?}" "${IOTMON_WRITER_PASSWORD_FILE:?}"
: "${IOTMON_READER:?}" "${IOTMON_READER_PASSWORD_FILE:?}"
INFLUX_TOKEN="$(cat "$INFLUX_TOKEN_FILE")"
export INFLUX_HOST INFLUX_ORG INFLUX_TOKEN

# influx fails when no bucket has the name: that is the error below, not set -e's.
bucket_id="$(influx bucket list --name "$IOTMON_DATABASE" --hide-headers | cut -f1)" ||
    bucket_id=""
if [ -z "$bucket_id" ]; then
    echo "influxdb2-init: no bucket $IOTMON_DATABASE in org $INFLUX_ORG" >&2
    exit 1
fi

if [ -z "$(influx v1 dbrp list --db "$IOTMON_DATABASE" --hide-headers)" ]; then
    influx v1 dbrp create --db "$IOTMON_DATABASE" --rp autogen --bucket-id "$bucket_id" \
        --default
    echo "influxdb2-init: mapped database $IOTMON_DATABASE to bucket $bucket_id"
fi

# v1_user USERNAME PASSWORD_FILE read|write
v1_user() {
    local username=$1 password
    password="$(cat "$2")"
    if [ -n "$(influx v1 auth list --username "$username" --hide-headers)" ]; then
        influx v1 auth set-password --username "$username" --password "$password"
    else
        influx v1 auth create --username "$username" --password "$password" \
            "--$3-bucket" "$bucket_id" --description "iotmon $3 ($username)"
        echo "influxdb2-init: v1 user $username may $3 bucket $bucket_id"
    fi
}
v1_user "$IOTMON_WRITER" "$IOTMON_WRITER_PASSWORD_FILE" write
v1_user "$IOTMON_READER" "$IOTMON_READER_PASSWORD_FILE" read
