"""The faithfulness table for dnn, cnn and resnet (for benchmarks/README.md).

Needs trained runs (`archlab train dnn cnn resnet`). Prints each run's table for each
fill, with the methods that beat the random control on each metric, and the robustness
table of the three models.

    OMP_NUM_THREADS=2 python benchmarks/faithfulness_table.py --images 500 [--runs runs]
"""

from __future__ import annotations

import argparse
import datetime
import platform

import torch

import archlab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="trained runs (default: runs)")
    parser.add_argument("--images", type=int, default=500, help="test images (default: 500)")
    parser.add_argument("--models", default="dnn,cnn,resnet", help="(default: dnn,cnn,resnet)")
    parser.add_argument("--fills", default="zero,blur,road", help="(default: zero,blur,road)")
    parser.add_argument("--attack-images", type=int, default=1000, help="(default: 1000)")
    args = parser.parse_args()
    print(
        f"{datetime.date.today()}, {platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}\n"
    )
    data = archlab.load_fashion_mnist()
    models = args.models.split(",")
    for name in models:
        for fill in args.fills.split(","):
            print(
                archlab.faithfulness(name, images=args.images, fill=fill, runs=args.runs, data=data)
            )
            print()
    print(archlab.attack(models, images=args.attack_images, runs=args.runs, data=data))


if __name__ == "__main__":
    main()
