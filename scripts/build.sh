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
# The browser UI that the gateway extension serves (ui/dist), with the release preset: built
# here so that `symphony up` builds nothing at run time; only when a source changed.
if [[ $preset == release && -f ui/package.json ]]; then
  changed=1
  if [[ -f ui/dist/index.html ]]; then
    changed=$(find ui -path ui/node_modules -prune -o -path ui/dist -prune -o -path ui/e2e -prune \
      -o -type f -newer ui/dist/index.html -print | head -1 | wc -l)
  fi
  if ((changed)); then
    echo "build: the browser UI (npm run build in ui/ -> ui/dist)"
    (cd ui && nice -n 5 npm run build --silent)
  fi
fi
