#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test in the release and asan presets.
# Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
status=0
for preset in release asan; do
  echo "== $preset: build"
  scripts/build.sh "$preset"
  echo "== $preset: test"
  ctest --preset "$preset" "$@" || status=1
done
exit $status
