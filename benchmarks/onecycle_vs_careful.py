"""The one-cycle recipe (peak from lr-find) against careful: test accuracy after 5 epochs,
seed 0, for the DNN, the CNN and one zoo model (resnet by default). Trains 2 runs per
model (plus one lr-find sweep per model) under ``--runs``; slow: about 2 × 3 × the
model's 5-epoch time.

    python benchmarks/onecycle_vs_careful.py [--epochs 5] [--runs /tmp/onecycle] [MODEL ...]
"""

from __future__ import annotations

import argparse

import archlab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["dnn", "cnn", "resnet"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--runs", default="/tmp/onecycle-bench")
    parser.add_argument("--max-iterations", type=int, default=None, help="smoke test only")
    args = parser.parse_args()
    data = archlab.load_fashion_mnist()
    rows = []
    for model in args.models:
        found = archlab.lr_find(model, data=data)
        acc = {}
        for recipe in ("careful", "onecycle"):
            run = archlab.train(
                model,
                runs=args.runs,
                name=f"{model}-{recipe}",
                data=data,
                recipe=recipe,
                epochs=args.epochs,
                seed=0,
                figures=False,
                progress=False,
                log=lambda _line: None,
                max_iterations=args.max_iterations,
            )
            acc[recipe] = run.test_accuracy
        rows.append((model, found.suggested, acc["careful"], acc["onecycle"]))
    print("| model | lr-find peak | careful | onecycle |")
    print("|---|---|---|---|")
    for model, peak, careful, onecycle in rows:
        print(f"| {model} | {peak:.2g} | {100 * careful:.2f}% | {100 * onecycle:.2f}% |")


if __name__ == "__main__":
    main()
