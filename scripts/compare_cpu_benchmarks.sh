#!/usr/bin/env bash
# Before / after on the CPU: runs the training-step and decoder benchmarks of two builds
# alternately (before, after, before, after, ...) and prints each benchmark's median of each
# side and their ratio. Interleaving is what makes the ratio mean something on a shared,
# noisy machine: both sides see the same drift. Run it on an otherwise idle machine.
#
# Usage: scripts/compare_cpu_benchmarks.sh BEFORE_BUILD AFTER_BUILD [ROUNDS] [FILTER]
#   BEFORE_BUILD, AFTER_BUILD  build directories with benchmarks/bench_train_step and
#                              benchmarks/bench_decoder (e.g. a worktree of the old commit,
#                              configured with -DRLXF_BUILD_BENCHMARKS=ON)
#   ROUNDS                     rounds of both sides (default 4)
#   FILTER                     --benchmark_filter for bench_train_step (default: the SFT step
#                              without checkpointing and the main job's PPO step); the decoder
#                              runs forward/128 and generate_kv_cache
# Needs python3 for the medians.
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 1; }
before=$1 after=$2 rounds=${3:-4}
filter=${4:-'sft_step_gpt2_small(/iterations|/checkpointing:0)|ppo_step_main_job'}
for d in "$before" "$after"; do
  for b in bench_train_step bench_decoder; do
    [[ -x "$d/benchmarks/$b" ]] || { echo "no $d/benchmarks/$b" >&2; exit 1; }
  done
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMP_WAIT_POLICY=passive
for ((r = 1; r <= rounds; ++r)); do
  for side in before after; do
    d=$before
    [[ $side == after ]] && d=$after
    "$d/benchmarks/bench_train_step" "--benchmark_filter=$filter" --benchmark_format=json >"$out/train_${side}_$r.json"
    "$d/benchmarks/bench_decoder" '--benchmark_filter=forward/128|generate_kv_cache' --benchmark_format=json \
      >"$out/decoder_${side}_$r.json"
  done
  echo "round $r of $rounds done" >&2
done
python3 - "$out" <<'EOF'
import glob, json, os, statistics, sys
times = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    side = os.path.basename(path).split("_")[1]
    for b in json.load(open(path))["benchmarks"]:
        # Builds from before the SFT step took a checkpointing argument name it without one.
        name = b["name"].replace("/checkpointing:0", "")
        times.setdefault(name, {}).setdefault(side, []).append(b["real_time"])
print("| benchmark | before (median) | after (median) | after / before |")
print("|---|---|---|---|")
for name, sides in times.items():
    if "before" not in sides or "after" not in sides:
        print(f"| {name} | {'n/a' if 'before' not in sides else 'ran'} | {'n/a' if 'after' not in sides else 'ran'} | |")
        continue
    before, after = statistics.median(sides["before"]), statistics.median(sides["after"])
    print(f"| {name} | {before:.0f} ms | {after:.0f} ms | {after / before:.3f} |")
EOF
