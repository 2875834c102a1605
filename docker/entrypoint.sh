#!/bin/sh
# authd's container entrypoint.
#   (no arguments) or serve [ARGS]: check the config (a bad one exits 1 with
#       the reason, before any socket opens), then become the server (exec:
#       signals reach authd directly; SIGTERM stops it gracefully).
#   healthcheck: exit 0 when the running server answers on its control socket.
#   keygen-files DIR NAME: write a new TSIG key NAME once into DIR, as
#       DIR/NAME.key (BIND form, for authd's keys[].secret_file) and
#       DIR/NAME.knot.conf (Knot's key: section, for knot.conf's include:);
#       an existing key is kept, so every container of a compose project agrees.
#   anything else: an authd subcommand (keygen, check, ctl, views ...).
# AUTHD_CONFIG names the config (default /etc/authd/authd.yaml); AUTHD_BIN the
# program (default authd; the tests run the script against `python -m authd`).
set -eu
CONFIG="${AUTHD_CONFIG:-/etc/authd/authd.yaml}"
AUTHD="${AUTHD_BIN:-authd}"

[ "$#" -gt 0 ] || set -- serve
case "$1" in
serve)
    shift
    # shellcheck disable=SC2086  # AUTHD may be a command with arguments
    $AUTHD serve -c "$CONFIG" --check-config
    # shellcheck disable=SC2086
    exec $AUTHD serve -c "$CONFIG" "$@"
    ;;
healthcheck)
    # shellcheck disable=SC2086
    exec $AUTHD ctl -c "$CONFIG" --timeout 5 status >/dev/null
    ;;
keygen-files)
    [ "$#" -eq 3 ] || { echo "usage: $0 keygen-files DIR NAME" >&2; exit 2; }
    dir=$2 name=$3
    if [ -s "$dir/$name.key" ] && [ -s "$dir/$name.knot.conf" ]; then
        echo "TSIG key $name: kept ($dir)"
        exit 0
    fi
    umask 077
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    $AUTHD keygen "$name" >"$dir/.keygen"
    # One key, printed in every form: take BIND's and Knot's sections.
    awk '/^# /{s=$2} s=="BIND" && !/^#/ && NF' "$dir/.keygen" >"$dir/$name.key"
    awk '/^# /{s=$2} s=="Knot" && !/^#/ && NF' "$dir/.keygen" >"$dir/$name.knot.conf"
    rm -f "$dir/.keygen"
    chmod 0644 "$dir/$name.key" "$dir/$name.knot.conf"  # read by other containers' users
    echo "TSIG key $name: written to $dir"
    ;;
*)
    # shellcheck disable=SC2086
    exec $AUTHD "$@"
    ;;
esac
