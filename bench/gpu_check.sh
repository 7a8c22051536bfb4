#!/usr/bin/env bash
# The GPU checks of issue 9 in one run (docs/gpu.md), sized to finish well inside the device
# tool's 10-minute command limit: builds spinlm when build-cuda/spinlm is missing
# (scripts/device-build.sh), then
#   1. log-probs: spinlm (GPU fp32 and bf16) vs transformers fp32          bench/gpu_logprobs.py
#      decoding on the GPU: CPU vs GPU greedy, graphs vs no graphs         bench/gpu_decode.py
#   2. generation throughput: spinlm vs transformers' generate, 1.1B bf16  bench/gpu_generate.py
#   3. SPIN step MFU, TinyLlama-1.1B shape, 1024-token pairs               bench/gpu_spin_step.py
#   4. SPIN step, Mistral-7B shape, gradient checkpointing, peak memory    bench/gpu_spin_step.py
#      (full fine-tuning with bf16 state, then LoRA r 16 on every linear with fp32 adapters)
# and prints a compact summary. Results (small JSON + logs) go to $OUT (default /tmp/spinlm-gpu-check-out);
# models and data to $WORK (default /tmp/spinlm-gpu-check), never under $OUT.
# The budget ($BUDGET seconds from the start, default 540, the build included) bounds every
# check's time limit, so the summary is always written; SKIP=name,name leaves checks out (a
# second call on the still-warm machine reuses build-cuda and runs what the first skipped).
#
#   bench/gpu_check.sh               on the GPU machine
#   SPINLM=build/spinlm bench/gpu_check.sh --cpu-smoke
#                                    here: tiny models on the CPU, no transformers (tests the scripts)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
OUT=${OUT:-/tmp/spinlm-gpu-check-out}
WORK=${WORK:-/tmp/spinlm-gpu-check}
BUDGET=${BUDGET:-540}
mkdir -p "$OUT" "$WORK"
start=$(date +%s)
smoke=()
if [ "${1:-}" = --cpu-smoke ]; then
  smoke=(--cpu-smoke)
  python=${PYTHON:-/usr/bin/python3}  # Debian's python3 has torch
  spinlm=${SPINLM:-$root/build/spinlm}  # any CPU build of this tree
else
  python=${PYTHON:-python3}
  spinlm=${SPINLM:-$root/build-cuda/spinlm}
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo "gpu-check: nvidia-smi failed" >&2
  if [ ! -x "$spinlm" ]; then
    echo "gpu-check: building spinlm (scripts/device-build.sh, log in $OUT/build.log)" >&2
    if ! timeout 300 scripts/device-build.sh > "$OUT/build.log" 2>&1; then
      tail -40 "$OUT/build.log"
      echo "gpu-check: the build failed; see $OUT/build.log" >&2
      exit 1
    fi
    echo "gpu-check: built in $(( $(date +%s) - start )) s" >&2
  fi
fi
[ -n "$spinlm" ] && [ -x "$spinlm" ] || { echo "gpu-check: no spinlm binary (set SPINLM)" >&2; exit 1; }
# The prefix's shared libraries (yaml-cpp, pcre2, utf8proc) for a binary built by device-build.sh.
[ -f "$(dirname "$spinlm")/env.sh" ] && . "$(dirname "$spinlm")/env.sh"

status=0
# check NAME LIMIT_SECONDS RESERVE_SECONDS SCRIPT ARGS...: runs bench/SCRIPT for at most LIMIT
# seconds, cut to what is left of $BUDGET (skipped when less than half of LIMIT is left, or
# when NAME is in $SKIP, comma-separated). The script's own spinlm runs get the time left after
# RESERVE seconds (model creation, the transformers baseline), so it can still write its result.
check() {
  local name=$1 limit=$2 full=$2 reserve=$3 script=$4
  shift 4
  if [[ ",${SKIP:-}," == *",$name,"* ]]; then
    echo "gpu-check: $name skipped (SKIP)" >&2
    return
  fi
  local elapsed=$(( $(date +%s) - start ))
  local left=$(( BUDGET - elapsed ))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt $(( full / 2 )) ]; then
    echo "gpu-check: $name skipped ($elapsed s used of the $BUDGET s budget; rerun with SKIP=...)" >&2
    return
  fi
  echo "gpu-check: $name (limit $limit s, $elapsed s so far)" >&2
  # timeout signals its whole process group: spinlm dies with the script.
  timeout -k 10 "$limit" "$python" "bench/$script" --spinlm "$spinlm" --out "$OUT" --work "$WORK" \
    --timeout $(( limit - reserve )) "$@" > "$OUT/$name.log" 2>&1
  local code=$?
  [ $code = 0 ] || { status=1; echo "gpu-check: $name exited $code; tail of $OUT/$name.log:" >&2; tail -5 "$OUT/$name.log" >&2; }
  rm -rf "$WORK/work-${name}" 2>/dev/null  # free the disk for the next model
}

check logprobs 60 15 gpu_logprobs.py "${smoke[@]}"
check decode 60 5 gpu_decode.py "${smoke[@]}"
check generate 110 45 gpu_generate.py "${smoke[@]}"
if [ ${#smoke[@]} -gt 0 ]; then
  check spin_step_tiny 60 15 gpu_spin_step.py "${smoke[@]}"
else
  check spin_step_1b 100 25 gpu_spin_step.py --shape 1b --steps 3 --batch-size 16 --micro-batch-size 8
  check spin_step_mistral-7b 200 60 gpu_spin_step.py --shape mistral-7b --steps 2 --batch-size 8 \
    --micro-batch-size 4 --gradient-checkpointing --optimizer-state-dtype bf16
  check spin_step_mistral-7b_lora16 200 60 gpu_spin_step.py --shape mistral-7b --steps 2 --batch-size 8 \
    --micro-batch-size 4 --gradient-checkpointing --lora-r 16
fi
"$python" bench/gpu_summary.py "$OUT"
echo "gpu-check: done in $(( $(date +%s) - start )) s; results in $OUT" >&2
exit $status
