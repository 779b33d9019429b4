#!/usr/bin/env bash
# Hostile input to the main job (examples/rlxf_mona), as a new user or a broken disk would give
# it: command lines, configs, data files, run folders (a lock held, two concurrent runs, a
# crash between writes, corrupt or changed files). Every case must end with the expected exit
# status (2 usage/configuration, 1 other errors), never a signal, with a one-line error on
# stderr naming the file or field; where a case says so, the run folder stays usable.
#
#   main_job.sh RLXF_MONA MONA_SYNTHETIC WORK_DIR
# CTest runs it (tests/CMakeLists.txt); the library's cases are in test_hostile_library.cpp.
set -u
mona=$1 synth=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
passed=0 failed=0

note_fail() { echo "FAIL: $1"; failed=$((failed + 1)); }

# case NAME STATUS PATTERN [args...]: rlxf_mona's exit status is STATUS and its stderr one line
# containing PATTERN (a fixed string).
case_() {
  local name=$1 want=$2 pattern=$3
  shift 3
  timeout 300 "$mona" "$@" >out.txt 2>err.txt </dev/null
  local rc=$?
  if ((rc >= 124)); then
    note_fail "$name: exit status $rc (a signal or the timeout); stderr: $(head -c 300 err.txt)"
  elif ((rc != want)); then
    note_fail "$name: exit status $rc, expected $want; stderr: $(head -c 300 err.txt)"
  elif [[ $want -ne 0 && $(wc -l <err.txt) -ne 1 ]]; then
    note_fail "$name: stderr is not one line: $(head -c 300 err.txt)"
  elif [[ $want -ne 0 ]] && LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' err.txt; then
    note_fail "$name: stderr holds control characters"
  elif ! grep -qF -- "$pattern" err.txt out.txt; then
    note_fail "$name: output lacks '$pattern': $(head -c 300 err.txt)"
  else
    passed=$((passed + 1))
    return 0
  fi
  return 1
}

check() {  # check NAME COMMAND...: a property of the run folder after a case
  local name=$1
  shift
  if "$@"; then passed=$((passed + 1)); else note_fail "$name"; fi
}

config() { echo "$1" >cfg.json; }

# A small data set and a small configuration: a whole run in seconds.
"$synth" --rows 300 --out small.csv >/dev/null || { echo "mona_synthetic failed"; exit 1; }
small='"data": "'$work'/small.csv", "vocab": 300, "policy_d_model": 16, "policy_layers": 1, "policy_heads": 2,
  "rm_epochs": 1, "steps": 4, "prompts_per_step": 4, "checkpoint_every": 2, "eval_every": 0, "ppo_epochs": 1,
  "minibatch_size": 4, "max_new_tokens": 8, "eval_prompts": 8, "eval_during_training": 4, "kl_horizon": 100'
echo "{$small}" >small.json

# ---- command line ----
case_ "--help prints usage" 0 "kl_horizon" --help && check "--help lists every key with its range" \
  grep -q "max_new_tokens .*\[1, 160\]" out.txt
case_ "-h prints usage" 0 "usage: rlxf_mona" -h
case_ "unknown option" 2 "unknown option '--bogus'" --bogus
case_ "option without its value" 2 "option --run needs a value" --run
case_ "empty option value" 2 "needs a non-empty value" --run ""
case_ "unknown algorithm" 2 "--algorithm must be" --algorithm sarsa
case_ "unknown device" 2 "--device must be cpu, cuda or cuda-emulator, got 'tpu'" --device tpu
# --device cuda where the models cannot run: without a usable GPU, or in a build without CUDA,
# status 1 at once; on a GPU, small.json's heads of 8 dimensions (the CUDA attention kernels
# take 64 or 128), status 2. Either way nothing is written.
# (The GPU is claimed before the config is read: a missing config is status 2 only with one.)
"$mona" --device cuda --config missing.json >/dev/null 2>&1
if (($? == 2)); then
  case_ "--device cuda, heads the kernels lack" 2 "gives attention heads of 8 dimensions" --device cuda \
    --config small.json --run devrun
else
  case_ "--device cuda without a usable GPU" 1 "--device cuda: " --device cuda --config small.json --run devrun &&
    check "... names why (no usable GPU, or no CUDA)" grep -qE "no usable GPU|built without CUDA" err.txt
fi
check "... and writes no run folder" test ! -e devrun
case_ "--run is a regular file" 2 "is not a folder" --run small.csv
case_ "config file missing" 2 "missing.json" --config missing.json --run r
case_ "config file is a folder" 2 "not a regular file" --config . --run r
mkfifo pipe.json
case_ "config file is a FIFO (no hang)" 2 "not a regular file" --config pipe.json --run r

# ---- configs ----
python_free_deep() { printf '{"seed": '; head -c "$1" /dev/zero | tr '\0' '['; head -c "$1" /dev/zero | tr '\0' ']'; printf '}'; }
python_free_deep 1000000 >cfg.json
case_ "config nested 10^6 levels (2 MB)" 2 "more than the limit" --config cfg.json --run r
python_free_deep 100000 >cfg.json
case_ "config nested 10^5 levels" 2 "nested deeper than 8 levels" --config cfg.json --run r
config '{"max_new_tokens": 576460752303423488}'
case_ "max_new_tokens 2^59" 2 "field 'max_new_tokens' = 576460752303423488: expected an integer in [1, 160]" --config cfg.json --run r
config '{"max_new_tokens": 200}'
case_ "max_new_tokens over the positions budget" 2 "[1, 160]" --config cfg.json --run r
config '{"kl_horizon": 1}'
case_ "kl_horizon 1 (beta would go negative)" 2 "field 'kl_horizon' = 1: expected > 0.2 x 'prompts_per_step' = 6.4" --config cfg.json --run r
config '{"steps": -1}'
case_ "steps -1" 2 "field 'steps' = -1: expected an integer in [1, 1000000]" --config cfg.json --run r
config '{"steps": 2.7}'
case_ "steps 2.7" 2 "field 'steps' = 2.7" --config cfg.json --run r
config '{"steps": 0}'
case_ "steps 0" 2 "field 'steps' = 0" --config cfg.json --run r
config '{"lr": 0}'
case_ "lr 0" 2 "field 'lr' = 0: expected a finite number in (0, 1]" --config cfg.json --run r
config '{"lr": 1e999}'
case_ "lr 1e999" 2 "number overflow" --config cfg.json --run r
config '{"temperature": "hot"}'
case_ "temperature a string" 2 "field 'temperature' = \"hot\"" --config cfg.json --run r
config '{"adaptive_kl": 1}'
case_ "bool given as 1" 2 "field 'adaptive_kl' = 1: expected true or false" --config cfg.json --run r
config '{"policy_heads": 5}'
case_ "heads do not divide d_model" 2 "'policy_heads' = 5 must divide 'policy_d_model' = 96" --config cfg.json --run r
config '{"vocab": 100}'
case_ "vocab below the byte tokens" 2 "field 'vocab' = 100" --config cfg.json --run r
config '{"stepz": 3}'
case_ "unknown key" 2 "unknown key 'stepz'" --config cfg.json --run r
config '{"steps": 3, "steps": 4}'
case_ "duplicate key" 2 "key 'steps' appears twice" --config cfg.json --run r
config '[1, 2]'
case_ "config not an object" 2 "expected a JSON object" --config cfg.json --run r
config '{"steps": 3'
case_ "truncated JSON" 2 "not valid JSON" --config cfg.json --run r
printf '{"data": "a\x1b[31mb\x01"}' >cfg.json
case_ "control characters in a value" 2 "cfg.json" --config cfg.json --run r
config '{"data": "'$work'/nowhere.csv"}'
case_ "data file missing" 2 "field 'data': $work/nowhere.csv: cannot open" --config cfg.json --run r
check "a config error writes nothing" test ! -e r
config '{"data": "'$work'"}'
case_ "data is a folder" 2 "not a regular file" --config cfg.json --run r
config '{"data": "'$work'/pipe.json"}'
case_ "data is a FIFO (no hang)" 2 "not a regular file" --config cfg.json --run r

# ---- data files ----
: >empty.csv
echo "{$small, \"data\": \"$work/empty.csv\"}" | sed 's/"data": "[^"]*small.csv", //' >cfg.json
case_ "empty CSV" 1 "empty.csv" --config cfg.json --run r_empty
check "a data error leaves no config.json" test ! -e r_empty/config.json
{ cat small.csv; printf '501,"unterminated\n'; } >broken.csv
echo "{$small, \"data\": \"$work/broken.csv\"}" | sed 's/"data": "[^"]*small.csv", //' >cfg.json
case_ "CSV with an unterminated quote" 1 "broken.csv" --config cfg.json --run r_broken
check "... and the folder then takes a corrected config" test ! -e r_broken/config.json
{ cat small.csv; head -c 5000 /dev/zero | tr '\0' ','; echo; } >wide.csv
echo "{$small, \"data\": \"$work/wide.csv\"}" | sed 's/"data": "[^"]*small.csv", //' >cfg.json
case_ "CSV record of 5000 fields" 1 "more than 4096 fields" --config cfg.json --run r_wide

# ---- run folders ----
mkdir -p held
( exec 9<>held/.lock; flock -n 9 || exit 1; printf 'pid 4242 on testhost since 2026-01-01T00:00:00Z\n' >&9; sleep 60 ) &
holder=$!
for _ in $(seq 50); do grep -q 4242 held/.lock 2>/dev/null && break; sleep 0.1; done
case_ "run folder locked by another process" 1 "in use by another process (held by pid 4242 on testhost" \
  --config small.json --run held
kill $holder 2>/dev/null; wait $holder 2>/dev/null

# Two concurrent runs on one folder: the second is refused while the first runs.
"$mona" --config small.json --run run >first.out 2>first.err &
first=$!
for _ in $(seq 3000); do grep -q "pid $first" run/.lock 2>/dev/null && break; sleep 0.01; done
kill -STOP $first  # holds the lock, however fast the run would be
case_ "a second run on a folder in use" 1 "in use by another process (held by pid $first" --config small.json --run run
kill -CONT $first
wait $first
rc=$?
check "the first run completes (exit $rc)" test $rc -eq 0
cp run/result.json result.first
check "the run folder records the data file" grep -q '"fnv1a"' run/data.json

# eval_during_training 0: no evaluation while fine-tuning (it once failed after the last step
# on an empty prompt list).
sed 's/"eval_during_training": 4/"eval_during_training": 0/' small.json >noeval.json
timeout 300 "$mona" --config noeval.json --run noeval >/dev/null 2>noeval.err
rc=$?
check "eval_during_training 0 completes (exit $rc)" test $rc -eq 0
check "... with no evaluation metrics during training" bash -c '! grep -q "eval/reward" noeval/ppo/metrics.jsonl'

cp small.json other.json && sed -i 's/"steps": 4/"steps": 5/' other.json
sum=$(md5sum <run/config.json)
case_ "a different config on an existing folder" 2 "differs from this run's configuration" --config other.json --run run
check "... leaves its config.json as it was" test "$sum" = "$(md5sum <run/config.json)"

cp small.csv small.orig && echo "" >>small.csv && printf '%s\n' "$(tail -n 1 small.orig)" >>small.csv
case_ "the data file changed since the run began" 2 "is not the file this run folder was made from" --config small.json --run run
cp small.orig small.csv

# A crash between writes: leftover temporary files, a truncated newest checkpoint, no result.
rm run/result.json
touch run/config.json.tmp-1-0 run/ppo/checkpoints/latest.tmp-1-0 run/report.md.tmp-1-1
newest=run/ppo/checkpoints/$(cat run/ppo/checkpoints/latest)/policy.safetensors
head -c 100 "$newest" >x && mv x "$newest"
timeout 300 "$mona" --config small.json --run run >rerun.out 2>rerun.err
rc=$?
check "after a crash between writes the rerun completes (exit $rc)" test $rc -eq 0
check "... warning about the corrupt checkpoint" grep -q "resuming from the previous checkpoint" rerun.err
check "... and ends with the same results" cmp -s run/result.json result.first

# Killed in the middle, the rerun resumes and ends with the same results.
rm -rf killed
"$mona" --config small.json --run killed >/dev/null 2>&1 &
victim=$!
for _ in $(seq 600); do [ -e killed/ppo/checkpoints/latest ] && break; sleep 0.05; done
kill -9 $victim 2>/dev/null; wait $victim 2>/dev/null
timeout 300 "$mona" --config small.json --run killed >/dev/null 2>killed.err
rc=$?
check "after SIGKILL the rerun completes (exit $rc)" test $rc -eq 0
check "... with the same results" cmp -s killed/result.json result.first

# Killed while saving the tokenizer (vocab.json written, the other two files not): the rerun
# trains it again, identically, and the folder ends as an uninterrupted run's.
rm -rf crashtok && cp -r run crashtok && rm crashtok/tokenizer/merges.txt crashtok/tokenizer/special_tokens_map.json
timeout 300 "$mona" --config small.json --run crashtok >/dev/null 2>crashtok.err
rc=$?
check "after a crash in the tokenizer save the rerun completes (exit $rc)" test $rc -eq 0
check "... with the same results" cmp -s crashtok/result.json result.first

# Corrupt files inside a finished run folder: each named, nothing else touched.
corrupt() {  # corrupt NAME FILE CONTENT PATTERN
  rm -rf bad && cp -r run bad && printf '%s' "$3" >"bad/$2"
  case_ "$1" 1 "$4" --config small.json --run bad
}
corrupt "garbage tokenizer vocab.json" tokenizer/vocab.json '{"a": [[[' "vocab.json"
corrupt "truncated SFT weights" sft/policy.safetensors 'xx' "policy.safetensors"
corrupt "reward.json with a negative size" reward_model/reward.json '{"max_tokens": -1}' "field 'max_tokens' = -1"
corrupt "classifier config.json of the wrong type" reward_model/classifier/config.json '{"model_type": "bert", "vocab_size": "many"}' "field 'vocab_size'"
corrupt "config.json of the run replaced by garbage" config.json 'garbage' "config.json"
rm -rf bad && cp -r run bad && ln -sf /dev/zero bad/ppo/metrics.jsonl && rm bad/result.json
case_ "metrics.jsonl linked to /dev/zero (no endless read)" 1 "not a regular file" --config small.json --run bad

echo "main job hostile cases: $passed passed, $failed failed"
((failed == 0))
