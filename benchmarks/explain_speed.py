"""`archlab explain --index 42` (all methods) end to end, against `python -c "import torch"`.

Needs trained checkpoints (`archlab train`); pass --runs for another folder. Runs both
commands alternately and prints the medians. Target: the explain command well under 10 s
on a 2-core CPU.

    python benchmarks/explain_speed.py [--runs runs] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from _timing import time_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="trained checkpoints (default: runs)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (default: 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        explain = [
            sys.executable,
            "-m",
            "archlab",
            "explain",
            "--index",
            "42",
            "--runs",
            args.runs,
            "--out",
            f"{tmp}/explain.png",
        ]
        floor = [sys.executable, "-c", "import torch"]
        time_command(floor)
        times = {"import torch": [], "archlab explain --index 42": []}
        for _ in range(args.rounds):
            times["import torch"].append(time_command(floor))
            times["archlab explain --index 42"].append(time_command(explain))
    for label, values in times.items():
        print(f"{label:<28} median {statistics.median(values):.2f} s  ({args.rounds} runs)")


if __name__ == "__main__":
    main()
