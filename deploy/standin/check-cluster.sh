#!/usr/bin/env bash
# VERIFICATION AID (podman machine without Docker): runs the compose `cluster` profile with the shared
# check-compose.sh, which never starts profiled services. It derives a file from
# `COMPOSE_PROFILES=cluster docker-compose config` without `profiles:` and without the single `pulse`
# service, writes it into DIR as .compose.cluster-check.yaml (removed afterwards) and probes /healthz
# through nginx on ${CLUSTER_PORT:-8080}.
# Usage: deploy/standin/check-cluster.sh [DIR=repository root]   (extra env is passed on, e.g. KEEP=1)
set -euo pipefail
DIR=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf}
F=.compose.cluster-check.yaml
cd "$DIR"
trap 'rm -f "$DIR/$F"' EXIT
COMPOSE_PROFILES=cluster docker-compose -f compose.yaml config | python3 -c '
import sys, yaml
c = yaml.safe_load(sys.stdin)
del c["services"]["pulse"]
for s in c["services"].values(): s.pop("profiles", None)
yaml.safe_dump(c, sys.stdout, sort_keys=False)' >"$F"
COMPOSE_FILE=$F APP_SERVICE=nginx /work/shared/tools/containers/check-compose.sh "$DIR"
