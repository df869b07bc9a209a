#!/usr/bin/env bash
# Make sure a headless Chromium is on this machine: the letters to the person are printed to PDF and PNG
# with it (cli/render/letters/pdf.py). Installed from Debian's packages when absent (needs root); idempotent.
# Prints the path of the browser.
set -euo pipefail

find_browser() {
  for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  done
  return 1
}

if path=$(find_browser); then
  echo "$path"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed; install the Debian package chromium (as root) or set WERKBRUG_CHROMIUM" >&2
  exit 1
fi
echo "chromium: installing chromium and fonts from Debian packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation2 >/dev/null
find_browser
