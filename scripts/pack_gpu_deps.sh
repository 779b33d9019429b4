#!/usr/bin/env bash
# Packs what rlxf's build needs from this machine's Debian packages into one folder that
# travels with the working tree to a GPU machine which has nvcc, CMake and a compiler but no
# Debian packages (../shared/GPU.md): the header-only libraries with their CMake package files
# (Eigen, xtensor, xtl, nlohmann_json, doctest), Google Benchmark (headers, shared library,
# CMake files), Boost.Context (the library, its CMake files and only the Boost headers that
# rlxf's emulator includes, found by the compiler's own dependency scan) and the cuDNN headers
# of the CUDA toolkit here (for a GPU machine whose cuDNN comes from a Python wheel without
# them). The folder mirrors /usr (include/, lib/, share/), so the packages' CMake files, which
# locate everything relative to themselves, work unchanged with -DCMAKE_PREFIX_PATH=<folder>.
#
# Usage: scripts/pack_gpu_deps.sh [DIR]     (default: deps-gpu in the repository, git-ignored)
# Then scripts/gpu_check.sh --deps DIR on the GPU machine. Needs the packages of
# scripts/install_deps.sh; prints the folder's size (it must stay well under 64 MiB).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/deps-gpu}"
multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
lib="/usr/lib/$multiarch"

fail() { echo "pack_gpu_deps.sh: $*" >&2; exit 1; }
for f in /usr/include/eigen3 /usr/include/xtensor /usr/include/xtl /usr/include/nlohmann /usr/include/doctest \
         /usr/include/benchmark "$lib/libboost_context.so" "$lib/libbenchmark.so"; do
  [[ -e "$f" ]] || fail "$f is missing: run scripts/install_deps.sh first"
done

rm -rf "$out"
mkdir -p "$out/include" "$out/share/cmake" "$out/lib/cmake" "$out/lib/$multiarch/cmake"

# Header-only libraries and Google Benchmark's headers, whole.
cp -a /usr/include/eigen3 /usr/include/xtensor /usr/include/xtl /usr/include/nlohmann /usr/include/doctest \
      /usr/include/benchmark "$out/include/"
# Their CMake package files, at the same places relative to the prefix.
mkdir -p "$out/share/eigen3"
cp -a /usr/share/eigen3/cmake "$out/share/eigen3/"
cp -a /usr/share/cmake/xtl /usr/share/cmake/nlohmann_json "$out/share/cmake/"
cp -a /usr/lib/cmake/doctest "$out/lib/cmake/"
cp -a "$lib/cmake/xtensor" "$lib/cmake/benchmark" "$out/lib/$multiarch/cmake/"

# Shared libraries with their version links.
cp -a "$lib"/libbenchmark.so* "$lib"/libbenchmark_main.a "$lib"/libboost_context.so* "$out/lib/$multiarch/"

# Boost: the CMake files of Boost, boost_headers and boost_context, and the headers the
# emulator's two Boost includes pull in (the preprocessor's own list, so nothing is missed).
boost_version="$(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' /usr/include/boost/version.hpp | tr _ .)"
for d in "$lib"/cmake/Boost-"$boost_version"* "$lib"/cmake/boost_headers-"$boost_version"* \
         "$lib"/cmake/boost_context-"$boost_version"* "$lib"/cmake/BoostDetectToolset-"$boost_version"*; do
  [[ -e "$d" ]] && cp -a "$d" "$out/lib/$multiarch/cmake/"
done
scan="$(mktemp --suffix=.cpp)"
trap 'rm -f "$scan"' EXIT
grep -rhoE '#include <boost/[^>]+>' "$root/include" | sort -u > "$scan"
echo '#include <boost/version.hpp>' >> "$scan"
g++ -std=c++20 -M -x c++ "$scan" | tr ' \\' '\n\n' | grep '^/usr/include/boost/' | sort -u | while read -r header; do
  rel="${header#/usr/include/}"
  mkdir -p "$out/include/$(dirname "$rel")"
  cp -a "$header" "$out/include/$rel"
done

# cuDNN's headers from the CUDA toolkit here (scripts/gpu_check.sh uses them only when the
# GPU machine's cuDNN has none).
cudnn_h="$(ls /usr/local/cuda/include/cudnn.h /usr/local/cuda-*/include/cudnn.h /usr/include/cudnn.h 2>/dev/null | head -n 1 || true)"
if [[ -n "$cudnn_h" ]]; then
  mkdir -p "$out/cudnn/include"
  cp -a "$(dirname "$cudnn_h")"/cudnn*.h "$out/cudnn/include/"
fi

cat > "$out/README.md" <<EOF
Packed by scripts/pack_gpu_deps.sh on $(hostname) ($(date -u +%Y-%m-%dT%H:%MZ)) from Debian packages:
$(dpkg-query -W -f='${Package} ${Version}\n' libeigen3-dev libxtensor-dev xtl-dev nlohmann-json3-dev doctest-dev \
    libbenchmark-dev libboost-context-dev 2>/dev/null)
Use: cmake -DCMAKE_PREFIX_PATH=$out ...  (scripts/gpu_check.sh does it)
EOF
echo "pack_gpu_deps.sh: $out, $(du -sh "$out" | cut -f1)"
