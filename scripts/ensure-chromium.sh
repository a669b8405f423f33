#!/usr/bin/env bash
# Make a headless Chromium available for the QA report test (Debian package `chromium`).
# Prints the path of the browser on stdout and exits 0; exits 1 when it is missing and cannot be installed
# (not root, no apt-get, or no package source).  Safe to call repeatedly.
set -u
find_browser() {
    command -v chromium || command -v chromium-browser || command -v google-chrome || true
}
browser=$(find_browser)
if [ -z "$browser" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "ensure-chromium: chromium is not installed and cannot be installed here (need root + apt-get)" >&2
        exit 1
    fi
    # one installer at a time (parallel test sessions may call this together)
    exec 9>/tmp/ensure-chromium.lock
    flock 9
    browser=$(find_browser)
    if [ -z "$browser" ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q --no-install-recommends chromium >&2 \
            || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends chromium >&2; } \
            || { echo "ensure-chromium: apt-get install chromium failed" >&2; exit 1; }
        browser=$(find_browser)
    fi
fi
[ -n "$browser" ] || { echo "ensure-chromium: chromium not found after installation" >&2; exit 1; }
echo "$browser"
