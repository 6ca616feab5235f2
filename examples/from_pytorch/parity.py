"""PyTorch's side of the parity check (examples/from_pytorch/parity.c): for each feature where
a port from PyTorch could go wrong, inputs, weights and PyTorch's outputs and gradients, all
float64, in one safetensors file (names "<case>.<tensor>"; integer tensors stored as F64).

    python3 parity.py OUT.safetensors

Each case's loss is sum(output * r) with a random r, so every gradient element is exercised."""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import safetensors_np

torch.manual_seed(1)
torch.set_default_dtype(torch.float64)
out = {}


def put(case, **tensors):
    for k, v in tensors.items():
        v = v.detach() if torch.is_tensor(v) else torch.tensor(v)
        out[f"{case}.{k}"] = v.double().contiguous().numpy()


def leaf(t):
    return t.clone().requires_grad_()


def weighted(y, name, case):
    r = torch.randn_like(y)
    put(case, **{name: r})
    return (y * r).sum()


# max pooling and max reductions on data full of ties (post-ReLU zeros)
x = leaf(torch.randint(0, 3, (2, 3, 6, 6)).double() / 2)
y1 = F.max_pool2d(x, 2)
y2 = F.max_pool2d(x, 3, stride=2, padding=1)
(weighted(y1, "r1", "pool") + weighted(y2, "r2", "pool")).backward()
put("pool", x=x, y1=y1, y2=y2, gx_first=x.grad)
x.grad = None
y3 = x.unfold(2, 2, 2).unfold(3, 2, 2).amax(dim=(-2, -1))  # amax splits ties evenly
weighted(y3, "r3", "pool").backward()
put("pool", y3=y3, gx_split=x.grad)

m = leaf(torch.randint(0, 3, (4, 6)).double())
a = torch.max(m, dim=1).values
(weighted(a, "r1", "max") + weighted(torch.amax(m, dim=0), "r2", "max")).backward()
put("max", x=m, gx=m.grad)

# GRU with b_hn (PyTorch's formulation), an initial state, the final state
gru = nn.GRU(3, 4, batch_first=True)
with torch.no_grad():
    for p in gru.parameters():
        p.uniform_(-0.8, 0.8)
x = leaf(torch.randn(2, 5, 3))
h0 = leaf(torch.randn(1, 2, 4))
seq, hn = gru(x, h0)
(weighted(seq, "r1", "gru") + weighted(hn, "r2", "gru")).backward()
put("gru", x=x, h0=h0, seq=seq, hn=hn, gx=x.grad, gh0=h0.grad)
for name, p in gru.named_parameters():
    put("gru", **{name: p, "g_" + name: p.grad})

# bidirectional LSTM from (h0, c0), returning (h_n, c_n)
lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True)
with torch.no_grad():
    for p in lstm.parameters():
        p.uniform_(-0.8, 0.8)
x = leaf(torch.randn(2, 5, 3))
h0, c0 = leaf(torch.randn(2, 2, 4)), leaf(torch.randn(2, 2, 4))
seq, (hn, cn) = lstm(x, (h0, c0))
(weighted(seq, "r1", "lstm") + weighted(hn, "r2", "lstm") + weighted(cn, "r3", "lstm")).backward()
put("lstm", x=x, h0=h0, c0=c0, seq=seq, hn=hn, cn=cn, gx=x.grad, gh0=h0.grad, gc0=c0.grad)
for name, p in lstm.named_parameters():
    put("lstm", **{name: p, "g_" + name: p.grad})

# gather with repeated indices
x = leaf(torch.randn(3, 5))
idx = torch.tensor([[0, 4, 4, 1], [2, 2, 2, 2], [3, 0, 1, 4]])
y = torch.gather(x, 1, idx)
weighted(y, "r", "gather").backward()
put("gather", x=x, idx=idx, y=y, gx=x.grad)

# losses with options
x = leaf(torch.randn(6, 5))
lab = torch.tensor([0, 4, -100, 2, 2, 1])
w = torch.rand(5) + 0.5
ce = {red: F.cross_entropy(x, lab, weight=w, ignore_index=-100, reduction=red)
      for red in ("mean", "sum", "none")}
(ce["mean"] + 0.3 * ce["sum"] + weighted(ce["none"], "r", "ce")).backward()
put("ce", x=x, labels=lab, weight=w, mean=ce["mean"].reshape(1), sum=ce["sum"].reshape(1),
    none=ce["none"], gx=x.grad)

x = leaf(torch.randn(4, 5) * 3)
t = torch.rand(4, 5)
pw, bw = torch.rand(5) * 3, torch.rand(4, 1) + 0.5
bce = {red: F.binary_cross_entropy_with_logits(x, t, weight=bw, pos_weight=pw, reduction=red)
       for red in ("mean", "sum", "none")}
(bce["mean"] + 0.3 * bce["sum"] + weighted(bce["none"], "r", "bce")).backward()
put("bce", x=x, t=t, pos_weight=pw, weight=bw, mean=bce["mean"].reshape(1),
    sum=bce["sum"].reshape(1), none=bce["none"], gx=x.grad)

a, b = leaf(torch.randn(3, 4)), torch.randn(3, 4)
ms, mn = F.mse_loss(a, b, reduction="sum"), F.mse_loss(a, b, reduction="none")
(ms + weighted(mn, "r", "mse")).backward()
put("mse", a=a, b=b, sum=ms.reshape(1), none=mn, ga=a.grad)

x = leaf(torch.linspace(-30, 30, 41))
y = F.softplus(x, beta=2, threshold=10)
weighted(y, "r", "softplus").backward()
put("softplus", x=x, y=y, gx=x.grad)

# pooling options, asymmetric padding, layer norm over two dimensions
x = leaf(torch.randn(2, 3, 7, 7))
ya = F.avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
yb = F.avg_pool2d(x, 2, ceil_mode=True)
ym = F.max_pool2d(x, 2, ceil_mode=True)
(weighted(ya, "r1", "pool2") + weighted(yb, "r2", "pool2") + weighted(ym, "r3", "pool2")).backward()
put("pool2", x=x, ya=ya, yb=yb, ym=ym, gx=x.grad)

x, w, b = leaf(torch.randn(2, 3, 6, 6)), leaf(torch.randn(4, 3, 2, 2)), leaf(torch.randn(4))
y = F.conv2d(F.pad(x, (1, 0, 0, 1)), w, b)  # left 1, right 0, top 0, bottom 1
weighted(y, "r", "conv").backward()
put("conv", x=x, w=w, b=b, y=y, gx=x.grad, gw=w.grad, gb=b.grad)

ln = nn.LayerNorm([4, 5])
with torch.no_grad():
    ln.weight.uniform_(0.5, 1.5)
    ln.bias.uniform_(-1, 1)
x = leaf(torch.randn(3, 4, 5))
y = ln(x)
weighted(y, "r", "ln").backward()
put("ln", x=x, gamma=ln.weight, beta=ln.bias, y=y, gx=x.grad, ggamma=ln.weight.grad,
    gbeta=ln.bias.grad)

safetensors_np.save(sys.argv[1], out, {"torch": torch.__version__})
print(f"parity.py: {len(out)} tensors written to {sys.argv[1]}")
