"""Training on a CUDA GPU, measured on whatever GPU this machine has (issue 22).

In one process, on the data already in memory (``archlab.load_fashion_mnist``):

(a) 5 epochs of each model (default recipe, seed 0, batch 100): training seconds (the
    steps alone, as the run records them), evaluation seconds and test accuracy, in the
    deterministic mode with the graphed step (the defaults). Targets on an H200: CNN
    ≤ 1.0 s, DNN ≤ 0.5 s, the five zoo models ≤ 15 s together; accuracy within ±0.2 points
    of the CPU's (CNN 91.72 %, REFERENCE.md);
(b) the CNN and the DNN again with ``--fast`` (cuDNN benchmark, no deterministic
    algorithms) and with eager steps (``ARCHLAB_CUDA_GRAPH=0``): the cost of determinism
    and the gain of the graph, as ratios to (a);
(c) end to end, as a user runs it, each its own process: ``archlab train cnn --device
    cuda`` and ``python -c "import torch"`` timed alongside.

Where there is no CUDA GPU it says so and exits 0.

    python benchmarks/gpu.py [--epochs 5] [--models cnn dnn zoo] [--no-whole]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date


def _train(model: str, data, out: str, epochs: int, **settings) -> dict:
    from archlab.training.checkpoint import load_checkpoint
    from archlab.training.train import train

    result = train(
        model,
        data=data,
        runs=out,
        epochs=epochs,
        device="cuda",
        progress=False,
        log=lambda line: None,
        figures=False,
        **settings,
    )
    cuda = load_checkpoint(result.folder / "checkpoint.pt")["history"].get("cuda", {})
    return {
        "model": model,
        "train_s": result.seconds,
        "eval_s": result.eval_seconds,
        "accuracy": result.test_accuracy,
        "step": cuda.get("step", "?"),
        "left_to_chance": ", ".join(cuda.get("nondeterministic_ops", [])) or "-",
    }


def _eager(fn):
    os.environ["ARCHLAB_CUDA_GRAPH"] = "0"
    try:
        return fn()
    finally:
        del os.environ["ARCHLAB_CUDA_GRAPH"]


def _whole(out: str, epochs: int) -> tuple[float, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    torch_s = time.perf_counter() - started
    command = [sys.executable, "-m", "archlab", "train", "cnn", "--device", "cuda"]
    command += ["--epochs", str(epochs), "--out", out]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return torch_s, time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--models", nargs="+", default=["cnn", "dnn", "zoo"])
    parser.add_argument("--no-whole", action="store_true", help="skip the end-to-end run")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("no GPU here: torch sees no CUDA device; nothing to measure")
        return 0
    from archlab.models.spec import expand_models
    from archlab.training.data import load_fashion_mnist

    props = torch.cuda.get_device_properties(0)
    driver = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(
        f"{props.name}, {props.total_memory / 2**30:.0f} GiB, driver {driver or '?'}, "
        f"torch {torch.__version__} (CUDA {torch.version.cuda}), Python "
        f"{platform.python_version()}, {date.today()}"
    )
    data = load_fashion_mnist()
    names = [s.label for s in expand_models(args.models)]
    rows = []
    with tempfile.TemporaryDirectory() as out:
        print(f"\n(a) {args.epochs} epochs, deterministic, graphed step where possible")
        print(f"{'model':<10} {'train s':>8} {'eval s':>7} {'accuracy':>9}  step")
        for name in names:
            row = _train(name, data, out, args.epochs)
            rows.append(row)
            print(
                f"{name:<10} {row['train_s']:8.2f} {row['eval_s']:7.2f} "
                f"{100 * row['accuracy']:8.2f}%  {row['step']}; not deterministic: "
                f"{row['left_to_chance']}"
            )
        zoo = [r for r in rows if r["model"] not in ("dnn", "cnn")]
        if zoo:
            print(f"zoo together: {sum(r['train_s'] for r in zoo):.2f} s of training")

        print("\n(b) the same run in other modes, as a ratio of training time to (a)")
        print(f"{'model':<10} {'fast':>8} {'eager':>8} {'fast acc':>9} {'eager acc':>10}")
        for row in rows:
            if row["model"] not in ("dnn", "cnn"):
                continue
            fast = _train(row["model"], data, out, args.epochs, deterministic=False)
            eager = _eager(lambda r=row: _train(r["model"], data, out, args.epochs))
            print(
                f"{row['model']:<10} {fast['train_s'] / row['train_s']:8.2f} "
                f"{eager['train_s'] / row['train_s']:8.2f} {100 * fast['accuracy']:8.2f}% "
                f"{100 * eager['accuracy']:9.2f}%  (eager equals graphed: "
                f"{eager['accuracy'] == row['accuracy']})"
            )

        if not args.no_whole:
            torch_s, whole_s = _whole(out, args.epochs)
            print(
                f"\n(c) end to end: archlab train cnn --device cuda ({args.epochs} epochs) "
                f"{whole_s:.1f} s; python -c 'import torch' {torch_s:.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
