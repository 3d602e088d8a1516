#!/usr/bin/env bash
# Set up and run the test suite: the README's test command, and what CI runs.
# Installs the real validators (promtool, amtool, nginx) with apt-get when run as root on Debian/Ubuntu,
# and the package with its test extras into .venv (Debian's system Python refuses pip installs, PEP 668).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  packages=()
  command -v promtool >/dev/null || packages+=(prometheus)
  command -v amtool >/dev/null || packages+=(prometheus-alertmanager)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
  "$PYTHON" -c "import ensurepip" 2>/dev/null || packages+=(python3-venv)
  if [ "${#packages[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  fi
else
  echo "note: not root or no apt-get: validator tests need promtool, amtool and nginx on PATH, or they skip" >&2
fi
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  PYTHON=.venv/bin/python
fi
"$PYTHON" -m pip install -q --disable-pip-version-check -e '.[test]'
if [ "${INFRAGEN_LINT:-}" = 1 ]; then  # CI: lint and types before the tests, both at zero findings
  "$PYTHON" -m ruff check infragen tests benchmarks scripts
  "$PYTHON" -m mypy
fi
"$PYTHON" -m pytest "$@"
