"""`archlab calibration dnn cnn` and `archlab ood dnn cnn`: whole commands, and where
the time goes.

Needs trained dnn and cnn runs (`archlab train dnn cnn`). Times each whole command (a
fresh process, start-up included, figures written to a temporary folder) ``--repeat``
times and prints the best, then, in this process, the parts: the logits (test set,
fitting images, every out-of-distribution set), the temperature fits, the bootstrap.
Targets (issue 33), on the idle 2-core machine: calibration ≤ 20 s, ood ≤ 60 s.

    OMP_NUM_THREADS=2 python benchmarks/calibration_ood.py [--runs runs] [--repeat 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import time_command


def _parts(runs: str) -> dict[str, float]:
    import archlab
    from archlab.analysis import calibration as C
    from archlab.analysis import ood as O
    from archlab.analysis.faithfulness import stratified_indices
    from archlab.training.predict import predict_logits

    seconds: dict[str, float] = {}

    def timed(name, fn):
        start = time.perf_counter()
        value = fn()
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        return value

    data = timed("load data", archlab.load_fashion_mnist)
    chosen = stratified_indices(data.test_labels, 2000)
    sets = timed(
        "make the five sets",
        lambda: O.make_sets(
            O.SETS, data.test_images[chosen], chosen, data.test_labels[chosen], data.pixel_stats()
        ),
    )
    for name in ("dnn", "cnn"):
        run = timed("load runs", lambda n=name: archlab.load_run(n, runs=runs))
        test = timed(
            f"{name}: logits, 10,000 test images",
            lambda r=run: predict_logits(r.model, data.test_images, r.normalize),
        )
        fit = timed(
            f"{name}: logits, 5,000 fitting images",
            lambda r=run: predict_logits(r.model, data.train_images[-5000:], r.normalize),
        )
        timed(
            "temperature fits (2 per run)",
            lambda f=fit: C.fit_temperature(f, data.train_labels[-5000:]),
        )
        timed("temperature fits (2 per run)", lambda t=test: C.fit_temperature(t, data.test_labels))
        timed("ECE and the other metrics", lambda t=test: C.scores_of(t, data.test_labels))
        inside = O.ood_scores(test[chosen])
        for s in sets:
            logits = timed(
                f"{name}: logits, the sets",
                lambda r=run, s=s: predict_logits(r.model, s.images, r.normalize),
            )
            for method, scores in O.ood_scores(logits).items():
                timed(
                    "bootstrap, 1,000 resamples, all",
                    lambda i=inside[method], sc=scores: O.separation(i, sc),
                )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs", help="trained runs (default: runs)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each command (default: 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for command, goal in (("calibration", 20), ("ood", 60)):
            cmd = ["archlab", command, "dnn", "cnn", "--runs", args.runs]
            cmd += ["--out", str(Path(tmp) / f"{command}.png")]
            best = min(time_command(cmd) for _ in range(args.repeat))
            print(f"archlab {command} dnn cnn: {best:.1f} s (goal ≤ {goal} s)")
    for part, s in _parts(args.runs).items():
        print(f"  {part}: {s:.2f} s")


if __name__ == "__main__":
    main()
