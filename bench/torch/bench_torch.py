"""PyTorch's side of the comparison with jitgrad (bench/bench_fashion.c measures the same
things the same way; bench/torch/run.sh runs both and makes the ratios).

    python3 bench_torch.py                 every model, each in a process of its own
    python3 bench_torch.py --model M       one model in this process: mlp, cnn or rnn
    options: --steps N (30) --warmup N (5) --threads T (2)

Per model (models.py): Adam at the examples' rate, torch.set_num_threads(T). A step is
zero_grad(set_to_none=True), forward, cross entropy, backward, optimizer.step() and
loss.item(). Batch 128: `warmup` untimed steps, then `steps` timed ones; the epoch time is the
median step time times 60000 / 128 (a 60,000-image epoch, not a timed one). Batch 1, on the
same model and optimiser: 4x as many steps, median. Then the process's peak resident set
(ru_maxrss), covering the import, both runs and everything else. The data are 8 synthetic
batches (uniform pixels, labels i mod 10), as on jitgrad's side. One JSON line per figure, as
bench/bench_util.h prints them, with the allocator and OpenMP settings seen.

JG_TORCH_CHANNELS_LAST=1 puts the CNN in channels_last memory format (the NHWC layout oneDNN's
CPU convolutions prefer: here about 1.5x faster per step; run.sh's "tuned" config uses it).
JG_TORCH_CONFIG names the config in the output."""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

BATCH, PIXELS, CLASSES, N_BATCHES, EPOCH_IMAGES = 128, 784, 10, 8, 60000


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1


def config():
    """How this PyTorch runs: allocator, OpenMP wait policy, BLAS threads."""
    pre = os.environ.get("LD_PRELOAD", "")
    return {"allocator": "jemalloc" if "jemalloc" in pre else "glibc",
            "malloc_conf": os.environ.get("MALLOC_CONF", ""),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
            "config": os.environ.get("JG_TORCH_CONFIG", "as run"),
            "blas": blas_core_name()}


def blas_core_name():
    """The OpenBLAS core this process runs on (blas_core.py), or "not OpenBLAS"."""
    from blas_core import loaded_blas
    return loaded_blas()[1] or "not OpenBLAS"


def emit(name, value, unit, **extra):
    line = {"bench": name, "value": round(value, 6), "unit": unit}
    line.update(extra)
    print(json.dumps(line), flush=True)


def bench_model(name, steps, warmup, threads):
    rss_start = peak_rss_mb()
    import torch
    import torch.nn.functional as F
    from models import LR, MODELS
    rss_import = peak_rss_mb()
    torch.set_num_threads(threads)
    torch.manual_seed(7)
    model = MODELS[name]()
    channels_last = name == "cnn" and os.environ.get("JG_TORCH_CHANNELS_LAST") == "1"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR[name])
    gen = torch.Generator().manual_seed(42)
    xs = torch.rand(N_BATCHES * BATCH, PIXELS, generator=gen)
    ys = torch.arange(N_BATCHES * BATCH) % CLASSES

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def median_step(batch, warm, timed):
        times, loss = [], 0.0
        for i in range(warm + timed):
            b = i % N_BATCHES
            x, y = xs[b * batch:(b + 1) * batch], ys[b * batch:(b + 1) * batch]
            t0 = time.perf_counter()
            loss = step(x, y)
            if i >= warm:
                times.append(time.perf_counter() - t0)
        return statistics.median(times), loss

    common = dict(impl="pytorch", version=torch.__version__, model=name,
                  threads=torch.get_num_threads(), **config(),
                  memory_format="channels_last" if channels_last else "contiguous")
    s128, loss = median_step(BATCH, warmup, steps)
    s1, _ = median_step(1, 4 * warmup, 4 * steps)
    emit(f"fashion_{name}_epoch", s128 * EPOCH_IMAGES / BATCH, "s", **common, batch=BATCH,
         step_ms=round(1e3 * s128, 4), timed_steps=steps, epoch="median step x 60000/128",
         last_loss=round(loss, 6), load_avg_1m=loadavg())
    emit(f"fashion_{name}_step_b1", 1e3 * s1, "ms", **common, batch=1, timed_steps=4 * steps,
         load_avg_1m=loadavg())
    emit(f"fashion_{name}_peak_rss", peak_rss_mb(), "MB", **common, batch=BATCH,
         covers="import + batch-128 and batch-1 runs",
         rss_before_import_mb=round(rss_start, 1), rss_after_import_mb=round(rss_import, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["mlp", "cnn", "rnn"])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.steps < 1 or a.warmup < 0 or a.threads < 1:
        ap.error("steps and threads must be >= 1, warmup >= 0")
    if a.model:
        bench_model(a.model, a.steps, a.warmup, a.threads)
        return 0
    status = 0
    for m in ("mlp", "cnn", "rnn"):  # each in a process of its own: peaks do not mix
        status |= subprocess.call([sys.executable, __file__, "--model", m, "--steps",
                                   str(a.steps), "--warmup", str(a.warmup), "--threads",
                                   str(a.threads)])
    return status


if __name__ == "__main__":
    sys.exit(main())
