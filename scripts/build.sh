#!/usr/bin/env bash
# Configures and builds one CMake preset: scripts/build.sh release|debug|asan|tsan
set -euo pipefail
preset=${1:?usage: scripts/build.sh PRESET}
cd "$(dirname "$0")/.."
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
# Two cores: one compile job per core keeps the machine responsive and the memory bounded.
jobs=${SYMPHONY_BUILD_JOBS:-$(nproc)}
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"
