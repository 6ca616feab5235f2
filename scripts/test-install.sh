#!/usr/bin/env bash
# jitgrad as others get it (run by tests/test_install.c in make check; also by hand):
#
#   scripts/test-install.sh BUILD_DIR [STEPS]
#
# 1. cmake --install into a fresh prefix; the installed tree has the versioned shared library
#    (SONAME libjitgrad.so.0), the static one, the header, jitgrad.pc and the CMake package,
#    and the shared library exports jg_ symbols only.
# 2. examples/consumer, copied out of the source tree, built three ways against the installed
#    files alone: its Makefile (pkg-config), its CMakeLists.txt (find_package), and statically
#    (pkg-config --static); each trains STEPS steps (default 100) and must beat 0.6 accuracy.
# 3. docs/TUTORIAL.md run as a reader would, against the installed files
#    (scripts/test-tutorial.sh).
# 4. the Debian packages (cpack): libjitgrad0's Depends from dpkg-shlibdeps, libjitgrad-dev's
#    files and Depends.
# Prints "test-install: PASS" last, or stops at the first failure with what went wrong.
set -euo pipefail
build=$(cd "${1:?usage: $0 BUILD_DIR [STEPS]}" && pwd)
steps=${2:-100}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-install: FAIL: $*" >&2; exit 1; }

prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log" || fail "cmake --install"
for f in include/jitgrad.h lib/libjitgrad.so lib/libjitgrad.so.0 lib/libjitgrad.so.0.1.0 \
         lib/libjitgrad.a lib/pkgconfig/jitgrad.pc lib/cmake/jitgrad/jitgradConfig.cmake \
         lib/cmake/jitgrad/jitgradConfigVersion.cmake lib/cmake/jitgrad/jitgradTargets.cmake; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
soname=$(readelf -d "$prefix/lib/libjitgrad.so.0.1.0" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libjitgrad.so.0 ] || fail "SONAME is '$soname', want libjitgrad.so.0"
others=$(nm -D --defined-only "$prefix/lib/libjitgrad.so.0.1.0" | awk '{print $3}' |
         grep -v -e '^jg_' -e '^JITGRAD_0$' || true)
[ -z "$others" ] || fail "exported symbols other than jg_*: $(echo $others | head -c 300)"
echo "test-install: installed into a fresh prefix; SONAME $soname; exports jg_ symbols only" \
     "($(nm -D --defined-only "$prefix/lib/libjitgrad.so.0.1.0" | grep -c ' jg_'))"

app="$work/consumer"
mkdir "$app" # the sources only: a reader's own build there must not leak in
cp "$src/examples/consumer/mlp.c" "$src/examples/consumer/Makefile" \
   "$src/examples/consumer/CMakeLists.txt" "$app/"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
unset LD_LIBRARY_PATH # it would override the consumers' run paths
run() { # name, binary: trains and checks the accuracy
  local out acc
  if ldd "$2" | grep -q 'libjitgrad.so' && ! ldd "$2" | grep -q "$prefix/lib/"; then
    fail "$1 loads a libjitgrad.so.0 other than the fresh prefix's"
  fi
  out=$("$2" --steps "$steps") || fail "$1: the consumer failed: $out"
  acc=$(echo "$out" | sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p')
  awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }' || fail "$1: accuracy '$acc' after $steps steps"
  echo "test-install: $1: $out"
}
# nothing from the source or build tree may be on the compile line
check_flags() {
  if grep -q -e "$src/include" -e "$src/src" -e "$build" "$1"; then
    fail "$2 reached into the source or build tree: $(cat "$1")"
  fi
}
make -C "$app" > "$work/make.log" 2>&1 || fail "make (pkg-config): $(cat "$work/make.log")"
check_flags "$work/make.log" "make"
run "pkg-config + make" "$app/consumer_mlp"
cmake -S "$app" -B "$app/build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.log" 2>&1 ||
  fail "cmake (find_package): $(cat "$work/cmake.log")"
cmake --build "$app/build" -- VERBOSE=1 > "$work/cmake-build.log" 2>&1 ||
  fail "cmake --build: $(cat "$work/cmake-build.log")"
check_flags "$work/cmake-build.log" "cmake"
run "find_package + cmake" "$app/build/consumer_mlp"
# static: the archive and what Libs.private / Requires.private name
static_libs=$(pkg-config --static --libs jitgrad | sed "s#-ljitgrad#$prefix/lib/libjitgrad.a#")
cc -std=c11 -O2 $(pkg-config --cflags jitgrad) -o "$app/consumer_static" "$app/mlp.c" \
   $static_libs > "$work/static.log" 2>&1 || fail "static link: $(cat "$work/static.log")"
if ldd "$app/consumer_static" | grep -q libjitgrad; then fail "static build links libjitgrad.so"; fi
run "pkg-config --static" "$app/consumer_static"

bash "$src/scripts/test-tutorial.sh" "$prefix/lib/pkgconfig" > "$work/tutorial.log" 2>&1 ||
  fail "the tutorial: $(tail -30 "$work/tutorial.log")"
echo "test-install: the tutorial: $(grep -c '^+ cc ' "$work/tutorial.log") programs built and run"

(cd "$build" && cpack -G DEB -B "$work/deb" > "$work/cpack.log" 2>&1) ||
  fail "cpack: $(cat "$work/cpack.log")"
rt=$(ls "$work"/deb/libjitgrad0_*.deb)
dev=$(ls "$work"/deb/libjitgrad-dev_*.deb)
rt_dep=$(dpkg-deb -f "$rt" Depends)
for d in libc6 libffi8 libjansson4 libllvm libnettle8 libpng16-16 zlib1g; do
  echo "$rt_dep" | grep -q "$d" || fail "libjitgrad0 does not depend on $d: $rt_dep"
done
rt_files=$(dpkg-deb -c "$rt") dev_files=$(dpkg-deb -c "$dev")
echo "$rt_files" | grep -q ' ./usr/lib/libjitgrad.so.0.1.0$' || fail "libjitgrad0 lacks the library"
dev_dep=$(dpkg-deb -f "$dev" Depends)
echo "$dev_dep" | grep -q 'libjitgrad0 (= ' || fail "libjitgrad-dev does not depend on libjitgrad0"
for f in ./usr/include/jitgrad.h ./usr/lib/libjitgrad.a ./usr/lib/pkgconfig/jitgrad.pc \
         ./usr/lib/cmake/jitgrad/jitgradConfig.cmake; do
  echo "$dev_files" | grep -q " $f\$" || fail "libjitgrad-dev lacks $f"
done
echo "test-install: $(basename "$rt"): Depends: $rt_dep"
echo "test-install: $(basename "$dev"): Depends: $dev_dep"
echo "test-install: PASS"
