#!/usr/bin/env bash
# Installs the Debian packages rlxf needs to build, test and benchmark.
# Safe to run any number of times: packages already present are left as they are.
set -euo pipefail

packages=(
  build-essential cmake
  libeigen3-dev      # CPU GEMM and linear algebra
  xtensor-dev        # host N-d arrays (pulls xtl-dev)
  nlohmann-json3-dev # JSON: safetensors headers, configs
  doctest-dev        # unit tests
  libbenchmark-dev   # Google Benchmark
  libomp-dev         # OpenMP runtime for clang builds (g++ ships libgomp)
  clang libclang-rt-14-dev  # the libFuzzer targets under tests/fuzz (clang 14 on Debian 12)
  libboost-context-dev      # fibers for the CUDA emulator (tests run GPU kernels on the CPU)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
