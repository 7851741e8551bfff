#!/usr/bin/env bash
# The Python Azure IoT device SDK that the Python module tests run (SPEC §7: the official SDKs as
# module clients): `azure-iot-device` 2.14.x from PyPI, in a venv cached under
# ${KEDGE_CACHE_DIR:-~/.cache/kedge}. Prints the venv's python. Does nothing (and prints at once)
# when the venv is complete; a lock keeps concurrent callers from building it twice.
# Needs python3 (3.8 or later) with the venv module (Debian: python3-venv).
set -euo pipefail

SPEC='azure-iot-device==2.14.*'
CACHE="${KEDGE_CACHE_DIR:-$HOME/.cache/kedge}"
DIR="$CACHE/python-azure-iot-device-2.14"
PY="$DIR/bin/python"

if [ -f "$DIR/.complete" ]; then
  echo "$PY"
  exit 0
fi
command -v python3 >/dev/null || { echo "python-sdk: python3 is needed for the Python SDK tests" >&2; exit 1; }
mkdir -p "$CACHE"
exec 9>"$DIR.lock"
flock 9
if [ ! -f "$DIR/.complete" ]; then
  rm -rf "$DIR"
  python3 -m venv "$DIR" >&2 ||
    { echo "python-sdk: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$PY" -m pip install --quiet --disable-pip-version-check "$SPEC" >&2 ||
    { echo "python-sdk: pip install $SPEC failed" >&2; exit 1; }
  "$PY" -c 'import azure.iot.device' >&2
  touch "$DIR/.complete"
fi
echo "$PY"
