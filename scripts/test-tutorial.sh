#!/usr/bin/env bash
# Runs docs/TUTORIAL.md as a reader would (called by scripts/test-install.sh, after it has
# installed jitgrad; or by hand):
#
#   scripts/test-tutorial.sh PKG_CONFIG_DIR
#
# Every ```c file=NAME block becomes the file NAME and every ```sh block a command, run in
# order with bash -e in an empty directory, with PKG_CONFIG_PATH=PKG_CONFIG_DIR (the
# installed jitgrad.pc) and LD_LIBRARY_PATH its libdir, as section 0 tells a reader. ```console blocks (installation) are not run. Prints each command's
# output; the last line is "test-tutorial: PASS" unless a command failed.
set -euo pipefail
pc_dir=$(cd "${1:?usage: $0 PKG_CONFIG_DIR}" && pwd)
tutorial="$(cd "$(dirname "$0")/.." && pwd)/docs/TUTORIAL.md"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
awk -v dir="$work" '
  /^```c file=/ { file = dir "/" substr($2, 6); printf "" > file; mode = "c"; next }
  /^```sh$/     { mode = "sh"; next }
  /^```/        { if (mode == "c") close(file); mode = ""; next }
  mode == "c"   { print >> file }
  mode == "sh"  { print >> (dir "/tutorial.sh") }
' "$tutorial"
[ -s "$work/tutorial.sh" ] || { echo "test-tutorial: no sh blocks in $tutorial" >&2; exit 1; }
echo "test-tutorial: $(ls "$work" | grep -c '\.c$') files, $(wc -l < "$work/tutorial.sh") commands"
cd "$work"
libdir=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --variable=libdir jitgrad)
if PKG_CONFIG_PATH="$pc_dir" LD_LIBRARY_PATH="$libdir" bash -ex tutorial.sh; then
  echo "test-tutorial: PASS"
else
  echo "test-tutorial: FAIL (the command above failed)" >&2
  exit 1
fi
