#!/usr/bin/env bash
# Runs the libFuzzer targets of a JG_FUZZ build tree (tests/fuzz/fuzz_*.c).
#
#   scripts/fuzz.sh check FUZZ_DIR [SECONDS]  every target over its committed corpus
#                                             (regression), then SECONDS (default 3) of
#                                             fuzzing each; writes FUZZ_DIR/test-summary.txt
#   scripts/fuzz.sh run FUZZ_DIR SECONDS      SECONDS of fuzzing each target, growing
#                                             FUZZ_DIR/corpus/<target>; prints executions
#
# Seeds: tests/fuzz/corpus/<target>/ (small files, committed). Findings (crashes, leaks,
# timeouts) go to FUZZ_DIR/findings/<target>-*; a target with any finding fails.
set -uo pipefail

mode=${1:-}; dir=${2:-}; seconds=${3:-3}
[ "$mode" = check ] || [ "$mode" = run ] || { echo "usage: $0 check|run FUZZ_DIR [SECONDS]" >&2; exit 2; }
[ -f "$dir/jg-fuzzers.txt" ] || { echo "fuzz: no $dir/jg-fuzzers.txt (build with JG_FUZZ=ON)" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir/findings" "$dir/corpus" "$dir/logs"
passed=0 failed=0 n=0
while IFS= read -r bin; do
  [ -n "$bin" ] || continue
  name=$(basename "$bin"); target=${name#fuzz_}; n=$((n + 1))
  seeds="$src/tests/fuzz/corpus/$target"
  work="$dir/corpus/$target"
  mkdir -p "$work"
  log="$dir/logs/$name.log"
  common=(-timeout=10 -rss_limit_mb=4096 -artifact_prefix="$dir/findings/$target-" -print_final_stats=1)
  ok=1
  if [ "$mode" = check ]; then
    # regression: each committed input once
    if ! "$bin" "${common[@]}" "$seeds"/* > "$log" 2>&1; then ok=0; fi
    # then a few seconds of fuzzing from the seeds, new inputs into the build tree only
    if [ "$ok" = 1 ] && ! "$bin" "${common[@]}" -max_total_time="$seconds" "$work" "$seeds" >> "$log" 2>&1; then ok=0; fi
  else
    if ! "$bin" "${common[@]}" -max_total_time="$seconds" "$work" "$seeds" > "$log" 2>&1; then ok=0; fi
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ "$ok" = 1 ]; then
    passed=$((passed + 1)); echo "fuzz $name ok: ${execs:-?} executions in ${seconds} s, ${cov:-cov ?}"
  else
    failed=$((failed + 1)); echo "fuzz $name FAILED (log: $log):"; grep -m5 -E 'ERROR|SUMMARY|Test unit written|deadly signal' "$log"
  fi
done < "$dir/jg-fuzzers.txt"
[ "$n" -gt 0 ] || { echo "fuzz: no targets in $dir/jg-fuzzers.txt" >&2; exit 2; }
echo "$passed $failed fuzz 0 $n" > "$dir/test-summary.txt"
echo "== fuzz ($mode, $n targets): $passed passed, $failed failed =="
[ "$failed" -eq 0 ]
