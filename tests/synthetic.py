"""Tiny synthetic Fashion-MNIST stand-ins: IDX files and a learnable in-memory dataset."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import torch

from archlab.training.data import FashionMNIST


def idx_bytes(tensor: torch.Tensor) -> bytes:
    """The IDX encoding of a uint8 tensor: magic 0x0000 08 <ndim>, big-endian dims, data."""
    header = bytes([0, 0, 0x08, tensor.dim()]) + b"".join(
        struct.pack(">I", d) for d in tensor.shape
    )
    return header + tensor.contiguous().numpy().tobytes()


def write_idx_set(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> dict:
    """Write the four files (gzipped or plain); returns their uncompressed MD5s."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    tensors = {
        "train-images-idx3-ubyte": torch.randint(0, 256, (n_train, 28, 28), generator=g),
        "train-labels-idx1-ubyte": torch.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": torch.randint(0, 256, (n_test, 28, 28), generator=g),
        "t10k-labels-idx1-ubyte": torch.arange(n_test) % 10,
    }
    checksums = {}
    for name, tensor in tensors.items():
        blob = idx_bytes(tensor.to(torch.uint8))
        checksums[name] = hashlib.md5(blob).hexdigest()
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(blob))
        else:
            (folder / name).write_bytes(blob)
    return checksums


def learnable_dataset(n_train: int = 600, n_test: int = 200, seed: int = 0) -> FashionMNIST:
    """Class k is a bright 6×6 square at one of ten places, over faint noise: learnable in a
    few dozen iterations, so loss and accuracy have somewhere to go."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int):
        labels = torch.randint(0, 10, (n,), generator=g)
        images = torch.randint(0, 60, (n, 28, 28), generator=g)
        for i, k in enumerate(labels.tolist()):
            r, c = divmod(k, 5)
            images[i, 4 + 12 * r : 10 + 12 * r, 1 + 5 * c : 7 + 5 * c] += 180
        return images.to(torch.uint8), labels

    return FashionMNIST(*split(n_train), *split(n_test))
