"""What trying fixes costs: a failing trace with its fix trials against the same trace
with none, and `archlab shapes` on good models against another checkout (main).

Every fix archlab prints has been made on a copy of the model and traced again
(archlab/trace/_trial.py). Part 1 times trace_shapes on the broken models of
tests/corpus/fixable.py with trials, then with them switched off (MAX_TRIALS = 0),
alternately, and prints the median ratio. Part 2 (with --baseline DIR, a checkout of
main) runs `python -m archlab shapes MODEL` from this tree and from DIR alternately, and
prints the ratio for each good model; target: ≤ 1.05 (no slower).

    python benchmarks/fix_trials.py [--rounds 9] [--baseline /path/to/main]
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
GOOD = ["cnn", "dnn", "resnet", "tests/corpus/good.py:TinyResNet"]


def _trace_times(rounds: int) -> None:
    import archlab
    from archlab.trace import _trial
    from tests.corpus import fixable

    cases = [
        c
        for n, c in inspect.getmembers(fixable, inspect.isclass)
        if c.__module__ == fixable.__name__ and not n.endswith("Fixed")
    ]
    limit = _trial.MAX_TRIALS
    for cls in cases:
        model = cls()
        archlab.trace_shapes(model, cls.input_shape)  # warm up
        tried, bare = [], []
        for _ in range(rounds):
            for budget, times in ((limit, tried), (0, bare)):
                _trial.MAX_TRIALS = budget
                start = time.perf_counter()
                archlab.trace_shapes(model, cls.input_shape)
                times.append(time.perf_counter() - start)
        _trial.MAX_TRIALS = limit
        t, b = statistics.median(tried), statistics.median(bare)
        print(
            f"{cls.__name__:26s} with trials {t * 1e3:7.1f} ms  without {b * 1e3:7.1f} ms  "
            f"ratio {t / b:5.2f}  (+{(t - b) * 1e3:.1f} ms)"
        )


def _command(tree: Path, model: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "archlab", "shapes", model],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _good_times(rounds: int, baseline: Path) -> None:
    for model in GOOD:
        _command(ROOT, model), _command(baseline, model)  # warm the file cache
        here, there = [], []
        for _ in range(rounds):
            here.append(_command(ROOT, model))
            there.append(_command(baseline, model))
        h, t = statistics.median(here), statistics.median(there)
        print(f"shapes {model:34s} this tree {h:5.2f} s  baseline {t:5.2f} s  ratio {h / t:4.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="runs of each (default: 9)")
    parser.add_argument("--baseline", type=Path, help="a checkout to compare good models with")
    args = parser.parse_args()
    _trace_times(args.rounds)
    if args.baseline is not None:
        _good_times(args.rounds, args.baseline)


if __name__ == "__main__":
    main()
