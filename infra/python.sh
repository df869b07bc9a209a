#!/usr/bin/env bash
# Print the path of a Python 3.13 interpreter, installing one from Debian's packages if none is found.
# werkbrug needs 3.13 (the embedded database, mongoeco, requires it).
set -euo pipefail
for candidate in "${PYTHON:-}" python3.13 /usr/bin/python3.13 /usr/local/bin/python3.13 \
                 "$HOME"/.pyenv/versions/3.13*/bin/python3.13 /root/.pyenv/versions/3.13*/bin/python3.13; do
  [ -n "$candidate" ] || continue
  if path=$(command -v "$candidate" 2>/dev/null) && "$path" -c 'import sys, venv; assert sys.version_info[:2] >= (3, 13)' 2>/dev/null; then
    echo "$path"; exit 0
  fi
done
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  if apt-get install -y -qq python3.13 python3.13-venv >&2; then
    command -v python3.13; exit 0
  fi
fi
echo "python.sh: Python 3.13 not found; install python3.13 and python3.13-venv (or set PYTHON=...)" >&2
exit 1
