#!/bin/sh
# Build mosquitto's password file from IOTMON_MQTT_USERS, then run the given command.
#
# IOTMON_MQTT_USERS holds one "username:password" per line (docker-compose.yml
# sets it from .env). The file is rebuilt on every start, so changing a password
# is an edit of .env and a restart. For production prefer a password file made
# offline (README.md) and mounted read-only.
set -eu

passwd_file=${IOTMON_MQTT_PASSWD_FILE:-/mosquitto/config/passwd}
users=${IOTMON_MQTT_USERS:?set IOTMON_MQTT_USERS to username:password lines}

umask 077
: > "$passwd_file"
count=0
# The here-document keeps the loop in this shell, so $count survives it.
while IFS= read -r line; do
  case $line in
    "") continue ;;
    *:*) ;;
    *) echo "make-passwd: a line of IOTMON_MQTT_USERS has no ':' (username:password)" >&2; exit 2 ;;
  esac
  mosquitto_passwd -b "$passwd_file" "${line%%:*}" "${line#*:}"
  count=$((count + 1))
done <<EOF_USERS
$users
EOF_USERS

if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
  chown mosquitto:mosquitto "$passwd_file"
fi
echo "make-passwd: $count user(s) written to $passwd_file"
exec "$@"
