#!/usr/bin/env bash
# Install the Debian packages jitgrad needs to build, test and run its demo.
# Idempotent: when everything is present it prints one line and never touches apt.
#
#   scripts/setup.sh           install what is missing (root, or passwordless sudo)
#   scripts/setup.sh --check   only report; exit 1 if something is missing
#
# Environment:
#   JG_SETUP_EXTRA_PACKAGES  extra package names (space separated) to require too
set -euo pipefail

# Required packages. Add new ones here. The word lists serve the lessons (examples/lessons).
JG_PACKAGES=(
  cmake pkg-config make gcc
  dpkg-dev binutils file doxygen
  libffi-dev libcriterion-dev zlib1g-dev libpng-dev nettle-dev libjansson-dev
  clang-14 libfuzzer-14-dev
  dataset-fashion-mnist
  wamerican wngerman wfrench wspanish witalian wdutch wportuguese wswedish
)
# LLVM (for llvm-config): any one of these satisfies it; the first is installed if none is.
JG_LLVM_PACKAGES=(llvm-dev llvm-19-dev llvm-18-dev llvm-17-dev llvm-16-dev llvm-15-dev llvm-14-dev)

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) echo "setup: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

read -r -a extra_packages <<< "${JG_SETUP_EXTRA_PACKAGES:-}"

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup: dpkg-query not found (not Debian?); skipping. Install by hand:" \
       "${JG_PACKAGES[*]} ${extra_packages[*]} and an LLVM 14..19 dev package." >&2
  exit 0
fi

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for pkg in "${JG_PACKAGES[@]}" "${extra_packages[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done
have_llvm=0
for pkg in "${JG_LLVM_PACKAGES[@]}"; do
  if is_installed "$pkg"; then have_llvm=1; break; fi
done
[ "$have_llvm" = 1 ] || missing+=("${JG_LLVM_PACKAGES[0]}")

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

install_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$check_only" = 1 ]; then
  echo "setup: missing: ${missing[*]}" >&2
  echo "setup: to install, run as root: $install_cmd" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "setup: error: missing packages: ${missing[*]}" >&2
  echo "setup: not root and no passwordless sudo; run as root:" >&2
  echo "  $install_cmd" >&2
  exit 1
fi

echo "setup: installing: ${missing[*]}"
"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"

still=()
for pkg in "${missing[@]}"; do
  is_installed "$pkg" || still+=("$pkg")
done
if [ "${#still[@]}" -ne 0 ]; then
  echo "setup: error: still not installed after apt-get: ${still[*]}" >&2
  exit 1
fi
echo "setup: installed: ${missing[*]}"
