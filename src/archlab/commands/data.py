"""archlab data: find, verify and describe Fashion-MNIST."""

from __future__ import annotations

import argparse

NAME = "data"
SUMMARY = "find, verify and describe Fashion-MNIST (checksums, class counts)"
DESCRIPTION = (
    "Find Fashion-MNIST (the data folder, then Debian's dataset-fashion-mnist package, then "
    "torchvision's download), verify the MD5 of the four uncompressed IDX files, and print "
    "where they are and how many images each class has."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from archlab.commands._options import data_dir_option

    data_dir_option(p)


def run(args: argparse.Namespace) -> int:
    from archlab.commands._options import echo
    from archlab.training.data import data_report, load_fashion_mnist

    report = data_report(load_fashion_mnist(args.data_dir))
    echo(report)
    return 0 if report.ok else 1
