#!/usr/bin/env bash
# The Debian packages some tests drive for real, installed when missing. Called by test.sh.
# - chromium at /usr/bin/chromium, for the page's browser test
#   (tests/integration/test_page_browser.py drives it with Playwright; never `playwright
#   install`, which downloads a browser from the internet);
# - postgresql (initdb, pg_ctl), for the risk-list store on PostgreSQL
#   (tests/serving/test_store_postgres.py starts a throwaway server on 127.0.0.1).
# Idempotent: does nothing when both are there. Needs root (or sudo) and the Debian
# package mirror the first time; non-interactive, quiet unless it fails.
set -euo pipefail

browser=/usr/bin/chromium
packages=()
[ -x "$browser" ] || packages+=(chromium)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    packages+=(postgresql)
fi
if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi

fail() {
    echo "install-test-tools.sh: $*" >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 ||
    fail "missing ${packages[*]} and there is no apt-get: install them by hand"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
        fail "missing ${packages[*]}; installing needs root: run this script as root"
    sudo="sudo -n"
fi

echo "installing Debian's ${packages[*]} for the tests (first run only)..." >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=120)
if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "${packages[@]}"; } \
    >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    fail "apt-get could not install ${packages[*]} (output above)"
fi
[ -x "$browser" ] || fail "apt-get ran but $browser is not there"
