#!/bin/sh
# Set up evidock and run the whole flow on simulated recorders (embedded defaults:
# SQLite, a local folder as central storage). Extra arguments go to `evidock demo`.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup.sh
exec .venv/bin/evidock demo "$@"
