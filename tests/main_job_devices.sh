#!/usr/bin/env bash
# The main job (examples/rlxf_mona) on its backends: the same small configuration run with
# --device cpu and --device cuda-emulator (the CUDA backend, bf16, its kernels run by the CPU
# emulator: what --device cuda runs on a GPU), then the emulated run's SFT policy and reward
# model resumed by a CPU run.
#
#   main_job_devices.sh RLXF_MONA MONA_SYNTHETIC WORK_DIR
#
# Checks, by rule:
# - both runs end with status 0 and write result.json with finite rewards;
# - the held-out losses after SFT and after reward-model training agree within 2^-5 of their
#   scale, max(1, |cpu|), the rule of the backend parity tests for order-one metrics computed
#   from bf16 forwards and backwards (measured: 1.5e-3 after SFT, 1e-4 after the reward
#   model); a lost gradient or a wrong kernel moves them by their whole size;
# - the emulated run's checkpoints (sft/policy.safetensors, reward_model/) load on the CPU:
#   a CPU run in that folder reuses them and fine-tunes;
# - a configuration whose head dimension the CUDA kernels lack is refused (status 2, naming
#   the field) before anything is written.
set -u
mona=$1 synth=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
failed=0
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }

"$synth" --rows 300 --out small.csv >/dev/null || { echo "mona_synthetic failed"; exit 1; }
cat >cfg.json <<EOF
{"data": "$work/small.csv", "vocab": 300, "policy_d_model": 64, "policy_layers": 1, "policy_heads": 1,
 "rm_d_model": 64, "rm_layers": 1, "rm_heads": 1, "rm_epochs": 1, "steps": 2, "prompts_per_step": 4,
 "checkpoint_every": 1, "eval_every": 0, "ppo_epochs": 1, "minibatch_size": 4, "max_new_tokens": 8,
 "eval_prompts": 4, "eval_during_training": 0, "kl_horizon": 100}
EOF

run() {  # run NAME DEVICE [LOG]: the job in folder NAME, its output in LOG (NAME.log)
  local log=${3:-$1.log}
  local t0=$SECONDS
  if ! timeout 600 "$mona" --config cfg.json --run "$1" --device "$2" >"$log" 2>&1; then
    fail "--device $2 (folder $1) failed: $(tail -n 3 "$log")"
    return 1
  fi
  echo "--device $2 in $1: $((SECONDS - t0)) s"
  grep -q '"tuned": [0-9]' "$1/result.json" || fail "$1/result.json lacks a finite tuned reward"
}
# The last validation loss a stage printed ("  SFT step 8/8: train loss ..., validation loss X [...]").
last_loss() { grep "^  $2 step" "$1.log" | tail -n 1 | sed 's/.*validation loss \([0-9.e+-]*\).*/\1/'; }
agree() {  # agree WHAT CPU EMULATED
  awk -v what="$1" -v a="$2" -v b="$3" 'BEGIN {
    if (a == "" || b == "") { print "FAIL: no " what " in the logs"; exit 1 }
    d = a - b; if (d < 0) d = -d; s = a < 0 ? -a : a; if (s < 1) s = 1;
    printf "%s: cpu %s, cuda-emulator %s, |difference| %.2g (allowed %.2g)\n", what, a, b, d, s / 32;
    exit d <= s / 32 ? 0 : 1 }' || fail "$1 differs between the backends"
}

if run cpu cpu && run emulated cuda-emulator; then
  agree "SFT validation loss" "$(last_loss cpu SFT)" "$(last_loss emulated SFT)"
  agree "reward-model validation loss" "$(last_loss cpu 'reward model')" "$(last_loss emulated 'reward model')"
  # Resume on the CPU from what the emulated backend saved (same files, same layout).
  rm -rf emulated/ppo emulated/result.json emulated/report.md
  if run emulated cpu resumed.log; then
    grep -q "SFT policy: loaded" resumed.log || fail "the CPU run did not load the emulated run's SFT policy"
    grep -q "SFT step" resumed.log && fail "the CPU run trained the SFT policy again"
    grep -q "reward model step" resumed.log && fail "the CPU run trained the reward model again"
    test -s emulated/ppo/metrics.jsonl || fail "the CPU run in the emulated run's folder did not fine-tune"
  fi
fi

sed 's/"policy_heads": 1/"policy_heads": 2/' cfg.json >heads.json
"$mona" --config heads.json --run refused --device cuda-emulator >out.txt 2>err.txt
rc=$?
[[ $rc -eq 2 ]] || fail "head dimension 32 on the CUDA backend: status $rc, expected 2"
grep -q "field 'policy_heads' = 2 with 'policy_d_model' = 64 gives attention heads of 32 dimensions" err.txt ||
  fail "head dimension 32: the error does not name the field: $(cat err.txt)"
[[ ! -e refused ]] || fail "head dimension 32: a run folder was written"

echo "$failed failure(s)"
((failed == 0))
