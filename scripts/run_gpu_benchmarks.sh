#!/usr/bin/env bash
# Builds and runs rlxf's GPU benchmarks (benchmarks/cuda/) on a machine with a CUDA GPU, and
# writes the results to a directory:
#   bench_cuda_<name>.json  Google Benchmark's JSON (--benchmark_out), per benchmark binary
#   bench_cuda_<name>.txt   its console table
#   summary.md              Markdown: GEMM TFLOP/s of ours, cuBLAS and cuBLASLt per problem,
#                           ours / cuBLAS; attention TFLOP/s of ours and cuDNN per problem and
#                           pass, ours / cuDNN; each with the correctness check's max relative error
# The benchmarks: gemm (bench_cuda_gemm: cuda::gemm against cuBLAS, cuBLASLt) and attention
# (bench_cuda_attention: cuda::attention forward / backward against cuDNN's fused SDPA).
#
# Usage: scripts/run_gpu_benchmarks.sh [options] [-- benchmark arguments]
#   --build-dir DIR   build directory (default: build-gpu-release in the repository)
#   --results DIR     results directory (default: <build dir>/gpu-results/<date>-<host>)
#   --archs LIST      CMAKE_CUDA_ARCHITECTURES (default "80;90": A100, H100)
#   --jobs N          parallel build jobs (default: nproc)
#   --bench LIST      benchmarks to build and run, comma-separated (default: gemm,attention)
#   --build-only      configure and build, do not run (works without a GPU)
#   --configured      the build directory is already configured with the benchmarks on (as
#                     scripts/gpu_check.sh leaves it): build the targets there, do not configure
# Anything after "--" goes to every benchmark binary run, e.g.
#   scripts/run_gpu_benchmarks.sh --bench gemm -- --benchmark_filter='gemm/bf16_bf16/.*' --benchmark_min_time=0.2
#   scripts/run_gpu_benchmarks.sh --bench attention -- --benchmark_filter='attention/bwd/.*/d128/'
#
# The build is Release with CUDA on and tests, examples off: each benchmark target then
# compiles the one kernel translation unit it needs (tests/cuda/kernels/<family>.cu) itself.
#
# Exit status: 0 when the benchmarks ran (a benchmark that failed its correctness check is
# reported as an error in the outputs and summary), 2 when there is no usable GPU (nothing
# was run), 1 on any other failure (build, benchmark crash).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="$root/build-gpu-release"
results_dir=""
archs="80;90"
jobs="$(nproc 2>/dev/null || echo 2)"
build_only=0
configured=0
benches="gemm,attention"
bench_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --results) results_dir="$2"; shift 2 ;;
    --archs) archs="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --bench) benches="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    --configured) configured=1; shift ;;
    --) shift; bench_args=("$@"); break ;;
    -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_gpu_benchmarks.sh: unknown option '$1' (see --help)" >&2; exit 1 ;;
  esac
done
targets=()
IFS=',' read -r -a bench_names <<<"$benches"
for name in ${bench_names[@]+"${bench_names[@]}"}; do
  case "$name" in
    gemm|attention) targets+=("bench_cuda_$name") ;;
    *) echo "run_gpu_benchmarks.sh: unknown benchmark '$name' in --bench (known: gemm, attention)" >&2; exit 1 ;;
  esac
done
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "run_gpu_benchmarks.sh: --bench names no benchmark" >&2
  exit 1
fi

no_gpu() {
  echo "run_gpu_benchmarks.sh: no usable GPU on $(hostname): $1" >&2
  echo "run_gpu_benchmarks.sh: the GPU benchmarks need a CUDA GPU; nothing was run (exit status 2)." >&2
  echo "run_gpu_benchmarks.sh: use --build-only to check that they compile." >&2
  exit 2
}

# A cheap early answer when the driver's tool is installed; the benchmark binary decides
# otherwise (it exits with status 2 without a GPU).
if [[ $build_only -eq 0 ]] && command -v nvidia-smi >/dev/null 2>&1; then
  if ! gpus="$(nvidia-smi -L 2>&1)" || ! grep -q '^GPU ' <<<"$gpus"; then
    no_gpu "nvidia-smi -L lists no GPU ($(head -n 1 <<<"$gpus"))"
  fi
  echo "== GPUs:"; echo "$gpus"
fi

if [[ $configured -eq 0 ]]; then
  echo "== configure $build_dir (Release, CUDA architectures $archs)"
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DRLXF_ENABLE_CUDA=ON \
    -DRLXF_BUILD_TESTS=OFF -DRLXF_BUILD_EXAMPLES=OFF -DRLXF_BUILD_BENCHMARKS=ON \
    "-DCMAKE_CUDA_ARCHITECTURES=$archs"
fi
echo "== build ${targets[*]}"
cmake --build "$build_dir" --target "${targets[@]}" -j "$jobs"
if [[ $build_only -eq 1 ]]; then
  for target in "${targets[@]}"; do echo "== built $build_dir/benchmarks/$target (not run: --build-only)"; done
  exit 0
fi

if [[ -z "$results_dir" ]]; then
  results_dir="$build_dir/gpu-results/$(date +%Y%m%d-%H%M%S)-$(hostname -s 2>/dev/null || hostname)"
fi
mkdir -p "$results_dir"
jsons=()
for target in "${targets[@]}"; do
  bench="$build_dir/benchmarks/$target"
  json="$results_dir/$target.json"
  echo "== run $bench -> $results_dir"
  set +e
  "$bench" --benchmark_out="$json" --benchmark_out_format=json --benchmark_counters_tabular=true \
    ${bench_args[@]+"${bench_args[@]}"} 2>&1 | tee "$results_dir/$target.txt"
  status=${PIPESTATUS[0]}
  set -e
  if [[ $status -eq 2 ]]; then
    rm -f "$json"
    no_gpu "$target found none (its message is above)"
  fi
  if [[ $status -ne 0 ]]; then
    echo "run_gpu_benchmarks.sh: $target failed with exit status $status" >&2
    exit 1
  fi
  jsons+=("$json")
done

echo "== summary -> $results_dir/summary.md"
python3 - "$results_dir/summary.md" "${jsons[@]}" <<'PY'
import json, sys
from collections import OrderedDict

ctx, runs = {}, []
for path in sys.argv[2:]:
    data = json.load(open(path))
    ctx = ctx or data.get("context", {})
    these = data.get("benchmarks", [])
    # With --benchmark_repetitions, use the medians; otherwise the single runs.
    if any(r.get("aggregate_name") == "median" for r in these):
        these = [r for r in these if r.get("aggregate_name") == "median"]
    else:
        these = [r for r in these if r.get("run_type", "iteration") == "iteration"]
    runs.extend(these)

gemm_rows = OrderedDict()  # (types, case, shape, dims) -> {impl: run}
attn_rows = OrderedDict()  # (pass, type, head dim, mask, dims) -> {impl: run}
for r in runs:
    parts = r.get("run_name", r["name"]).split("/")
    if len(parts) >= 6 and parts[0] == "gemm":
        _, types, case, shape, dims, impl = parts[:6]
        gemm_rows.setdefault((types, case, shape, dims), {})[impl] = r
    elif len(parts) >= 7 and parts[0] == "attention":
        _, pas, typ, hdim, mask, dims, impl = parts[:7]
        attn_rows.setdefault((pas, typ, hdim, mask, dims), {})[impl] = r

def tflops(r):
    if r is None: return "–"
    if r.get("error_occurred"): return "ERROR"
    return "%.1f" % r["TFLOP/s"]

def ok(r):
    return r is not None and not r.get("error_occurred")

out = []
out.append("# rlxf GPU benchmarks\n")
out.append("GPU: %s (sm_%s, %s SMs, %s MHz), CUDA driver %s, runtime %s; host %s, %s.\n" % (
    ctx.get("gpu", "?"), ctx.get("gpu_sm", "?"), ctx.get("gpu_sm_count", "?"), ctx.get("gpu_sm_clock_mhz", "?"),
    ctx.get("cuda_driver", "?"), ctx.get("cuda_runtime", "?"), ctx.get("host_name", "?"), ctx.get("date", "?")))
errors = []
if gemm_rows:
    out.append("## GEMM\n")
    out.append("TFLOP/s = 2MNK / GPU time per product (CUDA events); ours/cuBLAS = cuBLAS time / ours "
               "(> 1: ours faster); max rel err = max|C - C_cuBLAS| / max|C_cuBLAS| of ours.\n")
    out.append("| in→out | case | shape | M×N×K | ours | cuBLAS | cuBLASLt | ours/cuBLAS | max rel err |")
    out.append("|---|---|---|---|---:|---:|---:|---:|---:|")
    for (types, case, shape, dims), impls in gemm_rows.items():
        ours, cb, lt = impls.get("ours"), impls.get("cublas"), impls.get("cublaslt")
        ratio = "%.2f" % ours["vs_cublas"] if ok(ours) else "–"
        err = "%.1e" % ours["max_rel_err"] if ok(ours) else "–"
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            types.replace("_", "→"), case, shape, dims.replace("x", "×"), tflops(ours), tflops(cb), tflops(lt), ratio, err))
        for impl, r in impls.items():
            if r.get("error_occurred"):
                errors.append("- %s: %s" % (r.get("run_name", r["name"]), r.get("error_message", "")))
    out.append("")
if attn_rows:
    out.append("## Attention\n")
    out.append("TFLOP/s as FlashAttention counts: forward 4·b·h·s²·d (halved when causal), backward 2.5× forward, "
               "/ GPU time per pass (CUDA events); ours/cuDNN = cuDNN time / ours (> 1: ours faster); "
               "max rel err = max|x - x_cuDNN| / max|x_cuDNN| of ours (forward O; backward worst of dQ, dK, dV).\n")
    out.append("| pass | type | d | mask | b×h×s | ours | cuDNN | ours/cuDNN | max rel err |")
    out.append("|---|---|---|---|---|---:|---:|---:|---:|")
    for (pas, typ, hdim, mask, dims), impls in attn_rows.items():
        ours, cd = impls.get("ours"), impls.get("cudnn")
        ratio = "%.2f" % ours["vs_cudnn"] if ok(ours) else "–"
        err = "%.1e" % ours["max_rel_err"] if ok(ours) else "–"
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            pas, typ, hdim.lstrip("d"), mask, dims.replace("x", "×"), tflops(ours), tflops(cd), ratio, err))
        for impl, r in impls.items():
            if r.get("error_occurred"):
                errors.append("- %s: %s" % (r.get("run_name", r["name"]), r.get("error_message", "")))
    out.append("")
if errors:
    out.append("## Errors\n")
    out.extend(errors)
open(sys.argv[1], "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
