"""Checks that jitgrad and PyTorch compute the same loss and gradients for the CNN, with the
same weights and batch: `bench_fashion --export DIR` writes the weights (as initialised), a
batch x, y, and jitgrad's loss and gradients (training mode: batchnorm on batch statistics;
dropout 0) as .npy; this loads the weights into models.CNN(dropout=0), runs the same batch
in training mode, and compares loss, every gradient and the updated batchnorm running
statistics against PyTorch in float32 (what the benchmark times) and in float64. The error
of an array is max|jitgrad - torch| / max|torch|: relative to the array's scale, as an
elementwise ratio is meaningless where a value crosses zero. The verdict compares like with
like: jitgrad's f64 export (the default) against PyTorch in f64, which tests that both
compute the same function; an f32 export (--export-f32 1) against PyTorch in f32, where
rounding differs with the order of summation (the first convolution's weight gradient sums
100,000 products that largely cancel: PyTorch's own f32 result is 2e-4 off its f64 one).

    python3 check_cnn.py DIR [--tol 1e-4]

Prints PASS or FAIL with the worst error and exits 0 or 1."""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from models import CNN

# jitgrad name -> (PyTorch parameter or buffer, transposed: dense weights are [in, out] in
# jitgrad and [out, in] in nn.Linear; convolution weights are [out, in, 3, 3] in both)
NAMES = {
    "conv1.w": ("conv1.weight", False), "conv1.gamma": ("bn1.weight", False),
    "conv1.beta": ("bn1.bias", False), "conv1.running_mean": ("bn1.running_mean", False),
    "conv1.running_var": ("bn1.running_var", False),
    "conv2.w": ("conv2.weight", False), "conv2.gamma": ("bn2.weight", False),
    "conv2.beta": ("bn2.bias", False), "conv2.running_mean": ("bn2.running_mean", False),
    "conv2.running_var": ("bn2.running_var", False),
    "fc1.w": ("fc1.weight", True), "fc1.bias": ("fc1.bias", False),
    "fc2.w": ("fc2.weight", True), "fc2.bias": ("fc2.bias", False),
}


def load(d, name):
    return np.load(os.path.join(d, name + ".npy"))


def torch_side(d, dtype):
    """PyTorch's loss, gradients and running statistics for the exported weights and batch,
    by jitgrad name."""
    model = CNN(dropout=0.0).to(dtype)
    state = model.state_dict()
    for jname, (tname, transposed) in NAMES.items():
        a = load(d, jname)
        a = a.T if transposed else a
        if tuple(state[tname].shape) != a.shape:
            sys.exit(f"check_cnn: {jname} has shape {a.shape}, {tname} {tuple(state[tname].shape)}")
        state[tname] = torch.from_numpy(np.ascontiguousarray(a)).to(dtype)
    model.load_state_dict(state)
    model.train()
    x = torch.from_numpy(load(d, "x")).to(dtype)
    y = torch.from_numpy(load(d, "y")).long()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    out = {"loss": loss.detach().reshape(1).double().numpy()}
    for jname, (tname, transposed) in NAMES.items():
        if tname in params:
            g = params[tname].grad.double().numpy()
            out["grad." + jname] = g.T if transposed else g
        elif "running" in tname:
            out["after." + jname] = buffers[tname].double().numpy()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ref32, ref64 = torch_side(a.dir, torch.float32), torch_side(a.dir, torch.float64)
    worst, worst_name, worst64 = 0.0, "", 0.0
    jg_f64 = load(a.dir, "loss").dtype == np.float64
    print(f"{'array':28s} {'shape':>16s} {'vs torch f32':>13s} {'vs torch f64':>13s} "
          f"{'torch f32 vs f64':>17s}")
    for key in ref32:
        path = os.path.join(a.dir, key + ".npy")
        if not os.path.exists(path):
            sys.exit(f"check_cnn: {path} is missing (run bench_fashion --export {a.dir})")
        jg = load(a.dir, key).astype(np.float64).reshape(ref32[key].shape)

        def err(ref):
            scale = np.max(np.abs(ref))
            return float(np.max(np.abs(jg - ref)) / (scale if scale > 0 else 1.0))

        e32, e64 = err(ref32[key]), err(ref64[key])
        s = np.max(np.abs(ref64[key]))
        t = float(np.max(np.abs(ref32[key] - ref64[key])) / (s if s > 0 else 1.0))
        print(f"{key:28s} {str(jg.shape):>16s} {e32:13.2e} {e64:13.2e} {t:17.2e}")
        e = e64 if jg_f64 else e32
        if e > worst:
            worst, worst_name = e, key
        worst64 = max(worst64, e64)
    ok = worst <= a.tol
    side = "f64 vs torch f64" if jg_f64 else "f32 vs torch f32"
    print(f"check_cnn: {'PASS' if ok else 'FAIL'}: loss {float(load(a.dir, 'loss')[0]):.6f} "
          f"(torch {float(ref64['loss'][0]):.6f}); worst relative error {worst:.2e} "
          f"({worst_name}), jitgrad {side}; tolerance {a.tol:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
