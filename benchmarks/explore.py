"""`archlab explore`: seconds and folder size, with where the time goes.

Two cases, each measured end to end as a command (start-up included) and inside the
library by step (loading, the test set, the trace, the activations, the attributions,
writing the files), each step's share of the whole printed beside its seconds:

- `archlab explore cnn`: target ≤ 30 s and a folder ≤ 20 MB on 2 CPU cores;
- `archlab explore dnn cnn zoo` (with --zoo): target ≤ 2 min and ≤ 100 MB.

Needs the runs trained (`archlab train dnn cnn zoo`); pass --runs for another folder.

    python benchmarks/explore.py [--runs runs] [--zoo] [--images 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _timing import time_command


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def measure(models: list[str], runs: str, images: int, tmp: Path) -> None:
    import captum.attr  # noqa: F401  imported before the clock starts, as torch is
    import torch  # noqa: F401

    import archlab

    out = tmp / "-".join(models)
    command = [sys.executable, "-m", "archlab", "explore", *models, "--runs", runs]
    command += ["--images", str(images), "--out", str(out)]
    whole = time_command(command)
    size = folder_mb(out)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    archlab.explore(models, images=images, out=tmp / "again", runs=runs, timings=timings)
    inside = time.perf_counter() - start
    print(f"archlab explore {' '.join(models)} --images {images}")
    files = sum(1 for _ in out.rglob("*"))
    print(f"  command {whole:.1f} s, of which the library call {inside:.1f} s (the rest: start-up")
    print(f"  and imports); folder {size:.1f} MB in {files} files")
    timings["other"] = inside - sum(timings.values())
    for step, seconds in sorted(timings.items(), key=lambda kv: -kv[1]):
        print(f"  {step:<13} {seconds:6.1f} s  {100 * seconds / inside:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="trained checkpoints (default: runs)")
    parser.add_argument("--images", type=int, default=30, help="images (default: 30)")
    parser.add_argument("--zoo", action="store_true", help="also dnn, cnn and the zoo together")
    parser.add_argument("--models", nargs="*", default=["cnn"], help="first case (default: cnn)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure(args.models, args.runs, args.images, Path(tmp))
        if args.zoo:
            measure(["dnn", "cnn", "zoo"], args.runs, args.images, Path(tmp))


if __name__ == "__main__":
    main()
