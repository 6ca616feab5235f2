"""Trains a small CNN in PyTorch on Fashion-MNIST (Debian's dataset-fashion-mnist) and saves
what examples/from_pytorch/cnn.c needs to reproduce it in C:

  OUT/model.safetensors      the trained state_dict (float32, as PyTorch keeps it)
  OUT/reference.safetensors  64 test images, their labels, and PyTorch's logits, loss and
                             gradients (of the loss, w.r.t. every parameter and the images),
                             computed in float64 in evaluation mode

    python3 train_cnn.py OUT [--steps 300]

The model uses options a plain port would get wrong: batchnorm's running statistics, PyTorch's
[out, in] Linear weight, and average pooling with ceil_mode and count_include_pad=False."""
import argparse
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import safetensors_np

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)                  # 14x14
        x = F.avg_pool2d(F.relu(self.conv2(x)), 3, stride=2, padding=1, ceil_mode=True,
                         count_include_pad=False)                             # 8x8
        return self.fc(x.flatten(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=300)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    xs = torch.tensor(idx("train-images-idx3-ubyte.gz"), dtype=torch.float32)[:, None] / 255
    ys = torch.tensor(idx("train-labels-idx1-ubyte.gz"), dtype=torch.int64)
    xt = torch.tensor(idx("t10k-images-idx3-ubyte.gz"), dtype=torch.float32)[:, None] / 255
    yt = torch.tensor(idx("t10k-labels-idx1-ubyte.gz"), dtype=torch.int64)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for step in range(a.steps):
        i = torch.randint(0, len(xs), (128,))
        loss = F.cross_entropy(model(xs[i]), ys[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    print(f"train_cnn: {a.steps} steps, test accuracy {acc:.4f}")
    safetensors_np.save(os.path.join(a.out, "model.safetensors"),
                        safetensors_np.from_torch(model.state_dict()), {"format": "pt"})
    # the reference, in float64: the same weights, exactly (f32 -> f64)
    model.double()
    model.zero_grad(set_to_none=True)  # the last training step's gradients would add in
    x = xt[:64].double().requires_grad_()
    y = yt[:64]
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    ref = {"x": x.detach().numpy(), "y": y.double().numpy(), "logits": logits.detach().numpy(),
           "loss": loss.detach().numpy().reshape(1), "grad.x": x.grad.numpy()}
    for name, p in model.named_parameters():
        ref["grad." + name] = p.grad.numpy()
    safetensors_np.save(os.path.join(a.out, "reference.safetensors"), ref)
    print(f"train_cnn: wrote {a.out}/model.safetensors and {a.out}/reference.safetensors")


if __name__ == "__main__":
    sys.exit(main())
