#!/usr/bin/env bash
# Installs the npm packages of tests/js (package-lock.json, exact versions) into
# tests/js/node_modules when missing or older than the lock file; sourced by integration tests
# that need them. One installer at a time (flock), as tests run in parallel.
# Usage: . tests/js/setup.sh   (then node "$HKIT_JS/<script>.mjs")
HKIT_JS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
command -v node >/dev/null && command -v npm >/dev/null ||
    hkit_fail "node and npm are needed (Debian: apt-get install nodejs npm)"
(
    flock -w 300 9 || exit 1
    if [ ! -f "$HKIT_JS/node_modules/.package-lock.json" ] ||
        [ "$HKIT_JS/package-lock.json" -nt "$HKIT_JS/node_modules/.package-lock.json" ]; then
        cd "$HKIT_JS" && npm ci --no-audit --no-fund --loglevel=error >&2
    fi
) 9>"$HKIT_JS/.install.lock" || hkit_fail "npm ci in tests/js failed"
export HKIT_JS
