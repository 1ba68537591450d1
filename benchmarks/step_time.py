"""Time per training step of the zoo against the lecture's CNN, side by side in one process.

One step as ``archlab train`` takes it: a batch of 100 1×28×28 images in channels_last,
cross-entropy, backward, fused Adam. The models take turns (rounds of a few steps each),
and each keeps its fastest round, the one least disturbed by other load; the ratio to
``cnn`` sizes the zoo (each at most about 2× the CNN per step) and gives each card's
``train_time``: 3,000 steps scaled to the CNN's 148 s on an idle 2-core CPU.

On a busy machine wall-clock ratios swing by 2×; ``--cpu-time --threads 1`` measures the
CPU time of one thread instead, which other processes disturb far less.

    python benchmarks/step_time.py [--threads 2] [--rounds 8] [--cpu-time] [MODEL ...]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import archlab

CNN_SECONDS = 148  # `archlab train cnn`, 5 epochs, idle 2-core CPU (benchmarks/README.md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="models besides cnn (default: the zoo)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--rounds", type=int, default=8, help="turns per model (default: 8)")
    parser.add_argument("--steps", type=int, default=5, help="steps per turn (default: 5)")
    parser.add_argument("--cpu-time", action="store_true", help="process time, not wall")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.cpu_time else time.perf_counter
    torch.manual_seed(0)
    x = torch.randn(100, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (100,))
    loss_fn = nn.CrossEntropyLoss()

    def step(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    names = ["cnn", *(args.models or archlab.list_models("zoo"))]
    runs = {}
    for name in names:
        model = archlab.create_model(name).to(memory_format=torch.channels_last).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        for _ in range(3):  # warm-up: the first steps allocate and pick kernels
            step(model, optimizer)
        runs[name] = (model, optimizer, [])
    for _ in range(args.rounds):
        for model, optimizer, times in runs.values():
            start = clock()
            for _ in range(args.steps):
                step(model, optimizer)
            times.append((clock() - start) / args.steps)
    base = min(runs["cnn"][2])
    clock_name = f"{'CPU time' if args.cpu_time else 'wall'}, {args.threads} threads"
    print(f"fastest turn per model ({clock_name}); 5 epochs scaled to the CNN's {CNN_SECONDS} s")
    for name, (_, _, times) in runs.items():
        best = min(times)
        print(
            f"{name:10s}  {1000 * best:7.1f} ms/step  {best / base:5.2f}× cnn  "
            f"≈ {CNN_SECONDS * best / base:4.0f} s for 3,000 steps"
        )


if __name__ == "__main__":
    main()
