#!/usr/bin/env bash
# Set up and run the test suite (the README's test command). Installs the real validators where it can.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null || ! command -v nginx >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-alertmanager nginx-light >/dev/null
  fi
else
  echo "note: not root or no apt-get: validator tests need promtool, amtool and nginx on PATH, or they skip" >&2
fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m pytest "$@"
