"""The cost of ``archlab train --snapshots 10`` on the lecture's CNN, side by side in one
process: the same run (seed, recipe, data) trained without snapshots and with them, in
alternating rounds on one copy of the data, each round in the other order than the one
before (plain, with; with, plain; ...), so that a drift of the machine's speed over minutes
(measured here: 100 steps took 2.65 s and 3.76 s within one plain run) falls on both alike;
each keeps its fastest round. Goal: the run with snapshots ≤ 1.05× the plain one, the
whole ``train()`` call timed. Use ``--rounds 2`` or more: one round times the second run
after the first, whichever it is.

It also prints what one snapshot costs, split: the accuracy on the snapshots' 2,000 test
images, what the full 10,000 would cost instead, and writing the weights.

    python benchmarks/snapshot_cost.py [--model cnn] [--snapshots 10] [--epochs 5]
        [--rounds 2] [--threads 2] [--data-dir DIR]

(5 epochs of the CNN take minutes on a 2-core CPU, twice per round; ``--epochs 1`` gives a
quicker, pessimistic ratio: the same 10 snapshots over a fifth of the steps.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import archlab
from archlab._text import plural
from archlab.training.predict import evaluate
from archlab.training.snapshots import SnapshotKeeper, accuracy_subset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn", help="model spec (default: cnn)")
    parser.add_argument("--snapshots", type=int, default=10, help="N (default: 10)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default: 5)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each (default: 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--data-dir", default=None, help="the data folder (default: archlab's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = archlab.load_fashion_mnist(args.data_dir)
    quiet = {"log": lambda line: None, "progress": False, "figures": False}

    with tempfile.TemporaryDirectory() as tmp:

        def one(snapshots: int | None) -> tuple[float, archlab.Run]:
            began = time.perf_counter()
            run = archlab.train(
                args.model,
                data=data,
                runs=Path(tmp) / ("with" if snapshots else "plain"),
                epochs=args.epochs,
                snapshots=snapshots,
                **quiet,
            )
            return time.perf_counter() - began, run

        best: dict[bool, tuple[float, archlab.Run] | None] = {False: None, True: None}
        for round_ in range(args.rounds):
            for kept in (False, True) if round_ % 2 == 0 else (True, False):
                result = one(args.snapshots if kept else None)
                if best[kept] is None or result[0] < best[kept][0]:
                    best[kept] = result
        (plain_s, plain), (with_s, kept_run) = best[False], best[True]

        # one snapshot's parts, on the trained model
        net, norm = kept_run.model, kept_run.normalize
        images, labels = accuracy_subset(data.test_images, data.test_labels)

        def seconds(work, repeat: int = 3) -> float:
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                work()
                times.append(time.perf_counter() - began)
            return min(times)

        subset = seconds(lambda: evaluate(net, images, labels, norm))
        full = seconds(lambda: evaluate(net, data.test_images, data.test_labels, norm))
        keeper = SnapshotKeeper(Path(tmp) / "parts", 2, 2, None)
        write = seconds(lambda: keeper.take(net, 1, 0.0, 0.5))
        n = len(archlab.snapshots(kept_run))

    epochs = plural(args.epochs, "epoch")
    print(f"{args.model}, {epochs} ({plain.iteration:,} iterations), {n} snapshots:")
    print(f"  plain           {plain_s:8.1f} s  (training {plain.seconds:.1f} s)")
    print(f"  with snapshots  {with_s:8.1f} s  (training {kept_run.seconds:.1f} s)")
    print(f"  ratio           {with_s / plain_s:8.3f}  (goal ≤ 1.05)")
    print(
        f"  snapshots' own time (evaluation time beyond the plain run's): "
        f"{kept_run.eval_seconds - plain.eval_seconds:.2f} s"
    )
    print(
        f"  one snapshot: accuracy on {len(labels):,} test images {subset:.3f} s (all "
        f"{len(data.test_labels):,}: {full:.3f} s), weights written {write:.3f} s"
    )


if __name__ == "__main__":
    main()
