"""Train the lecture's two models and the zoo with one recipe, seed and data; print the table.

    .venv/bin/python benchmarks/zoo.py [--out runs-zoo] [--epochs 5]

Every model: the default (careful) recipe, seed 0, 5 epochs of batch 100, on this
machine's CPU. Prints parameters, multiply-accumulates per image, training time (and its
ratio to the lecture's CNN, measured in the same run) and test accuracy, as a Markdown
table for benchmarks/README.md. Runs one model at a time: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import platform
import time

import archlab
from archlab.training.recipes import TrainSettings
from archlab.training.train import train_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs-zoo", help="runs folder (default: runs-zoo)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs (default: 5)")
    parser.add_argument("models", nargs="*", default=["lecture", "zoo"])
    args = parser.parse_args()
    data = archlab.load_fashion_mnist()
    started = time.perf_counter()
    results = train_models(
        args.models,
        runs=args.out,
        data=data,
        settings=TrainSettings(epochs=args.epochs, seed=0, progress=False),
        log=lambda line: None,
    )
    wall = time.perf_counter() - started
    cnn = next((r.seconds for r in results if r.name == "cnn"), None)
    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads "
        f"{__import__('torch').get_num_threads()}, {args.epochs} epochs, seed 0; "
        f"all runs {wall / 60:.1f} min"
    )
    print("| model | parameters | MACs per image | training | vs cnn | test accuracy |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        macs = archlab.count_params(r).total_macs
        ratio = f"{r.seconds / cnn:.2f}×" if cnn else "-"
        print(
            f"| {r.name} | {r.params:,} | {macs:,} | {r.seconds:.0f} s | {ratio} | "
            f"{100 * r.test_accuracy:.2f} % |"
        )


if __name__ == "__main__":
    main()
