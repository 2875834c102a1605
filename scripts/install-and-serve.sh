#!/usr/bin/env bash
# Install authd into .venv on a fresh Debian machine and serve the bundled
# example zones (zones/) on 127.0.0.1 and ::1, port 5300.  Extra arguments go
# to `authd serve` (e.g. -c etc/authd.yaml --query-log).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q python3 python3-venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
exec .venv/bin/authd serve "$@"
