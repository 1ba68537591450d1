"""The cost of ``archlab train --watch`` on the lecture's CNN, side by side in one process.

The same training steps (batch 100, channels_last, cross-entropy, backward, archlab's
fused Adam) with and without the dynamics recorder, in alternating rounds; each keeps its
fastest round. Target: the watched run ≤ 1.05× the plain one at ``--every 50`` (the
default of ``--watch``).

    python benchmarks/watch_cost.py [--every 50] [--rounds 6] [--steps 100] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import archlab
from archlab.training.dynamics import watch
from archlab.training.optim import make_optimizer as _optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=50, help="record every N (default: 50)")
    parser.add_argument("--rounds", type=int, default=6, help="turns each (default: 6)")
    parser.add_argument("--steps", type=int, default=100, help="steps per turn (default: 100)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--model", default="cnn", help="model spec (default: cnn)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(100, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (100,))
    loss_fn = nn.CrossEntropyLoss()
    net = archlab.create_model(args.model).to(memory_format=torch.channels_last).train()
    opt = _optimizer(net, 1e-3, torch.device("cpu"))

    def turn(watched: bool) -> float:
        began = time.perf_counter()
        if watched:
            with watch(net, opt, every=args.every):
                steps(net, opt)
        else:
            steps(net, opt)
        return time.perf_counter() - began

    def steps(net, opt) -> None:
        for _ in range(args.steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.item()  # the loop reads its loss each step
            loss.backward()
            opt.step()

    best = {False: float("inf"), True: float("inf")}
    turn(False)  # warm-up
    for _ in range(args.rounds):
        for watched in (False, True):
            best[watched] = min(best[watched], turn(watched))
    print(f"{args.model}, {args.steps} steps per turn, record every {args.every}:")
    print(f"  plain   {best[False]:.3f} s")
    print(f"  watched {best[True]:.3f} s")
    print(f"  ratio   {best[True] / best[False]:.3f}  (target ≤ 1.05)")


if __name__ == "__main__":
    main()
