"""Every subcommand on the lecture's models, end to end, against `python -c "import torch"`.

For each command: the median wall time over --rounds runs, the median of the bare torch
import measured alternately with it in the same run, and the difference (the command's
overhead: everything it adds to importing torch); the same in CPU time (user + system of
the process), which a loaded machine distorts far less than wall time.

For `train dnn` (the full default run: 5 epochs, 3,000 iterations) the overhead is the
wall time less the torch import, the training steps and the test-set evaluations, and its
breakdown is printed:

  python + import torch   interpreter start and `import torch`
  archlab start-up        archlab's imports, the data found and verified and loaded, the
                          model built and traced, the optimiser made
  training / evaluation   the steps and the test-set passes (train's own clocks)
  loop, other             the rest of the loop (epoch orders, progress, log lines)
  writing                 checkpoints at the epochs' ends, history.json, curves.png
  exit                    the result table, interpreter shutdown

`confusion` and `compare` evaluate the 10,000 test images for each model: that is their
work, so their overhead is also shown less the time spent in `predict_logits`.

Every command runs as the `archlab` entry point runs it (`archlab.cli.entry_point`, which
skips the interpreter's final garbage collection walk); `confusion`, `compare` and `train`
run in-process under a probe that only reads clocks around the phases.

The analysis commands need trained runs of dnn and cnn: missing ones are trained once
into --runs with `--epochs 1` (the analysis work does not depend on the epochs).

    python benchmarks/startup.py [--rounds 3] [--runs /tmp/archlab-startup-runs]
                                 [--only explain,train] [--train-epochs 5] [--train-cnn]

Targets (issue 13): every command's overhead ≤ 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# runs the command in-process as the `archlab` entry point does, noting when each phase
# starts and ends (the wrappers only read clocks: the command does the same work as
# `python -m archlab ...`); the times are written when the process exits
_PROBE = r"""
import atexit, json, os, sys, time
T = {"start": time.time()}
import torch
T["torch"] = time.time()

def clocked(owner, name, key):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        t = time.time()
        try:
            return inner(*args, **kwargs)
        finally:
            T[key] = T.get(key, 0.0) + time.time() - t
    setattr(owner, name, wrapper)

import archlab.training.predict
clocked(archlab.training.predict, "predict_logits", "predict_s")
if sys.argv[1] == "train":
    import archlab.training.loop as tr
    run = tr.Trainer.run
    def timed_run(self, stop_at):
        T["loop_start"] = time.time()
        try:
            return run(self, stop_at)
        finally:
            T["loop_end"] = time.time()
            T["train_s"], T["eval_s"] = self.progress.seconds, self.progress.eval_seconds
    tr.Trainer.run = timed_run
    save = tr.Trainer.save
    def save_in_loop(self, *args, **kwargs):
        key = "save_end_s" if "loop_end" in T else "save_loop_s"
        t = time.time()
        try:
            return save(self, *args, **kwargs)
        finally:
            T[key] = T.get(key, 0.0) + time.time() - t
    tr.Trainer.save = save_in_loop

def dump():
    T["end"] = time.time()
    with open(os.environ["ARCHLAB_BENCH_TIMES"], "w") as f:
        json.dump(T, f)
atexit.register(dump)
from archlab.cli import entry_point
entry_point()
"""

# commands whose own work is evaluating the test set: their overhead is also shown less
# that evaluation (as `train`'s is less its training and evaluation)
_EVALUATING = ("confusion", "compare")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, start as time.time()) of one run; output discarded.

    CPU time (user + system, all threads) depends far less on what else loads the
    machine than wall time: the table shows both."""
    started = time.time()
    cpu = _cpu()
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t, _cpu() - cpu, started


def _archlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "archlab", *args]


def _ensure_runs(runs: Path) -> None:
    for model in ("dnn", "cnn"):
        if not (runs / model / "checkpoint.pt").is_file():
            print(f"training {model} once into {runs} (--epochs 1) for the analysis commands")
            cmd = _archlab("train", model, "--epochs", "1", "--out", str(runs))
            subprocess.run(cmd, check=True)


def _commands(runs: Path, tmp: Path) -> dict[str, list[str]]:
    r = ("--runs", str(runs))
    return {
        "models": _archlab("models"),
        "shapes cnn": _archlab("shapes", "cnn"),
        "params dnn cnn": _archlab("params", "dnn", "cnn"),
        "data": _archlab("data"),
        "explain --index 42": _archlab(
            "explain", "--index", "42", *r, "--out", str(tmp / "explain.png")
        ),
        "explain --index 42 --sanity": _archlab(
            "explain", "--index", "42", "--sanity", *r, "--out", str(tmp / "sanity.png")
        ),
        "filters": _archlab("filters", *r, "--out", str(tmp / "filters.png")),
        "activations --index 42": _archlab(
            "activations", "--index", "42", *r, "--out", str(tmp / "activations.png")
        ),
        "confusion dnn cnn": _archlab("confusion", "dnn", "cnn", *r),
        "compare dnn cnn": _archlab("compare", "dnn", "cnn", *r, "--out", str(tmp / "cmp.png")),
    }


def _probed(args: list[str], times_file: Path) -> tuple[float, float, dict]:
    """(wall, CPU, the probe's clocks) of one in-process run of ``archlab ARGS``."""
    env = {**os.environ, "ARCHLAB_BENCH_TIMES": str(times_file)}
    wall, cpu, started = _run([sys.executable, "-c", _PROBE, *args], env)
    times = json.loads(times_file.read_text())
    times["started"] = started
    return wall, cpu, times


def _train_once(model: str, out: Path, times_file: Path, epochs: int) -> dict:
    args = ["train", model, "--out", str(out), "--epochs", str(epochs)]
    wall, cpu, t = _probed(args, times_file)
    started = t["started"]
    loop = t["loop_end"] - t["loop_start"]
    save_loop, save_end = t.get("save_loop_s", 0.0), t.get("save_end_s", 0.0)
    return {
        "wall": wall,
        "cpu": cpu,
        "python + import torch": t["torch"] - started,
        "archlab start-up": t["loop_start"] - t["torch"],
        "training": t["train_s"],
        "evaluation": t["eval_s"],
        "loop, other": loop - t["train_s"] - t["eval_s"] - save_loop,
        "writing": save_loop + save_end,
        "exit": wall - (t["loop_end"] - started) - save_end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each (default: 3)")
    parser.add_argument(
        "--runs",
        default=os.path.join(tempfile.gettempdir(), "archlab-startup-runs"),
        help="trained dnn and cnn runs, trained there if missing "
        "(default: <tmp>/archlab-startup-runs)",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated command names to run (default: all)"
    )
    parser.add_argument(
        "--train-epochs",
        type=int,
        default=5,
        help="epochs of the timed train runs (default: 5, the lecture's; the overhead "
        "does not depend on it, so 1 will do on a busy machine)",
    )
    parser.add_argument(
        "--train-cnn", action="store_true", help="also time `train cnn` (~2.5 min a run idle)"
    )
    args = parser.parse_args()
    runs = Path(args.runs)
    _ensure_runs(runs)
    floor_cmd = [sys.executable, "-c", "import torch"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        commands = _commands(runs, tmp)
        trains = ["train dnn"] + (["train cnn"] if args.train_cnn else [])
        names = [*commands, *trains]
        if args.only:
            wanted = [w.strip() for w in args.only.split(",")]
            names = [n for n in names if any(n.startswith(w) for w in wanted)]
        _run(floor_cmd)  # warm the file cache once
        floor: list[tuple[float, float]] = []
        runs_of: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        breakdowns: dict[str, list[dict]] = {n: [] for n in names if n.startswith("train")}
        evaluations: dict[str, list[float]] = {n: [] for n in names}
        for i in range(args.rounds):
            for name in names:
                floor.append(_run(floor_cmd)[:2])
                if name.startswith("train"):
                    out = tmp / f"train-{i}"
                    b = _train_once(name.split()[1], out, tmp / "times.json", args.train_epochs)
                    breakdowns[name].append(b)
                    runs_of[name].append((b["wall"], b["cpu"]))
                elif name.split()[0] in _EVALUATING:
                    wall, cpu, t = _probed(commands[name][3:], tmp / "times.json")
                    runs_of[name].append((wall, cpu))
                    evaluations[name].append(t.get("predict_s", 0.0))
                else:
                    runs_of[name].append(_run(commands[name])[:2])
                w, c = runs_of[name][-1]
                print(f"  round {i + 1}: {name:<30} {w:6.2f} s, CPU {c:6.2f} s", file=sys.stderr)
    fw = statistics.median(w for w, _ in floor)
    fc = statistics.median(c for _, c in floor)
    print(
        f"\nimport torch: median {fw:.2f} s wall, {fc:.2f} s CPU, of {len(floor)} runs "
        "alternating with the commands"
    )
    print("\n| command | wall | overhead (wall) | CPU | overhead (CPU) | target |")
    print("|---|---|---|---|---|---|")
    for name in names:
        w = statistics.median(x for x, _ in runs_of[name])
        c = statistics.median(x for _, x in runs_of[name])
        work, note, cpu_over = 0.0, "", f"{c - fc:.2f} s"
        if name in breakdowns:  # the training and evaluation are the work asked for
            work = statistics.median(b["training"] + b["evaluation"] for b in breakdowns[name])
            note = f" (less {work:.2f} s training + evaluation)"
            cpu_over = "–"  # training's CPU time counts every thread: not comparable
        elif evaluations[name]:
            work = statistics.median(evaluations[name])
            note = f" (less {work:.2f} s evaluating the test set)"
            cpu_over = "–"
        print(
            f"| archlab {name} | {w:.2f} s | **{w - fw - work:.2f} s**{note} | {c:.2f} s | "
            f"{cpu_over} | ≤ 1 s |"
        )
    for name, rows in breakdowns.items():
        print(f"\n`archlab {name}`, medians of {len(rows)} runs:\n")
        print("| phase | seconds |")
        print("|---|---|")
        for key in rows[0]:
            print(f"| {key} | {statistics.median(r[key] for r in rows):.2f} |")


if __name__ == "__main__":
    main()
