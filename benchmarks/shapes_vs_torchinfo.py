"""`archlab.trace_shapes` against `torchinfo.summary` on torchvision models, side by side.

Both run in one process, alternately, on the same model object and the same per-image
input (torchinfo with its usual batch of 1; archlab traces its batch of 2), after one
warm-up call each. Prints the median wall-clock and CPU time of each and their ratios.
Target: ratio ≤ 1.

    python benchmarks/shapes_vs_torchinfo.py [--rounds 5] [--models resnet18 mobilenet_v2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torchvision
from torchinfo import summary

import archlab

MODELS = ("resnet18", "mobilenet_v2", "densenet121")


def _seconds(fn) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call (CPU time is steadier on a shared machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs of each (default: 5)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="torchvision names")
    args = parser.parse_args()
    print(
        f"{'model':<14} {'rows':>5} {'torchinfo':>10} {'archlab':>9} {'ratio':>6}"
        f" {'CPU torchinfo':>14} {'CPU archlab':>12} {'CPU ratio':>10}"
    )
    for name in args.models:
        model = getattr(torchvision.models, name)().eval()
        shape = (3, 224, 224)

        def ours(model=model, shape=shape):
            report = archlab.trace_shapes(model, shape)
            assert report.ok, report.error
            return report

        def theirs(model=model, shape=shape):
            summary(model, input_size=(1, *shape), verbose=0, device="cpu", mode="eval")

        rows = len(ours().layers)
        theirs()
        mine, other = [], []
        for _ in range(args.rounds):
            other.append(_seconds(theirs))
            mine.append(_seconds(ours))
        a, b = (statistics.median(t[0] for t in runs) for runs in (mine, other))
        ca, cb = (statistics.median(t[1] for t in runs) for runs in (mine, other))
        print(
            f"{name:<14} {rows:>5} {b:>9.2f}s {a:>8.2f}s {a / b:>6.2f}"
            f" {cb:>13.2f}s {ca:>11.2f}s {ca / cb:>10.2f}"
        )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; target ratio ≤ 1")


if __name__ == "__main__":
    main()
