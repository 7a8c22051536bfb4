#!/usr/bin/env bash
# Builds spinlm on the GPU machine against the CUDA libtorch of its PyTorch install
# (docs/gpu.md). That machine has python3 + torch, CMake, ninja and nvcc but reaches no
# package registry, so spinlm's other Debian dependencies are fetched beforehand, here:
#
#   scripts/device-build.sh --fetch          # here: apt-get download the .debs into .cache/device-debs
#   scripts/device-build.sh --check-prefix   # here: unpack them, configure a CPU build against
#                                            #   that prefix + Debian's libtorch, and check that every
#                                            #   dependency but torch was found inside the prefix
#   scripts/device-build.sh [--tests]        # there: unpack into .cache/device-prefix (dpkg -x),
#                                            #   configure build-cuda against torch.utils.cmake_prefix_path,
#                                            #   build spinlm (and the tests with --tests)
#
# .cache/ is git-ignored; pass .cache/device-debs in the device tool's `carry` list.
# Environment: BUILD_DIR (default build-cuda), JOBS (default: all cores), PYTHON (python3).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
debs="$root/.cache/device-debs"
prefix="$root/.cache/device-prefix"
gloo_prefix="$root/.cache/device-gloo"  # gloo headers, used only when torch ships none
build="${BUILD_DIR:-$root/build-cuda}"
python="${PYTHON:-python3}"
multiarch=x86_64-linux-gnu

# Headers, CMake configs, pkg-config files and shared libraries of everything
# CMakeLists.txt finds besides Torch (runtime libraries listed explicitly: dpkg -x does not
# follow dependencies), plus pkgconf for FindPkgConfig and googletest's sources.
packages=(
  nlohmann-json3-dev
  libyaml-cpp-dev libyaml-cpp0.7
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3
  libutf8proc-dev libutf8proc2
  libcli11-dev
  libgtest-dev libgmock-dev googletest
  pkgconf pkgconf-bin libpkgconf3
)
gloo_packages=(libgloo-dev)

log() { echo "device-build: $*" >&2; }
die() { log "error: $*"; exit 1; }

fetch() {
  command -v apt-get >/dev/null || die "--fetch needs apt-get (run it on the Debian machine)"
  mkdir -p "$debs/gloo"
  (cd "$debs" && apt-get download "${packages[@]}")
  (cd "$debs/gloo" && apt-get download "${gloo_packages[@]}")
  log "$(ls "$debs"/*.deb "$debs"/gloo/*.deb | wc -l) packages in $debs ($(du -sh "$debs" | cut -f1))"
}

unpack() {
  ls "$debs"/*.deb >/dev/null 2>&1 || die "no .deb files in $debs: run scripts/device-build.sh --fetch on the Debian machine first and carry .cache/device-debs"
  command -v dpkg >/dev/null || die "dpkg is missing: cannot unpack $debs"
  rm -rf "$prefix" "$gloo_prefix"
  mkdir -p "$prefix" "$gloo_prefix"
  for deb in "$debs"/*.deb; do dpkg -x "$deb" "$prefix"; done
  for deb in "$debs"/gloo/*.deb; do [ -e "$deb" ] && dpkg -x "$deb" "$gloo_prefix"; done
  log "unpacked $(ls "$debs"/*.deb | wc -l) packages into $prefix"
}

# pkg-config that looks only inside the prefix and prefixes the paths it prints with it.
pkg_config_setup() {
  local libdir="$prefix/usr/lib/$multiarch"
  export PKG_CONFIG_LIBDIR="$libdir/pkgconfig:$prefix/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$prefix"
  # Keep -I/usr/include style flags: after the sysroot they point into the prefix.
  export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
  export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"  # libpkgconf3, and spinlm at run time
  pkg_config="$prefix/usr/bin/pkgconf"
  [ -x "$pkg_config" ] || die "$pkg_config missing after unpacking"
  "$pkg_config" --exists libpcre2-8 || die "pkgconf finds no libpcre2-8 in $PKG_CONFIG_LIBDIR"
}

# configure BUILD_DIR TORCH_CMAKE_PREFIX [extra cmake args...]
configure() {
  local dir=$1 torch_prefix=$2
  shift 2
  local generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S "$root" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr" \
    -DPKG_CONFIG_EXECUTABLE="$pkg_config" \
    "$@"
}

# Every non-torch dependency CMake found must lie inside the prefix.
check_cache_paths() {
  local cache="$1/CMakeCache.txt" bad=0
  for var in nlohmann_json_DIR yaml-cpp_DIR GTest_DIR CLI11_INCLUDE_DIR UTF8PROC_LIBRARY UTF8PROC_INCLUDE_DIR \
             PKG_CONFIG_EXECUTABLE pkgcfg_lib_PCRE2_pcre2-8; do
    local value
    value=$(grep -E "^${var}:" "$cache" | head -1 | cut -d= -f2-)
    # Without tests (SPINLM_BUILD_TESTS=OFF) gtest is not looked for.
    [ "$var" = GTest_DIR ] && grep -q "^SPINLM_BUILD_TESTS:BOOL=OFF" "$cache" && continue
    if [[ "$value" != "$prefix"/* ]]; then
      log "  $var = ${value:-<unset>} (not inside the prefix)"
      bad=1
    else
      log "  $var = $value"
    fi
  done
  return $bad
}

check_prefix() {
  unpack
  pkg_config_setup
  local dir="${BUILD_DIR:-$root/build-device-check}"
  rm -rf "$dir"
  # Debian's libtorch (CPU, 1.13) stands in for the GPU machine's torch.
  local torch_dir
  torch_dir=$(dirname "$(find /usr/lib /usr/share -name TorchConfig.cmake -print -quit 2>/dev/null)")
  [ -n "$torch_dir" ] && [ "$torch_dir" != . ] || die "no Debian libtorch (TorchConfig.cmake) to check against"
  # This machine has every package installed in /usr too: CMake searches CMAKE_PREFIX_PATH
  # (the prefix) before the system folders, and check_cache_paths proves where each came from.
  configure "$dir" "$torch_dir" -DTorch_DIR="$torch_dir"
  log "dependencies found by CMake:"
  check_cache_paths "$dir" || die "some dependency came from outside $prefix: the fetched packages are incomplete"
  log "the prefix has every dependency but torch; configured $dir"
}

device_build() {
  local with_tests=$1
  command -v cmake >/dev/null || die "cmake is missing"
  local torch_prefix abi version cuda
  torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)') ||
    die "$python cannot import torch (set PYTHON to the interpreter of the PyTorch install)"
  read -r version cuda abi < <("$python" -c 'import torch; print(torch.__version__, torch.version.cuda, int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  log "torch $version (CUDA $cuda, C++11 ABI $abi) at $torch_prefix"
  [ "$cuda" != None ] || log "warning: this torch has no CUDA; the build will be CPU-only"
  if [ "$abi" = 0 ]; then
    # Debian's C++ libraries (yaml-cpp, gtest) use the C++11 std::string ABI; a torch built
    # with the old ABI cannot link against them.
    die "torch $version uses the pre-C++11 ABI (_GLIBCXX_USE_CXX11_ABI=0); Debian's yaml-cpp and gtest need the C++11 ABI. Use a torch >= 2.7 (or a cxx11-abi build)."
  fi
  unpack
  pkg_config_setup
  local extra=() torch_include
  torch_include=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))')
  if [ ! -e "$torch_include/gloo/algorithm.h" ] && [ -d "$gloo_prefix/usr/include/gloo" ]; then
    # c10d's ProcessGroupGloo.hpp includes gloo headers that some wheels do not ship.
    log "torch ships no gloo headers; using Debian's from $gloo_prefix"
    extra+=(-DCMAKE_CXX_FLAGS="-isystem $gloo_prefix/usr/include")
  fi
  [ "$with_tests" = 1 ] || extra+=(-DSPINLM_BUILD_TESTS=OFF)
  configure "$build" "$torch_prefix" "${extra[@]}"
  check_cache_paths "$build" || log "warning: a dependency was found outside the prefix (see above)"
  local targets=(spinlm)
  [ "$with_tests" = 1 ] && targets=(all)
  local output="$build/build-output.log"
  if ! cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${targets[@]}" 2>&1 | tee "$output"; then
    # CUDA graphs (src/generate/cuda_graph.cpp) are the one piece compiled only against a CUDA
    # libtorch, never on the CPU machines: if that file is what broke, build without it
    # (decoding then runs its device loop without graphs) rather than lose the GPU session.
    grep -q "cuda_graph.cpp" "$output" || die "the build failed (see above)"
    log "warning: src/generate/cuda_graph.cpp did not compile against this libtorch; building without CUDA graphs"
    configure "$build" "$torch_prefix" "${extra[@]}" -DSPINLM_CUDA_GRAPHS=OFF
    cmake --build "$build" -j "${JOBS:-$(nproc)}" --target "${targets[@]}" || die "the build failed (see above)"
  fi
  # Run-time search path for the prefix's shared libraries (CMake's build RPATH covers them
  # too; this file is for anything started by hand).
  echo "export LD_LIBRARY_PATH=$prefix/usr/lib/$multiarch:$torch_prefix/../../lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" > "$build/env.sh"
  "$build/spinlm" version >&2
  log "built $build/spinlm"
}

case "${1:-}" in
  --fetch) fetch ;;
  --check-prefix) check_prefix ;;
  --tests) device_build 1 ;;
  "") device_build 0 ;;
  -h|--help) sed -n '2,16p' "$0" ;;
  *) die "unknown option $1 (see --help)" ;;
esac
