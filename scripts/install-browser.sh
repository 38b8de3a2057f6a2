#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium, for the page's browser test
# (tests/integration/test_page_browser.py drives it with Playwright; never `playwright
# install`, which downloads a browser from the internet). Called by test.sh.
# Idempotent: does nothing when the browser is there. Needs root (or sudo) and the Debian
# package mirror the first time; non-interactive, quiet unless it fails.
set -euo pipefail

browser=/usr/bin/chromium
if [ -x "$browser" ]; then
    exit 0
fi

fail() {
    echo "install-browser.sh: $*" >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 ||
    fail "$browser is missing and there is no apt-get: install Chromium at $browser by hand"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
        fail "$browser is missing and installing it needs root: run this script as root"
    sudo="sudo -n"
fi

echo "installing Debian's chromium for the browser test (first run only)..." >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=120)
if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends chromium; } \
    >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    fail "apt-get could not install chromium (output above)"
fi
[ -x "$browser" ] || fail "apt-get installed chromium but $browser is not there"
