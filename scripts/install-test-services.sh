#!/usr/bin/env bash
# Installs the real components some tests start themselves (headless Chromium for the browser
# checks of the reports, driven over its DevTools pipe; a PostgreSQL server for the OMOP importer), when they
# are missing. The tests start each service in a temporary folder and stop it afterwards; this
# script only installs: it never starts a service, and it keeps Debian's packages from
# starting one or creating a default cluster.
#
# As root (CI) it installs with apt-get. Without root it says what to run and exits 0: the tests
# that need a missing component are then skipped with that reason, except under CI=true, where
# they fail.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: missing ${need[*]}; the tests that need them are skipped (they fail under CI=true)." >&2
    echo "      install them with: sudo apt-get install -y ${need[*]}" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# no service started by the install, no default cluster created
policy=/usr/sbin/policy-rc.d
restore_policy=false
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && restore_policy=true
fi
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/ketamine-outcomes.conf

echo "installing ${need[*]} (apt-get)" >&2
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null  # with recommends: fonts-liberation for Chromium
$restore_policy && rm -f "$policy"
exit 0
