# Shared by scripts/demo and scripts/test: install what is missing, configure and build.
# Sourced, not run. Honors BUILD_DIR (default: build) and JOBS (default: 2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-2}"

# Debian 12 packages: the toolchain and libraries every part needs, then LibTorch (executor), Qt6 (GUI)
# and the teaching data. OpenBLAS makes LibTorch's CPU matmuls 27x faster (libtorch-notes.md §0).
# python3-torch is the eager-PyTorch peer of the executor's benchmark (bench/pytorch_step.py).
# Real package names only (dpkg-query never finds a virtual one, which would re-run apt-get every
# time): qt6-svg-dev, not libqt6svg6-dev. Qt6Charts' CMake package needs Qt6OpenGL's, which is in
# libqt6opengl6-dev — a recommendation of qt6-charts-dev, not a dependency. clang-14 with
# libclang-rt-14-dev (the libFuzzer, ASan and UBSan runtimes: -fsanitize=fuzzer) builds build-fuzz.
PARAPLAN_PACKAGES=(
  build-essential cmake ninja-build lld pkg-config clang-14 libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libsqlite3-dev sqlite3 libeigen3-dev zlib1g-dev
  libtorch-dev libgloo-dev libopenblas0-pthread python3-torch
  qt6-base-dev qt6-charts-dev qt6-svg-dev libqt6opengl6-dev
  dataset-fashion-mnist fortunes
)

install_packages() {
  local missing=()
  for p in "${PARAPLAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "paraplan: installing ${#missing[@]} Debian package(s): ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "paraplan: need root or sudo to apt-get install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build_paraplan [CMAKE_ARGS...] [-- TARGET...]: configure, then build the targets (all when none).
build_paraplan() {
  local cmake_args=() targets=()
  while [ $# -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; targets=("$@"); break; fi
    cmake_args+=("$1"); shift
  done
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}"
  if [ ${#targets[@]} -eq 0 ]; then
    cmake --build "$BUILD_DIR" -j "$JOBS"
  else
    cmake --build "$BUILD_DIR" -j "$JOBS" --target "${targets[@]}"
  fi
}

# build_sanitized: the ASan + UBSan build in $FUZZ_DIR (default build-fuzz) of the planner, simulator,
# store and torch-free executor tests and the libFuzzer targets (tests/fuzz); clang, not the Release build.
FUZZ_DIR="${FUZZ_DIR:-$ROOT/build-fuzz}"
build_sanitized() {
  cmake -S "$ROOT" -B "$FUZZ_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" \
    -DCMAKE_CXX_COMPILER=clang++-14 -DPARAPLAN_FUZZ=ON -DPARAPLAN_FUZZ_SECONDS="${PARAPLAN_FUZZ_SECONDS:-60}" \
    -DPARAPLAN_WITH_EXECUTOR=OFF -DPARAPLAN_WITH_GUI=OFF -DPARAPLAN_BUILD_BENCH=OFF "$@"
  cmake --build "$FUZZ_DIR" -j "$JOBS" --target planner_tests sim_tests store_tests exec_core_tests \
    fuzz_plan_json fuzz_hf_config fuzz_validation_csv fuzz_safetensors fuzz_store
}
