#!/usr/bin/env bash
# The main job: installs what is missing, builds the release preset, and runs a host with the
# sample extensions (`symphony up` on the generated demo config: bus "demo"). Arguments go to
# `symphony up` (e.g. --duration 10); Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/release/engine/cli/symphony up \
  --config build/release/ext_sdk/extensions/symphony-demo.toml "$@"
