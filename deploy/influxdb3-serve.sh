#!/bin/sh
# Entry point of the influxdb:3-core container (compose profile influxdb3): starts
# InfluxDB 3 Core with its operator token taken from a compose secret, so that the
# clients (ingest, the API, alerts, Grafana) authenticate with the same file.
#
# InfluxDB 3 takes a preconfigured token as a JSON file ({"token", "name"}, the
# token beginning with apiv3_): it is written here, readable by this container only,
# from the raw token in INFLUXDB3_TOKEN_FILE. The token is used for v1 Basic auth
# (password = token, username ignored), which the 1.x clients already speak.
set -eu

: "${INFLUXDB3_TOKEN_FILE:?}"
token="$(cat "$INFLUXDB3_TOKEN_FILE")"
case "$token" in
    apiv3_*) ;;
    *)
        echo "influxdb3-serve: $INFLUXDB3_TOKEN_FILE must hold a token beginning with apiv3_" >&2
        exit 2
        ;;
esac
case "$token" in
    *'"'* | *'\'* | *' '*)
        echo "influxdb3-serve: $INFLUXDB3_TOKEN_FILE: a token is apiv3_ and base64 only" >&2
        exit 2
        ;;
esac
token_json="${INFLUXDB3_ADMIN_TOKEN_JSON:-/tmp/iotmon-admin-token.json}"
umask 077
printf '{"token": "%s", "name": "_admin"}\n' "$token" >"$token_json"
unset INFLUXDB3_TOKEN_FILE INFLUXDB3_ADMIN_TOKEN_JSON
exec "$@" --admin-token-file "$token_json"
