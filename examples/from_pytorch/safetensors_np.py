"""The safetensors format in a few lines of numpy (Debian packages no safetensors for Python):
save(path, {name: array}) and load(path) -> {name: array}. The layout: a u64 little-endian
header length, a JSON header (name -> dtype, shape, data_offsets), then the raw
little-endian data. save writes to a temporary name and renames it over path."""
import json
import os
import struct

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
          "I32": np.int32}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def save(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        blob = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {name: np.frombuffer(data[base + e["data_offsets"][0]:base + e["data_offsets"][1]],
                                dtype=np.dtype(DTYPES[e["dtype"]]).newbyteorder("<"))
            .reshape(e["shape"]) for name, e in header.items()}


def from_torch(state_dict):
    """A state_dict as numpy arrays (what save takes)."""
    return {k: v.detach().cpu().numpy() for k, v in state_dict.items()}
