#!/bin/sh
# Installs this build into a scratch prefix, then configures, builds and runs an outside project
# against it with find_package(symphony CONFIG). Usage: install_consumer_test.sh BUILD_DIR SRC_DIR
set -eu
build_dir=$1
source_dir=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
cmake -S "$source_dir/tests/install/consumer" -B "$scratch/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/build" >/dev/null
"$scratch/build/consumer"
