#!/usr/bin/env bash
# Run every Criterion test binary of one build tree, or summarise several runs.
#
#   scripts/run-tests.sh BUILD_DIR              run the tests of BUILD_DIR
#   scripts/run-tests.sh BUILD_DIR --sanitize   same, for an ASan/UBSan build: also fail
#                                               on any sanitizer report in the output
#   scripts/run-tests.sh --summary DIR...       print one line per run, then the total
#                                               as a last line "N passed, N failed"
#
# The test list is BUILD_DIR/jg-tests.txt (written by CMake). Outputs:
#   BUILD_DIR/test-logs/<test>.log   output of each binary (stdout+stderr)
#   BUILD_DIR/test-output.log        all of it concatenated (the sanitizer log in --sanitize)
#   BUILD_DIR/test-summary.txt       "passed failed mode sanitizer_reports binaries"
# Criterion counts a test that leaks as passing (LeakSanitizer only reports at exit), so in
# --sanitize mode a binary whose output has a report is rerun one test at a time to find
# the culprits, which are then counted as failed.
#
# Environment: JG_TEST_JOBS (Criterion --jobs, default: nproc),
#              JG_TEST_TIMEOUT (seconds per binary, default 1800, 0 = none).
set -uo pipefail

SAN_PATTERN='ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:'
EXCERPT_LINES=150

die() { echo "run-tests: $*" >&2; exit 2; }

# ----------------------------------------------------------------------------- summary
if [ "${1:-}" = "--summary" ]; then
  shift
  total_p=0 total_f=0 status=0
  for dir in "$@"; do
    f="$dir/test-summary.txt"
    if [ -f "$f" ] && read -r p fl mode san nbin < "$f" && [[ "$p$fl$san" =~ ^[0-9]+$ ]]; then
      extra=""
      [ "$mode" = sanitize ] && extra=", $san sanitizer report(s)"
      what=binaries; [ "$mode" = fuzz ] && what="fuzz targets"
      echo "summary $dir ($mode): $p passed, $fl failed ($nbin $what$extra)"
      [ "$fl" -eq 0 ] && [ "$san" -eq 0 ] || status=1
    else
      echo "summary $dir: no results (build failed or tests not run); counted as 1 failed"
      p=0 fl=1 status=1
    fi
    total_p=$((total_p + p)) total_f=$((total_f + fl))
  done
  echo "$total_p passed, $total_f failed"
  exit "$status"
fi

# ----------------------------------------------------------------------------- run
[ $# -ge 1 ] || die "usage: $0 BUILD_DIR [--sanitize] | --summary DIR..."
build=${1%/}
sanitize=0
case "${2:-}" in
  --sanitize) sanitize=1 ;;
  "") ;;
  *) die "unknown flag '$2'" ;;
esac
[ -d "$build" ] || die "no build directory '$build'"
build=$(cd "$build" && pwd)
mode=release; [ "$sanitize" = 1 ] && mode=sanitize
jobs=${JG_TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
tmo=${JG_TEST_TIMEOUT:-1800}

logdir="$build/test-logs"
all_log="$build/test-output.log"
summary="$build/test-summary.txt"
rm -f "$summary"
rm -rf "$logdir"
mkdir -p "$logdir"
: > "$all_log"

if [ "$sanitize" = 1 ]; then
  # User-provided options come last so they can override ours.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
fi

manifest="$build/jg-tests.txt"
[ -f "$manifest" ] || die "$manifest missing: configure and build '$build' first"
mapfile -t bins < <(grep -v '^[[:space:]]*$' "$manifest")

# run_bin LOG BIN ARGS... : run from the build dir, stdin closed, with the timeout.
run_bin() {
  local log=$1; shift
  if [ "$tmo" != 0 ]; then
    (cd "$build" && exec timeout -k 10 "$tmo" "$@") > "$log" 2>&1 < /dev/null
  else
    (cd "$build" && exec "$@") > "$log" 2>&1 < /dev/null
  fi
}

# synthesis LOG : prints "tested passing" from Criterion's last Synthesis line, or fails.
synthesis() {
  local line
  line=$(sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -a 'Synthesis: Tested:' | tail -n 1)
  [[ "$line" =~ Tested:\ ([0-9]+)\ \|\ Passing:\ ([0-9]+) ]] || return 1
  echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
}

# list_tests BIN : "suite/test" per line from Criterion's --list (tree drawn in any charset).
list_tests() {
  (cd "$build" && "$1" --list < /dev/null 2>&1) | sed 's/\x1b\[[0-9;]*m//g' | awk '
    /^[A-Za-z0-9_]+: [0-9]+ tests?$/ { suite = $1; sub(/:$/, "", suite); next }
    suite != "" && !/\(skipped\)[[:space:]]*$/ {
      name = $0; sub(/^[^A-Za-z0-9_]+/, "", name); sub(/[[:space:]]+$/, "", name)
      if (name != "") print suite "/" name
    }'
}

echo "== tests: $build ($mode, ${#bins[@]} binaries, --jobs $jobs) =="
[ "$sanitize" = 1 ] && echo "   ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"

tot_p=0 tot_f=0 tot_san=0 status=0
for bin in "${bins[@]}"; do
  name=$(basename "$bin")
  log="$logdir/$name.log"
  notes=()
  p=0 f=0 san=0 secs=0

  if [ ! -x "$bin" ]; then
    echo "run-tests: $bin missing (not built?)" > "$log"
    f=1 notes+=("executable missing")
    rc=127
  else
    t0=$(date +%s.%N)
    run_bin "$log" "$bin" -j"$jobs"
    rc=$?
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    if counts=$(synthesis "$log"); then
      read -r tested p <<< "$counts"
      f=$((tested - p))
    else
      f=1 notes+=("no Criterion synthesis line (exit status $rc)")
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      notes+=("timed out after ${tmo}s")
      [ "$f" -gt 0 ] || f=1
    elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
      f=1 notes+=("exit status $rc")
    fi

    if [ "$sanitize" = 1 ] && grep -Eqa "$SAN_PATTERN" "$log"; then
      san=$(grep -Eca "$SAN_PATTERN" "$log")
      # Find which tests produce the report(s): one test at a time.
      culprits=() moved=0
      ilog="$logdir/$name.isolate.log"
      : > "$ilog"
      while IFS= read -r t; do
        one="$logdir/.one.log"
        run_bin "$one" "$bin" --filter "$t" -j1
        if grep -Eqa "$SAN_PATTERN" "$one"; then
          culprits+=("$t")
          if c1=$(synthesis "$one"); then
            read -r _ p1 <<< "$c1"
            moved=$((moved + p1))     # counted as passing by Criterion: make it a failure
          fi
          { echo "===== $t"; cat "$one"; } >> "$ilog"
        fi
      done < <(list_tests "$bin")
      rm -f "$logdir/.one.log"
      if [ "${#culprits[@]}" -gt 0 ]; then
        moved=$(( moved > p ? p : moved ))
        p=$((p - moved)) f=$((f + moved))
        notes+=("sanitizer report from: ${culprits[*]}")
      else
        [ "$f" -gt 0 ] || f=1
        notes+=("sanitizer report not reproduced by any single test (see log)")
      fi
    fi
  fi

  { echo "===== $name (exit $rc)"; cat "$log"; echo; } >> "$all_log"
  tot_p=$((tot_p + p)) tot_f=$((tot_f + f)) tot_san=$((tot_san + san))
  if [ "$f" -eq 0 ] && [ "$san" -eq 0 ]; then
    printf '  %-32s ok    %d passed  (%ss)\n' "$name" "$p" "$secs"
  else
    status=1
    printf '  %-32s FAIL  %d passed, %d failed%s\n' "$name" "$p" "$f" \
      "$( [ "$san" -gt 0 ] && echo ", $san sanitizer report line(s)")"
    for n in "${notes[@]}"; do echo "      $n"; done
    n_lines=$(wc -l < "$log")
    sed -n "1,${EXCERPT_LINES}p" "$log" | sed 's/^/    | /'
    [ "$n_lines" -le "$EXCERPT_LINES" ] || echo "    | ... ($((n_lines - EXCERPT_LINES)) more lines)"
    echo "      full log: $log"
  fi
done

echo "$tot_p $tot_f $mode $tot_san ${#bins[@]}" > "$summary"
extra=""; [ "$sanitize" = 1 ] && extra=", $tot_san sanitizer report line(s)"
echo "== $build ($mode): $tot_p passed, $tot_f failed$extra; output: $all_log =="
exit "$status"
