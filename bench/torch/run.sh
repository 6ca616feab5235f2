#!/usr/bin/env bash
# The PyTorch comparison (`make bench-torch`): the Fashion-MNIST MLP, CNN and LSTM trained by
# jitgrad (build/bench/bench_fashion) and by PyTorch (bench_torch.py, models.py), same
# architecture, batch, optimiser and thread count, in the same run.
#
#   bench/torch/run.sh [BUILD_DIR]        (default build; the Makefile builds it first)
#
# 1. Makes sure Debian's python3-torch, libopenblas0-pthread and libjemalloc2 are installed,
#    through scripts/setup.sh's JG_SETUP_EXTRA_PACKAGES (a no-op when they are). Without
#    OpenBLAS, python3-torch runs on the reference libblas3, 5-10x slower than it should be:
#    blas_core.py then refuses (no ratios against a misconfigured anchor). It prints the
#    OpenBLAS core PyTorch uses and times the AVX-512 cores this CPU runs; the tuned config
#    sets OPENBLAS_CORETYPE to the fastest (a CPU newer than the library, or an environment
#    that pins OPENBLAS_CORETYPE=Haswell as these machines do, runs an AVX2 core at half the
#    speed).
# 2. Checks once that jitgrad and PyTorch compute the same CNN loss and gradients, both in
#    f64 (bench_fashion --export, check_cnn.py): PASS or FAIL with the worst relative error;
#    then prints the f32 comparison for information.
#    Then the parity check of examples/from_pytorch (parity.py + from_pytorch_parity, one JSON
#    line per case into BUILD_DIR/parity.jsonl; train_cnn.py + from_pytorch_cnn): every output
#    and gradient within 1e-10 of PyTorch's, in f64.
# 3. JG_TORCH_ROUNDS rounds (default 3); in each, per model, one process each of jitgrad,
#    PyTorch tuned (jemalloc by LD_PRELOAD with MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1,
#    OMP_WAIT_POLICY=PASSIVE, the fastest OpenBLAS core, and the CNN in channels_last format,
#    oneDNN's fastest here) and
#    PyTorch as installed (none of those), in an order that rotates by round. PyTorch as
#    installed is slow enough here to time fewer steps (JG_TORCH_INSTALLED_STEPS, default 10;
#    the others 30).
# 4. compare.py: one JSON line per model and measurement (medians over the rounds, ratio =
#    tuned PyTorch / jitgrad) and a table. Raw lines stay in BUILD_DIR/bench-torch.jsonl.
# Exits 1 when the check fails or a run fails; a missed target is reported, not an error.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
rounds=${JG_TORCH_ROUNDS:-3}
installed_steps=${JG_TORCH_INSTALLED_STEPS:-10}
# Debian's interpreter, where python3-torch lives (a python3 earlier on PATH may lack it)
py=${JG_PYTHON:-/usr/bin/python3}

JG_SETUP_EXTRA_PACKAGES="python3-torch libopenblas0-pthread libjemalloc2 ${JG_SETUP_EXTRA_PACKAGES:-}" \
  bash scripts/setup.sh
jemalloc=$(dpkg-query -L libjemalloc2 2>/dev/null | grep '/libjemalloc\.so\.2$' | head -n 1)
if [ -z "$jemalloc" ] || [ ! -e "$jemalloc" ]; then
  echo "bench-torch: libjemalloc.so.2 not found (package libjemalloc2)" >&2
  exit 1
fi
jg="$build/bench/bench_fashion"
if [ ! -x "$jg" ]; then
  echo "bench-torch: $jg is not built (make build, or cmake --build $build)" >&2
  exit 1
fi
"$py" -c 'import torch, numpy' || { echo "bench-torch: $py cannot import torch" >&2; exit 1; }
echo "bench-torch: PyTorch $("$py" -c 'import torch; print(torch.__version__)'), $jemalloc," \
     "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# The BLAS: OpenBLAS or no comparison; the tuned config runs on its fastest core here.
blas_report=$(cd bench/torch && "$py" blas_core.py --best) || {
  echo "bench-torch: refusing to compare against PyTorch on a reference BLAS" >&2
  exit 1
}
echo "$blas_report"
blas_best=$(echo "$blas_report" | sed -n 's/^best //p')

status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "== check: the CNN's loss and gradients, jitgrad vs PyTorch, both in f64"
if "$jg" --export "$tmp" && (cd bench/torch && "$py" check_cnn.py "$tmp"); then :; else status=1; fi
echo "== the same in f32 (for information: rounding depends on the order of summation)"
mkdir -p "$tmp/f32"
"$jg" --export "$tmp/f32" --export-f32 1 && (cd bench/torch && "$py" check_cnn.py "$tmp/f32") || true

echo "== parity (f64): PyTorch's features (ties, GRU b_hn, LSTM states, gather, loss and pooling"
echo "   options, padding, layer norm) and a CNN trained in PyTorch, loaded from safetensors"
parity="$build/parity.jsonl"
if (cd examples/from_pytorch && "$py" parity.py "$tmp/parity.safetensors") &&
   "$build/from_pytorch_parity" "$tmp/parity.safetensors" | tee "$parity"; then :; else status=1; fi
if (cd examples/from_pytorch && "$py" train_cnn.py "$tmp/from_pytorch") &&
   "$build/from_pytorch_cnn" "$tmp/from_pytorch/model.safetensors" \
     "$tmp/from_pytorch/reference.safetensors"; then :; else status=1; fi

results="$build/bench-torch.jsonl"
: > "$results"
run_jitgrad() { "$jg" --model "$1"; }
run_tuned() {
  (cd bench/torch && env LD_PRELOAD="$jemalloc" MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 \
     OMP_WAIT_POLICY=PASSIVE OPENBLAS_CORETYPE="$blas_best" JG_TORCH_CHANNELS_LAST=1 \
     JG_TORCH_CONFIG=tuned \
     "$py" bench_torch.py --model "$1")
}
run_installed() {
  (cd bench/torch && env -u LD_PRELOAD -u MALLOC_CONF -u OMP_WAIT_POLICY -u OPENBLAS_CORETYPE \
     -u JG_TORCH_CHANNELS_LAST JG_TORCH_CONFIG=installed \
     "$py" bench_torch.py --model "$1" --steps "$installed_steps" --warmup 2)
}
sides=(jitgrad tuned installed)
for ((r = 1; r <= rounds; r++)); do
  for model in mlp cnn rnn; do
    for ((k = 0; k < 3; k++)); do
      side=${sides[$(((k + r - 1) % 3))]}
      echo "== round $r/$rounds: $model, $side (load $(cut -d' ' -f1 /proc/loadavg))"
      if ! "run_$side" "$model" | tee -a "$results"; then
        echo "bench-torch: the $side run of $model failed" >&2
        status=1
      fi
    done
  done
done
echo "== PyTorch comparison (medians over $rounds rounds; raw lines in $results)"
"$py" bench/torch/compare.py "$results" || status=1
exit $status
