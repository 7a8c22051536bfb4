#!/usr/bin/env bash
# Data-parallel throughput on this machine: SPIN training and generation with one process
# (1 and 2 threads) against two processes of one thread each (spinlm launch --nproc 2), on
# the same model, data and global batch. Usage: bash bench/bench_dist.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-${BUILD_DIR:-build}}
spinlm=$(realpath "$build/spinlm")
work=$(mktemp -d /tmp/bench_dist.XXXXXX)
trap 'rm -rf "$work"' EXIT

# A small Llama (hidden 256, 4 layers, byte vocabulary: ~3.3M parameters).
"$spinlm" init-model --arch llama --hidden-size 256 --intermediate-size 688 --layers 4 --heads 8 \
  --kv-heads 4 --vocab byte --seed 1 --max-position-embeddings 512 --out "$work/model" > /dev/null
/usr/bin/python3 - "$work" <<'PY'
import json, random, sys
work = sys.argv[1]
rng = random.Random(0)
ids = lambda n: [rng.randrange(40, 120) for _ in range(n)]
user = {"role": "user", "content": "q"}
with open(f"{work}/pairs.jsonl", "w") as f:
    for i in range(64):
        f.write(json.dumps({"real": [user, {"role": "assistant", "content": "a"}],
                            "generated": [user, {"role": "assistant", "content": "b"}],
                            "prompt_ids": ids(64), "real_ids": ids(64), "generated_ids": ids(64)}) + "\n")
with open(f"{work}/prompts.jsonl", "w") as f:
    for i in range(32):
        f.write(json.dumps({"prompt": f"Question {i}: what is {i * 17} plus {i}?", "response": "x"}) + "\n")
PY

train() {  # $1 label, $2 launcher prefix, $3 threads
  local out="$work/train-$1"
  local start=$(date +%s.%N)
  $2 "$spinlm" train --threads "$3" --model "$work/model" --data "$work/pairs.jsonl" --output "$out" \
    --batch-size 16 --micro-batch-size 4 --epochs 1 --learning-rate 1e-5 --logging-steps 4 > /dev/null 2>&1
  local end=$(date +%s.%N)
  /usr/bin/python3 - "$1" "$out" "$start" "$end" <<'PY'
import json, sys
label, out, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rows = [json.loads(l) for l in open(f"{out}/metrics.jsonl")]
print(f"train    {label:<22} wall {end - start:6.1f} s   train tokens/s {rows[-1]['tokens_per_second']:8.0f}")
PY
}

generate() {  # $1 label, $2 launcher prefix, $3 threads
  local start=$(date +%s.%N)
  $2 "$spinlm" generate --no-progress --threads "$3" --model "$work/model" --input "$work/prompts.jsonl" \
    --output "$work/gen-$1.jsonl" --max-new-tokens 64 --temperature 1 --seed 1 --batch-size 16 > /dev/null 2>&1
  local end=$(date +%s.%N)
  /usr/bin/python3 - "$1" "$work/gen-$1.jsonl" "$start" "$end" <<'PY'
import json, sys
label, path, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
tokens = sum(len(json.loads(l)["generated_ids"]) for l in open(path))
print(f"generate {label:<22} wall {end - start:6.1f} s   new tokens/s {tokens / (end - start):8.1f}")
PY
}

launch2="$spinlm launch --nproc 2 --master-port 29517 --"
echo "cores: $(nproc)"
train "1proc-1thread" "" 1
train "1proc-2threads" "" 2
train "2procs-1thread-each" "$launch2" 1
generate "1proc-1thread" "" 1
generate "1proc-2threads" "" 2
generate "2procs-1thread-each" "$launch2" 1
cmp "$work/gen-1proc-2threads.jsonl" "$work/gen-2procs-1thread-each.jsonl" && echo "generation outputs identical"
