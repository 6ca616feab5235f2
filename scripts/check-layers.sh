#!/usr/bin/env bash
# The layering check: reads every #include "..." of src/ and fails when a file includes one
# of a higher layer, or when includes form a cycle (between files or between folders).
#
#   scripts/check-layers.sh [SRC_DIR]     (default: the src/ beside this script)
#
# The layers, bottom first; a folder may include its own files and those of lower layers
# (docs/ARCHITECTURE.md says what each holds):
LAYERS=(util graph ops compiler exec jit program train)
# io sits beside the stack and looks only at the IR (and the utilities):
IO_MAY_INCLUDE=(util graph io)
# "jitgrad.h" (include/) is the public API: every layer may include it.
set -uo pipefail

src=${1:-$(cd "$(dirname "$0")/../src" && pwd)}
[ -d "$src" ] || { echo "check-layers: no directory '$src'" >&2; exit 2; }

rank_of() { # folder -> rank, or empty when unknown
  local i
  for i in "${!LAYERS[@]}"; do [ "${LAYERS[$i]}" = "$1" ] && { echo "$i"; return; }; done
}

bad=0 edges=""
report() { echo "check-layers: $*"; bad=1; }

while IFS= read -r file; do
  rel=${file#"$src"/}
  dir=${rel%%/*}
  [ "$dir" != "$rel" ] || { report "$rel: not in a layer folder"; continue; }
  if [ "$dir" != io ] && [ -z "$(rank_of "$dir")" ]; then
    report "$rel: folder '$dir' is not a layer (add it to LAYERS and docs/ARCHITECTURE.md)"
    continue
  fi
  while IFS=: read -r line inc; do
    [ "$inc" = jitgrad.h ] && continue
    if [[ "$inc" == */* ]]; then target=$inc; else target=$dir/$inc; fi
    [ -f "$src/$target" ] || { report "$rel:$line: includes \"$inc\", which is not in src/"; continue; }
    edges+="$rel $target"$'\n'
    to=${target%%/*}
    [ "$to" = "$dir" ] && continue
    if [ "$dir" = io ]; then
      [[ " ${IO_MAY_INCLUDE[*]} " == *" $to "* ]] ||
        report "$rel:$line: io includes \"$inc\" ($to): io looks only at ${IO_MAY_INCLUDE[*]}"
    elif [ "$to" = io ]; then
      report "$rel:$line: includes \"$inc\": io is beside the layers, none of them includes it"
    else
      r_from=$(rank_of "$dir") r_to=$(rank_of "$to")
      [ -n "$r_to" ] || { report "$rel:$line: \"$inc\" is in '$to', not a layer"; continue; }
      [ "$r_to" -lt "$r_from" ] ||
        report "$rel:$line: $dir includes \"$inc\" from $to, a higher layer"
    fi
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" |
           sed 's/^\([0-9]*\):[^"]*"\([^"]*\)".*/\1:\2/')
done < <(find "$src" -type f \( -name '*.c' -o -name '*.h' -o -name '*.def' \) | sort)

# Cycles between files (within a folder the rank rule cannot see them); tsort names them.
if [ -n "$edges" ]; then
  loops=$(printf '%s' "$edges" | tsort 2>&1 >/dev/null | grep -v 'input contains a loop')
  [ -z "$loops" ] || report "include cycle between files:"$'\n'"$loops"
fi

if [ "$bad" -ne 0 ]; then
  echo "check-layers: FAILED (layers, bottom first: ${LAYERS[*]}; io beside them)"
  exit 1
fi
echo "check-layers: ok ($(printf '%s' "$edges" | grep -c .) includes; layers ${LAYERS[*]}; io beside)"
