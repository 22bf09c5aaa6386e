#!/usr/bin/env bash
# Validates compose.yaml with Debian's docker-compose (v1 1.29) the way CI does: the default services
# and the `cluster` profile, without a .env file and with .env.example.
# Usage: scripts/check-compose.sh        (exit 0 = valid; about 2 s per docker-compose run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v docker-compose >/dev/null || { echo "check-compose: docker-compose not found (apt-get install docker-compose)" >&2; exit 2; }

# The result must not depend on the caller's shell or a local .env: unset every variable compose.yaml
# reads (interpolated or passed through) and point --env-file at an empty file (or at .env.example).
clean=(env)
for v in $(grep -oE '\b[A-Z][A-Z0-9_]{2,}\b' compose.yaml | sort -u) COMPOSE_PROFILES COMPOSE_FILE COMPOSE_PROJECT_NAME; do
  clean+=(-u "$v")
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/empty.env"
fail() { echo "check-compose: FAIL $*" >&2; exit 1; }
ok() { echo "check-compose: ok   $*"; }

"${clean[@]}" docker-compose -f compose.yaml --env-file "$tmp/empty.env" config -q || fail "default services, no .env"
ok "default services, no .env"
"${clean[@]}" COMPOSE_PROFILES=cluster docker-compose -f compose.yaml --env-file "$tmp/empty.env" config >"$tmp/cluster.yaml" \
  || fail "COMPOSE_PROFILES=cluster, no .env"
ok "COMPOSE_PROFILES=cluster, no .env"
"${clean[@]}" docker-compose -f compose.yaml --env-file .env.example config -q || fail "default services, .env.example"
ok "default services, .env.example"
"${clean[@]}" docker-compose -f compose.yaml --env-file .env.example --profile cluster config -q || fail "--profile cluster, .env.example"
ok "--profile cluster, .env.example"

# Shape of the normalised file: db + pulse always; nginx + pulse-1..3 only in the cluster profile;
# every Pulse waits for a healthy db; nginx publishes 8000 and waits for three healthy replicas.
python3 - "$tmp/cluster.yaml" <<'PY' || fail "structure of the normalised compose file"
import sys, yaml
s = yaml.safe_load(open(sys.argv[1]))['services']
prof = {n: tuple(v.get('profiles') or ()) for n, v in s.items()}
want = {'db': (), 'pulse': (), 'nginx': ('cluster',), 'pulse-1': ('cluster',), 'pulse-2': ('cluster',), 'pulse-3': ('cluster',)}
assert prof == want, f'profiles {prof}, expected {want}'
for n in ('pulse', 'pulse-1', 'pulse-2', 'pulse-3'):
    assert s[n]['depends_on']['db']['condition'] == 'service_healthy', n
    assert s[n]['restart'] in ('unless-stopped', 'on-failure', 'always'), n
    assert s[n]['environment']['DATABASE_URL'].startswith('postgres://'), n
    assert (s[n]['environment'].get('TRUST_PROXY') == '1') == (n != 'pulse'), f'{n}: TRUST_PROXY'
assert [p['target'] for p in s['pulse']['ports']] == [8000]
assert [p['target'] for p in s['nginx']['ports']] == [8000]
assert all(c['condition'] == 'service_healthy' for c in s['nginx']['depends_on'].values()), 'nginx depends_on'
assert s['db']['healthcheck']['test'][1] == 'pg_isready', 'db healthcheck'
print('check-compose: ok   structure: ' + ', '.join(f"{n}{'[' + ','.join(p) + ']' if p else ''}" for n, p in prof.items()))
PY
