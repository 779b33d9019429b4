#!/usr/bin/env bash
# The GPU check: on a machine with a CUDA GPU, nvcc, CMake and a C++ compiler but no Debian
# packages (../shared/GPU.md), builds rlxf against the folder scripts/pack_gpu_deps.sh packed
# here, runs every test (the GPU tests then run instead of skipping), the GPU kernel
# benchmarks against cuBLAS / cuDNN (scripts/run_gpu_benchmarks.sh) and the training-step
# benchmarks (SFT and PPO steps on the GPU, the SFT step on the CPU), runs a small main job
# with --device cuda, and writes a Markdown summary. Meant to finish within 8 minutes on 16
# cores.
#
# Usage: scripts/gpu_check.sh [options]
#   --deps DIR        the packed dependencies (default: deps-gpu in the repository)
#   --out DIR         results (default: $OUT when set, else <build dir>/gpu-check)
#   --build-dir DIR   build directory (default: build-gpu in the repository)
#   --archs LIST      CMAKE_CUDA_ARCHITECTURES (default 90: the H200 of GPU.md)
#   --jobs N          parallel build and test jobs (default: nproc)
# Writes to the results folder: summary.md, and the logs configure.log, build.log, ctest.log,
# bench/ (the kernel benchmarks' JSON, tables and summary.md), train_step_gpu.txt, train_step.txt,
# main_job/ (its config, log and run folder).
#
# Exit status: 0 when everything ran and passed, 1 when a step failed (the summary says
# which; later steps still run where they can), 2 when there is no usable GPU.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$root/deps-gpu"
build_dir="$root/build-gpu"
out="${OUT:-}"
archs="90"
jobs="$(nproc 2>/dev/null || echo 2)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --deps) deps="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --archs) archs="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
done
[[ -n "$out" ]] || out="$build_dir/gpu-check"
mkdir -p "$out"
deps="$(cd "$deps" 2>/dev/null && pwd)" || { echo "gpu_check.sh: no dependency folder (run scripts/pack_gpu_deps.sh where the Debian packages are, and bring its folder)" >&2; exit 1; }

started=$(date +%s)
status=0
declare -a rows=()  # "step|result|seconds"
step() {  # step NAME LOG COMMAND...: runs and records it
  local name="$1" log="$2"; shift 2
  local t0=$(date +%s)
  echo "== $name (log: $log)"
  "$@" > "$log" 2>&1
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [[ $rc -eq 0 ]]; then rows+=("$name|ok|$dt"); else rows+=("$name|FAILED (exit status $rc)|$dt"); status=1; fi
  tail -n 3 "$log"
  return $rc
}

# ---- the machine ----
gpu_info="$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1)"
if ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check.sh: no usable GPU ($gpu_info)" >&2
  exit 2
fi
nvcc_version="$(nvcc --version 2>&1 | tail -n 1)"
cxx_version="$(${CXX:-c++} --version 2>&1 | head -n 1)"
echo "== GPU: $gpu_info; $nvcc_version; $cxx_version; $(nproc) cores"

# ---- cuDNN: the toolkit's, else a Python wheel's (nvidia-cudnn), with the packed headers ----
cmake_args=()
if ! ls "$(dirname "$(command -v nvcc)")"/../include/cudnn.h >/dev/null 2>&1 && [[ ! -e /usr/include/cudnn.h ]]; then
  wheel="$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)"
  if [[ -n "$wheel" ]]; then
    lib="$(ls "$wheel"/lib/libcudnn.so* 2>/dev/null | head -n 1)"
    inc="$wheel/include"; [[ -e "$inc/cudnn.h" ]] || inc="$deps/cudnn/include"
    cmake_args+=("-DRLXF_CUDNN_LIBRARY=$lib" "-DRLXF_CUDNN_INCLUDE_DIR=$inc")
    export LD_LIBRARY_PATH="$wheel/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "== cuDNN from the Python wheel: $lib, headers $inc"
  fi
fi
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)

# ---- configure, build, test ----
step "configure" "$out/configure.log" cmake -S "$root" -B "$build_dir" ${generator[@]+"${generator[@]}"} \
  -DCMAKE_BUILD_TYPE=Release -DRLXF_ENABLE_CUDA=ON -DRLXF_BUILD_TESTS=ON -DRLXF_BUILD_EXAMPLES=ON \
  -DRLXF_BUILD_BENCHMARKS=ON "-DCMAKE_CUDA_ARCHITECTURES=$archs" "-DCMAKE_PREFIX_PATH=$deps" \
  ${cmake_args[@]+"${cmake_args[@]}"}
built=1
step "build" "$out/build.log" cmake --build "$build_dir" -j "$jobs" || built=0
tests_line="not run"
if [[ $built -eq 1 ]]; then
  step "ctest" "$out/ctest.log" ctest --test-dir "$build_dir" -j "$jobs" --timeout 300 --output-on-failure
  tests_line="$(grep -E '^[0-9]+% tests passed' "$out/ctest.log" | tail -n 1)"
  failed_list="$(sed -n '/The following tests FAILED:/,$p' "$out/ctest.log" | tail -n +2 | grep -E '^\s+[0-9]+ - ' || true)"
  # ---- benchmarks ----
  step "kernel benchmarks" "$out/bench.log" "$root/scripts/run_gpu_benchmarks.sh" --configured \
    --build-dir "$build_dir" --results "$out/bench" --jobs "$jobs" -- \
    '--benchmark_filter=^(gemm/bf16_(bf16|f32)/[A-Z]+/(gpt2s_|square/4096)|attention/(fwd|bwd)/bf16/d(64|128)/causal/)' \
    --benchmark_min_time=0.05  # seconds; Google Benchmark 1.7 (the packed one) takes a plain number
  step "training-step benchmark (GPU)" "$out/train_step_gpu.txt" "$build_dir/benchmarks/bench_cuda_train_step"
  step "training-step benchmark (CPU)" "$out/train_step.txt" "$build_dir/benchmarks/bench_train_step" \
    --benchmark_filter='sft_step_gpt2_small/checkpointing:0'
  # ---- the main job on the GPU: a small run end to end (heads of 64 dimensions) ----
  mkdir -p "$out/main_job"
  "$build_dir/examples/mona_synthetic" --rows 2000 --out "$out/main_job/data.csv" >/dev/null
  printf '{"data": "%s", "policy_d_model": 128, "policy_heads": 2, "rm_heads": 1, "steps": 10, "eval_every": 5,
 "eval_prompts": 64, "eval_during_training": 16}\n' "$out/main_job/data.csv" >"$out/main_job/config.json"
  step "main job (--device cuda)" "$out/main_job/log.txt" "$build_dir/examples/rlxf_mona" --device cuda \
    --config "$out/main_job/config.json" --run "$out/main_job/run"
fi

# ---- summary ----
{
  echo "# rlxf GPU check"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ) on $(hostname): $gpu_info; $nvcc_version; $cxx_version; $(nproc) cores;"
  echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with local changes)'); CUDA architectures $archs."
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---:|"
  for r in ${rows[@]+"${rows[@]}"}; do echo "| ${r//|/ | } |"; done
  echo
  echo "Tests: ${tests_line}."
  if [[ -n "${failed_list:-}" ]]; then echo; echo "Failed:"; echo '```'; echo "$failed_list"; echo '```'; fi
  if [[ -f "$out/bench/summary.md" ]]; then echo; sed 's/^# rlxf GPU benchmarks/## Kernel benchmarks/' "$out/bench/summary.md"; fi
  if [[ -f "$out/train_step_gpu.txt" || -f "$out/train_step.txt" ]]; then
    echo; echo "## Training steps"; echo
    echo "A GPT-2-small-shaped policy on cuda::Backend<cuda::Gpu> (bf16 activations, f32 master weights):"
    echo "an SFT step at B = 4, T = 128, and a PPO step of 16 prompts x 32 sampled tokens; then the CPU's"
    echo "SFT step on this machine's cores, for scale:"
    echo '```'
    [[ -f "$out/train_step_gpu.txt" ]] && grep -E '^(sft|ppo)_' "$out/train_step_gpu.txt"
    [[ -f "$out/train_step.txt" ]] && grep -E '^(sft|ppo)_' "$out/train_step.txt"
    echo '```'
  fi
  if [[ -f "$out/main_job/run/result.json" ]]; then
    echo; echo "## The main job on the GPU"; echo
    echo "rlxf_mona --device cuda on 2000 synthetic rows (config.json: policy 128 wide, 2 heads; 10 PPO steps):"
    echo '```'; grep -E "^(device|SFT policy|reward model, held-out|fine-tuning done|wrote)" "$out/main_job/log.txt"
    cat "$out/main_job/run/result.json"; echo '```'
  fi
  echo; echo "Total: $(( $(date +%s) - started )) s."
} > "$out/summary.md"
echo "== summary: $out/summary.md"
cat "$out/summary.md"
exit $status
