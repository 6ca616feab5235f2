#!/usr/bin/env bash
# Run the lesson programs (examples/lessons) and print a summary table.
#
#   scripts/lessons.sh BUILD_DIR [--quick] [NN ...]
#
# Runs every lesson listed in BUILD_DIR/jg-lessons.txt (or only the numbers given), in full
# mode unless --quick, with images and plots in BUILD_DIR/lessons-out. Each lesson's output
# goes to BUILD_DIR/lessons-out/NN.log; the summary shows its verdict line, the seconds it
# took and the files it wrote. Exit status 1 if a lesson failed to run or printed no verdict.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [--quick] [NN ...]" >&2; exit 2; }
build=${1%/}; shift
quick=""
picked=()
for a in "$@"; do
  case "$a" in
    --quick) quick=--quick ;;
    [0-9]|[0-9][0-9]) picked+=("$(printf '%02d' "$((10#$a))")") ;;
    *) echo "lessons: unknown argument '$a'" >&2; exit 2 ;;
  esac
done
manifest="$build/jg-lessons.txt"
[ -f "$manifest" ] || { echo "lessons: $manifest missing: build first" >&2; exit 2; }
out="$build/lessons-out"
mkdir -p "$out"

status=0
summary=()
while read -r bin; do
  [ -n "$bin" ] || continue
  name=$(basename "$bin"); nn=${name#lesson_}; nn=${nn%%_*}
  if [ ${#picked[@]} -gt 0 ] && [[ ! " ${picked[*]} " =~ " $nn " ]]; then continue; fi
  log="$out/$nn.log"
  stamp="$out/.stamp-$nn"; touch "$stamp"
  start=$(date +%s.%N)
  "$bin" $quick --out "$out" > "$log" 2>&1
  rc=$?
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  verdict=$(grep -E "^lesson $nn [^ ]+: (HOLDS|DOES NOT HOLD|ERROR)" "$log" | tail -1)
  files=$(find "$out" -maxdepth 1 -type f -newer "$stamp" \( -name '*.png' -o -name '*.svg' \) \
            -printf '%f ' 2>/dev/null)
  rm -f "$stamp"
  if [ $rc -ne 0 ] || [ -z "$verdict" ]; then
    verdict="lesson $nn: FAILED (exit $rc, see $log)"
    status=1
  fi
  echo "$verdict"
  summary+=("$(printf '%-4s %-7s %s' "$nn" "${secs}s" "$verdict${files:+  [files: $files]}")")
done < "$manifest"

echo
echo "summary ($( [ -n "$quick" ] && echo quick || echo full ) mode, files in $out):"
printf '%s\n' "${summary[@]}"
holds=$(printf '%s\n' "${summary[@]}" | grep -c ": HOLDS" || true)
echo "$holds of ${#summary[@]} lessons hold"
exit $status
