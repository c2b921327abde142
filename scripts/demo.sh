#!/usr/bin/env bash
# The main job: installs what is missing, builds the release preset, and runs the demo.
# Arguments are passed to the demo (e.g. --duration 10); Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/release/perf/symphony-demo "$@"
