"""archlab lr-find: sweep the learning rate over a short run and suggest one."""

from __future__ import annotations

import argparse

NAME = "lr-find"
SUMMARY = "the learning-rate finder: loss against an exponentially growing rate"
DESCRIPTION = (
    "Train a fresh copy of MODEL for a few hundred batches with Adam's learning rate "
    "growing exponentially (default 1e-7 to 10), stopping once the smoothed loss exceeds "
    "4× its minimum, and suggest a rate: the steepest descent of the smoothed loss against "
    "log(rate), before its minimum (the minimum's rate / 10 is shown beside it). Nothing is "
    "saved unless --out names a figure. `archlab train MODEL --recipe onecycle` uses the "
    "suggestion as its peak rate."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import data_dir_option, set_option

    p.add_argument("model", nargs="?", default="cnn", help="a model spec (default: cnn)")
    set_option(p)
    p.add_argument("--start", type=float, default=1e-7, help="the first rate (default: 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="the last rate (default: 10)")
    p.add_argument("--iterations", type=int, default=200, help="steps of the sweep (default: 200)")
    p.add_argument("--batch-size", type=int, default=100, help="images per step (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    data_dir_option(p)
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="write the loss-against-rate figure, .png, .svg or .pdf (default: none)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archlab.commands._options import check_figure_path, echo, save
    from archlab.training.lr_find import check_lr_find_options, lr_find

    check_figure_path(args.out)
    check_lr_find_options(
        start=args.start,
        end=args.end,
        iterations=args.iterations,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    report = lr_find(
        args.model,
        overrides=args.set,
        start=args.start,
        end=args.end,
        iterations=args.iterations,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
    )
    echo(report)
    if args.out:
        save(report.plot(), Path(args.out))
    return 0
