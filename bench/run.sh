#!/usr/bin/env bash
# Builds and runs every benchmark (bench/bench_*.cpp), each against its baseline in the
# same run. Results go to stdout; bench/BENCHMARKS.md records them with these commands.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
benches=$(ls bench/bench_*.cpp 2>/dev/null | xargs -n1 basename | sed 's/\.cpp$//')
for b in $benches; do
  cmake --build "$build" -j "$(nproc)" --target "$b"
done
for b in $benches; do
  echo "=== $b"
  "$build/$b"
done
