#!/usr/bin/env bash
# Runs the libFuzzer targets of build-fuzz/ (make fuzz builds them), each for FUZZ_SECONDS
# (default 120), and fails when any of them finds a crash, a leak, a sanitizer report, an
# exception other than spinlm::Error, a timeout or a memory blow-up.
#   fuzz/run.sh [TARGET...]      (default: every target)
# Each target starts from its seeds (fuzz/corpus/TARGET) and the kept crash inputs
# (tests/data/fuzz_regressions/TARGET); what it learns goes to build-fuzz/corpus/TARGET
# (kept between runs), findings to build-fuzz/findings/TARGET/, its output to
# build-fuzz/logs/TARGET.log. The last line per target: executions, coverage (cov) and
# features (ft) reached, as docs/reliability.md records them.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${FUZZ_BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-120}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors tokenizer chat_template jsonl recipe config parquet)
failed=()
for t in "${targets[@]}"; do
  exe=$build/fuzz/fuzz_$t
  [ -x "$exe" ] || { echo "fuzz: $exe is missing (make fuzz builds it)"; exit 2; }
  mkdir -p "$build/corpus/$t" "$build/findings/$t" "$build/logs" "tests/data/fuzz_regressions/$t"
  dict=()
  [ -f "fuzz/dict/$t.dict" ] && dict=(-dict="fuzz/dict/$t.dict")
  # Work in the build folder: a crash input is written as findings/TARGET/crash-..., never into the tree.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$exe" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$build/findings/$t/" "${dict[@]}" \
      "$build/corpus/$t" "fuzz/corpus/$t" "tests/data/fuzz_regressions/$t" > "$build/logs/$t.log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$build/logs/$t.log" | awk '{print $2}')
  last=$(grep -E '^#[0-9]+' "$build/logs/$t.log" | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}')
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    echo "fuzz $t: FAILED (exit $rc) after ${runs:-?} executions; see $build/logs/$t.log and $build/findings/$t/"
    grep -E 'ERROR|SUMMARY|escaped|runtime error|Test unit written' "$build/logs/$t.log" | head -5
  else
    echo "fuzz $t: ${seconds} s, ${runs:-?} executions, cov ${cov:-?}, ft ${ft:-?}, no finding"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}: fix the parser, then keep the input under tests/data/fuzz_regressions/TARGET/"
  exit 1
fi
