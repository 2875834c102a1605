#!/usr/bin/env bash
# Everything the tests need on a fresh Debian machine, then the checks and tests.
# Used verbatim by README.md and .ci/run.  Missing peers are an error, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# The peers the tests start (BIND, Knot, NSD, unbound), the clients (dig, kdig, delv),
# the signers (dnssec-signzone, ldns), dnsperf, promtool and Graphviz.
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
    python3 python3-venv python3-pip \
    bind9 bind9-utils bind9-dnsutils knot knot-dnsutils knot-dnssecutils nsd dnsperf iproute2 git \
    unbound unbound-anchor ldnsutils prometheus graphviz >/dev/null
# Debian starts the daemons it installs; the tests start their own on other ports.
for svc in named bind9 knot nsd unbound prometheus; do $SUDO service "$svc" stop >/dev/null 2>&1 || true; done

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'

for tool in dig kdig delv named knotd nsd dnsperf unbound dnssec-signzone dnssec-keygen ldns-signzone promtool dot \
    dnssec-verify dnssec-dsfromkey kzonecheck ldns-keygen ss taskset; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$tool" >/dev/null \
        || { echo "missing tool: $tool" >&2; exit 1; }
done

.venv/bin/ruff format --check authd tests bench harness
.venv/bin/ruff check authd tests bench harness
.venv/bin/mypy authd harness
# The property tests draw the same examples on every machine (tests/conftest.py's
# "ci" profile), so this script's verdict on a fresh clone is reproducible.
# HYPOTHESIS_PROFILE=dev or explore in the environment draws new ones.
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
PATH="$PWD/.venv/bin:$PATH:/usr/sbin" AUTHD_REQUIRE_PEERS=1 .venv/bin/python -m pytest -q
