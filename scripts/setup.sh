#!/usr/bin/env bash
# Installs what Symphony needs from Debian 12's packages, and nothing that is already there.
# Idempotent: a second run makes no change and does not touch the network.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential g++ cmake ninja-build ccache pkg-config
  libexpected-dev libboost-dev libgtest-dev libgmock-dev libbenchmark-dev
  # control plane: ZeroMQ (cppzmq), simdjson, xxHash
  libzmq3-dev cppzmq-dev libsimdjson-dev libxxhash-dev
  # iceoryx transport: iceoryx 2.0.3's headers and libraries, and iox-roudi (package iceoryx),
  # which the engine's keeper starts (we do not embed RouDi, so libacl1-dev is not needed)
  iceoryx libiceoryx-posh-dev libiceoryx-hoofs-dev
  # perf report (scripts/perf-report.py, run by Debian's python3): its SVG plots
  python3 gnuplot-nox
  # the extension SDK's logging and the symphony command: spdlog, CLI11, toml++
  libspdlog-dev libcli11-dev libtomlplusplus-dev
  # the UI: nlohmann-json (the UI tree's values), Debian's chromium for the end-to-end tests
  nlohmann-json3-dev chromium
  # pyconductor: the pybind11 module for Debian's python3, its tests (pytest, asyncio) and numpy
  pybind11-dev python3-pybind11 python3-dev python3-pytest python3-pytest-asyncio python3-numpy
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# The browser UI's packages (ui/package-lock.json) come from the npm registry, with the
# machine's Node.js and npm; `npm ci` runs again only when the lockfile changed.
install_ui_packages() {
  command -v npm >/dev/null || {
    echo "setup: the browser UI needs Node.js >= 20 and npm (not found on PATH)" >&2; exit 1; }
  local stamp=ui/node_modules/.package-lock.json
  if [[ -f $stamp && ! ui/package-lock.json -nt $stamp ]]; then
    echo "setup: ui/node_modules up to date"
    return
  fi
  echo "setup: npm ci in ui/"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
}

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages already installed"
  if [[ -f ui/package-lock.json ]]; then install_ui_packages; fi
  exit 0
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
echo "setup: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [[ -f ui/package-lock.json ]]; then install_ui_packages; fi
