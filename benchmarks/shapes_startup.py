"""`archlab shapes cnn` end to end against `python -c "import torch"` (the floor).

Runs both commands alternately in one process, several rounds, and prints the median
times and their ratio. Target: ratio ≤ 1.5.

    python benchmarks/shapes_startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _timing import time_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="runs of each (default: 7)")
    args = parser.parse_args()
    floor_cmd = [sys.executable, "-c", "import torch"]
    shapes_cmd = [sys.executable, "-m", "archlab", "shapes", "cnn"]
    time_command(floor_cmd)  # warm the file cache once
    floor, shapes = [], []
    for _ in range(args.rounds):
        floor.append(time_command(floor_cmd))
        shapes.append(time_command(shapes_cmd))
    f, s = statistics.median(floor), statistics.median(shapes)
    print(f"import torch         median {f:.2f} s  ({args.rounds} runs)")
    print(f"archlab shapes cnn   median {s:.2f} s  ({args.rounds} runs)")
    print(f"ratio {s / f:.2f}  (target ≤ 1.5)")


if __name__ == "__main__":
    main()
