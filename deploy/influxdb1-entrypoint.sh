#!/bin/bash
# Entry point of the influxdb:1.8 container in docker-compose.yml. The image's init
# script reads its users' passwords from variables only; this reads each <NAME>_FILE
# (a compose secret) into <NAME>, then runs the image's own entrypoint.
#
# The init script runs on the first start only (an empty volume): a password changed
# later is changed in InfluxDB with SET PASSWORD, then in its secret file.
set -euo pipefail

for name in INFLUXDB_ADMIN_PASSWORD INFLUXDB_USER_PASSWORD INFLUXDB_WRITE_USER_PASSWORD \
    INFLUXDB_READ_USER_PASSWORD; do
    file_variable="${name}_FILE"
    path="${!file_variable:-}"
    [ -n "$path" ] || continue
    if [ -n "${!name:-}" ]; then
        echo "influxdb1-entrypoint: $name and $file_variable are both set" >&2
        exit 2
    fi
    if [ ! -r "$path" ]; then
        echo "influxdb1-entrypoint: $file_variable: cannot read $path" >&2
        exit 2
    fi
    value="$(cat "$path")"
    # The init script pastes it into CREATE USER ... WITH PASSWORD '...'.
    case "$value" in
        "" | *"'"* | *'\'*)
            echo "influxdb1-entrypoint: $file_variable ($path) is empty or holds a quote" \
                "or backslash" >&2
            exit 2
            ;;
    esac
    export "$name=$value"
    unset "$file_variable"
done
exec "${INFLUXDB_IMAGE_ENTRYPOINT:-/entrypoint.sh}" "$@"
