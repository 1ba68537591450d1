"""`archlab probes dnn cnn` and `archlab map cnn` (PCA) end to end, against
`python -c "import torch"`.

Needs the trained dnn and cnn (`archlab train dnn cnn`); pass --runs for another folder.
Runs each command alternately with the bare import and prints the medians, then where
probes' time goes inside the library (its ``timings`` dict: tracing, fitting). Targets
(issue 32), on 2 CPU cores: `archlab map cnn` ≤ 30 s with PCA for the 10,000 test images;
`archlab probes dnn cnn` ≤ 60 s (10,000 training and 10,000 test images per probe).

    OMP_NUM_THREADS=2 python benchmarks/probes.py [--runs runs] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from _timing import time_command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="trained runs (default: runs)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (default: 3)")
    args = parser.parse_args()
    archlab = [sys.executable, "-m", "archlab"]
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "import torch": [sys.executable, "-c", "import torch"],
            "archlab map cnn": [
                *archlab,
                "map",
                "cnn",
                "--runs",
                args.runs,
                "--out",
                f"{tmp}/m.png",
            ],
            "archlab probes dnn cnn": [
                *archlab,
                "probes",
                "dnn",
                "cnn",
                "--runs",
                args.runs,
                "--out",
                f"{tmp}/p.png",
            ],
        }
        time_command(commands["import torch"])  # a warm file cache for every round
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.rounds):
            for label, cmd in commands.items():
                times[label].append(time_command(cmd))
    targets = {"archlab map cnn": 30.0, "archlab probes dnn cnn": 60.0}
    for label, values in times.items():
        target = f"  (target ≤ {targets[label]:.0f} s)" if label in targets else ""
        print(f"{label:<24} median {statistics.median(values):6.2f} s{target}")
    import archlab

    timings: dict[str, float] = {}
    archlab.probes(["dnn", "cnn"], runs=args.runs, timings=timings)
    print("inside archlab.probes(['dnn', 'cnn'], timings=...), once:")
    for step, seconds in sorted(timings.items(), key=lambda kv: -kv[1]):
        print(f"  {step:<22} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
