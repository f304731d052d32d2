#!/usr/bin/env bash
# Runs the end-to-end tests (the pages in a browser, GraphQL over HTTP
# conformance) against a running server.
#
# Usage: BASE_URL=http://127.0.0.1:8080 e2e/run.sh [test files...]
#
# Installs what is missing first: Debian's chromium when a browser test is
# among those run (playwright-core drives it; it cannot download a browser of
# its own) and the npm dependencies. With no arguments it runs every
# e2e/tests/*.test.mjs. Exits non-zero if any test fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -z "${BASE_URL:-}" ]]; then
	echo "e2e: BASE_URL is not set; start the server and run e.g." >&2
	echo "  BASE_URL=http://127.0.0.1:8080 $0" >&2
	exit 2
fi

if [[ $# -eq 0 ]]; then
	set -- "$here"/tests/*.test.mjs
fi

# Only tests that drive a browser need one.
if grep -lq launchBrowser "$@"; then
	chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
	if [[ ! -x "$chromium" ]]; then
		echo "e2e: $chromium is missing; installing Debian's chromium" >&2
		if [[ "$(id -u)" -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
		"${sudo[@]}" apt-get update -qq
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
		if [[ ! -x "$chromium" ]]; then
			echo "e2e: installing chromium did not provide $chromium" >&2
			exit 1
		fi
	fi
fi

if [[ ! -d "$here/node_modules/graphql-http" ]]; then
	echo "e2e: installing npm dependencies" >&2
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

export BASE_URL
exec node --test --test-concurrency=1 "$@"
