"""The Fashion-MNIST speedrun (issue 34): the ladder from the lecture's recipe to the fast
one, one trick per rung, and the three headline measurements.

    .venv/bin/python benchmarks/speedrun.py                    # everything, 5 seeds
    .venv/bin/python benchmarks/speedrun.py --rungs lecture careful ema --seeds 2
    .venv/bin/python benchmarks/speedrun.py --only ladder      # or target, best, cnn-fast

Each rung adds one trick to the rung before it (or, for a trick tried on its own branch,
to the rung it names) and is trained with ``--seeds`` seeds (0, 1, ...); it reports test
accuracy mean ± std and training time mean ± std (the loop's own clock: steps only,
evaluations excluded), and whether the trick paid: a higher mean accuracy, or the same
within 0.1 points in at most 90 % of the time. Rungs that do not pay stay in the ladder
and are said. The lecture's CNN climbs it unchanged up to the fast recipe (all rungs 5
epochs); then the net changes, and the last rung runs the fast recipe's own 4 epochs.

The headline measurements (``--only`` picks one):

- ``target``: ``archlab train speednet --recipe fast --target 93`` for each seed: the
  training seconds and iterations to the first half-epoch evaluation on the last 5,000
  training images that makes it 90 % sure the accuracy reached 93 %
  (:mod:`archlab.training.stopping`), and the test accuracy read once at that stop;
  beside it today's best zoo recipe (resnet, careful, 5 epochs) for the ratio;
- ``best``: the best accuracy within 10 minutes of training: resnet with the
  ``fast-long`` recipe (the fast one with 2-pixel crops) for ``--best-epochs`` epochs
  (default 20), ``--best-seeds`` seeds;
- ``cnn-fast``: the lecture's CNN, unchanged, with the fast recipe for 5 epochs.

Writes ``--json`` (default ``benchmarks/speedrun.json``, read by the gallery page
``examples/plot_16_speedrun.py``; the parts a run measures replace those of an earlier
file, the others stay, each with its date and seeds under ``parts``) and ``--figure``
(accuracy against training seconds, one point per rung with its error bars). One training
at a time: run it on an idle machine.
The rungs' recipes are registered in ``archlab.training.recipes.RECIPES`` for this process
only (``ladder-...``); their runs land under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import archlab
from archlab.training.recipes import RECIPES, Recipe
from archlab.training.stopping import TARGET_CONFIDENCE, lower_bound
from archlab.training.stopping import reached as stop_rule
from archlab.viz.speedrun import plot_ladder

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Rung:
    """One rung: a model, a recipe and its numbers; ``trick`` says what it adds to the rung
    named ``after`` (None: the rung before it). A trick tried on its own ``branch`` is not
    carried up: the next rung of the main line names the rung it builds on."""

    name: str
    trick: str
    model: str
    recipe: Recipe
    epochs: int
    batch_size: int
    lr: float
    after: str | None = None
    branch: bool = False


def _ladder() -> list[Rung]:
    careful, fast = RECIPES["careful"], RECIPES["fast"]
    bf16 = replace(careful, name="ladder-bf16", bf16=True)
    off = {"label_smoothing": 0.0, "ema": None, "defaults": (), "whiten": False}
    schedule = replace(fast, name="ladder-schedule", **off)
    smoothing = replace(schedule, name="ladder-smoothing", label_smoothing=0.1)
    ema = replace(fast, name="ladder-ema", whiten=False)
    flips = replace(ema, name="ladder-flips", pad=0, flip=True, tta=True)
    crops = replace(ema, name="ladder-crops", pad=2)
    return [
        Rung(
            "lecture",
            "the lecture's recipe (data already held in memory as one uint8 tensor: "
            "no per-sample PIL pipeline)",
            "cnn", RECIPES["lecture"], 5, 100, 1e-3,
        ),
        Rung("careful", "shuffle, normalise, cosine decay", "cnn", careful, 5, 100, 1e-3),
        Rung(
            "bf16", "bfloat16 autocast in the steps (where native; float32 elsewhere)", "cnn",
            bf16, 5, 100, 1e-3,
        ),
        Rung(
            "schedule",
            "batch 200 and lr 3e-3, warmup 20 % then linear decay to 0",
            "cnn", schedule, 5, 200, 3e-3,
        ),
        Rung("smoothing", "label smoothing 0.1", "cnn", smoothing, 5, 200, 3e-3),
        Rung("ema", "EMA of the weights (decay 0.99)", "cnn", ema, 5, 200, 3e-3),
        Rung(
            "flips",
            "alternating flips + flip test-time augmentation (shoes all point one way)",
            "cnn", flips, 5, 200, 3e-3, after="ema", branch=True,
        ),
        Rung(
            "crops", "random 2-pixel crops", "cnn", crops, 5, 200, 3e-3, after="ema",
            branch=True,
        ),
        Rung(
            "whiten",
            "the first conv starts as whitening filters of the images' 3×3 patches: the "
            "fast recipe",
            "cnn", fast, 5, 200, 3e-3, after="ema",
        ),
        Rung(
            "speednet",
            "the net: a third conv at 6×6, pool before BN and ReLU, a ReLU in the head",
            "speednet", fast, 5, 200, 3e-3, after="whiten",
        ),
        Rung(
            "shorter", "one epoch fewer (4): the fast recipe's own length", "speednet", fast,
            4, 200, 3e-3,
        ),
    ]  # fmt: skip


def _percent(accuracy: float | None) -> float | None:
    return None if accuracy is None else 100 * accuracy


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _train(model: str, recipe: Recipe, args, out: Path, seed: int, **kw) -> archlab.Run:
    RECIPES.setdefault(recipe.name, recipe)
    return archlab.train(
        model,
        runs=out,
        name=f"{kw.pop('tag', model)}-s{seed}",
        data=args.data,
        recipe=recipe.name,
        seed=seed,
        progress=False,
        figures=False,
        log=lambda line: None,
        max_iterations=args.max_iterations,
        **kw,
    )


def run_ladder(args, rungs: list[Rung], earlier: list[dict] = ()) -> list[dict]:
    """Every rung with every seed; one dict per rung. A rung builds on the row of the rung
    it names, measured now or in ``earlier`` (an earlier file's ladder: ``--rungs`` may
    measure a few again)."""
    results: list[dict] = []
    by_name = {row["rung"]: row for row in earlier}
    order = [r.name for r in _ladder()]
    for rung in rungs:
        runs = [
            _train(
                rung.model, rung.recipe, args, args.out / "ladder", seed, tag=rung.name,
                epochs=rung.epochs, batch_size=rung.batch_size, lr=rung.lr,
            )
            for seed in range(args.seeds)
        ]  # fmt: skip
        accuracies = [100 * r.test_accuracy for r in runs]
        accuracy = _mean_std(accuracies)
        seconds = _mean_std([r.seconds for r in runs])
        index = order.index(rung.name)
        above = order[index - 1] if index else None  # the rung above it in the whole ladder
        base = by_name.get(rung.after or above)
        row = {
            "rung": rung.name,
            "trick": rung.trick,
            "model": rung.model,
            "epochs": rung.epochs,
            "after": base["rung"] if base else None,
            "branch": rung.branch,
            "accuracy": accuracy,
            "accuracies": accuracies,
            "seconds": seconds,
            "pays": None if base is None else _pays(accuracy[0], seconds[0], base),
        }
        by_name[rung.name] = row
        results.append(row)
        print(_ladder_line(row, above), flush=True)
    return results


def _pays(accuracy: float, seconds: float, base: dict) -> bool:
    """More accurate than ``base``, or as accurate (within 0.1 points) in ≤ 90 % of its
    time: a speed trick pays in seconds."""
    if accuracy > base["accuracy"][0]:
        return True
    return accuracy >= base["accuracy"][0] - 0.1 and seconds <= 0.9 * base["seconds"][0]


def _ladder_line(row: dict, previous: str | None = None) -> str:
    """The row as a markdown table line; ``(on X)`` where it builds on a rung other than
    ``previous``, the one above it, or is a branch."""
    (a, sa), (t, st) = row["accuracy"], row["seconds"]
    pays = {None: "", True: "pays", False: "does not pay"}[row["pays"]]
    on = ""
    if row.get("after") and (row.get("branch") or row["after"] != previous):
        on = f" (on {row['after']})"
    return (
        f"| {row['rung']} | {row['trick']}{on} | {row['model']} | {row['epochs']} | "
        f"{a:.2f} ± {sa:.2f} % | {t:.1f} ± {st:.1f} s | {pays} |"
    )


def run_target(args) -> dict:
    """``--recipe fast --target TARGET`` for each seed, and resnet's careful run."""
    rows = []
    epochs = {"epochs": args.target_epochs} if args.target_epochs else {}
    for seed in range(args.seeds):
        run = _train(
            "speednet", RECIPES["fast"], args, args.out / "target", seed, target=args.target,
            **epochs,
        )  # fmt: skip
        n = run.config.validation
        per_epoch = -(-(60_000 - n) // run.config.batch_size)  # as the loop: ceil
        sure = run.config.target_confidence
        reached = next(
            (
                p
                for p in run.history.get("validation", [])
                if stop_rule(p["accuracy"], n, args.target, sure)
            ),
            None,
        )
        rows.append(
            {
                "seed": seed,
                "seconds_to_target": reached["seconds"] if reached else None,
                "iteration": reached["iteration"] if reached else None,
                "epoch": reached["iteration"] / per_epoch if reached else None,
                "validation_accuracy": 100 * reached["accuracy"] if reached else None,
                "lower_bound": 100 * lower_bound(reached["accuracy"], n, sure) if reached else None,
                # None only when --max-iterations stopped it before the end
                "test_accuracy": _percent(run.test_accuracy),
            }
        )
        print(f"target {args.target:g}: {rows[-1]}", flush=True)
    resnet = _train("resnet", RECIPES["careful"], args, args.out / "target", 0)
    return {
        "target": args.target,
        "epochs": args.target_epochs or dict(RECIPES["fast"].defaults)["epochs"],
        "confidence": TARGET_CONFIDENCE,
        "runs": rows,
        "resnet_careful": {
            "seconds": resnet.seconds,
            "test_accuracy": _percent(resnet.test_accuracy),
        },
    }


def run_best(args) -> dict:
    recipe = RECIPES["fast-long"]
    runs = []
    for seed in range(args.best_seeds or args.seeds):
        runs.append(
            _train("resnet", recipe, args, args.out / "best", seed, epochs=args.best_epochs)
        )
        print(
            f"best, seed {seed}: {100 * runs[-1].test_accuracy:.2f} % in {runs[-1].seconds:.1f} s",
            flush=True,
        )
    row = {
        "model": "resnet",
        "recipe": recipe.name,
        "epochs": args.best_epochs,
        "accuracy": _mean_std([100 * r.test_accuracy for r in runs]),
        "accuracies": [100 * r.test_accuracy for r in runs],
        "seconds": _mean_std([r.seconds for r in runs]),
        "times": [r.seconds for r in runs],
    }
    print(f"best within 10 min: {row}", flush=True)
    return row


def run_cnn_fast(args) -> dict:
    runs = [
        _train("cnn", RECIPES["fast"], args, args.out / "cnn-fast", seed, epochs=5)
        for seed in range(args.seeds)
    ]
    accuracies = [100 * r.test_accuracy for r in runs]
    row = {"accuracy": _mean_std(accuracies), "accuracies": accuracies, "epochs": 5}
    print(f"lecture CNN + fast, 5 epochs: {row}", flush=True)
    return row


def compile_check(steps: int = 100) -> dict:
    """Milliseconds per training step of speednet (batch 200, NHWC, bfloat16 autocast
    where native, as the fast recipe runs it) eager and under ``torch.compile``, after
    warm-up, and the first step's seconds (the compilation): whether compiling pays."""
    import contextlib

    import torch
    from torch import nn

    from archlab.training.speed import bf16_native

    cpu = torch.device("cpu")
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if bf16_native(cpu)
        else contextlib.nullcontext
    )
    out = {"bf16": bf16_native(cpu), "steps": steps}
    for mode in ("eager", "compile"):
        torch.manual_seed(0)
        net = archlab.create_model("speednet").to(memory_format=torch.channels_last)
        step_net = torch.compile(net) if mode == "compile" else net
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        x = torch.randn(200, 1, 28, 28).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (200,))
        for i in range(steps + 5):
            if i in (0, 5):
                started = time.perf_counter()
            with autocast():
                loss = nn.functional.cross_entropy(step_net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i == 0:
                out[f"{mode}_first_step_s"] = time.perf_counter() - started
        out[f"{mode}_ms"] = 1000 * (time.perf_counter() - started) / steps
    print(f"step time, speednet batch 200: {out}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [r.name for r in _ladder()]
    parser.add_argument("--seeds", type=int, default=5, help="seeds per rung (default: 5)")
    parser.add_argument("--rungs", nargs="+", choices=names, default=names, help="rungs to run")
    parser.add_argument(
        "--only", nargs="+", choices=["ladder", "target", "best", "cnn-fast", "compile"],
        default=["ladder", "target", "best", "cnn-fast", "compile"], help="what to measure",
    )  # fmt: skip
    parser.add_argument("--target", type=float, default=93.0, help="percent (default: 93)")
    parser.add_argument(
        "--target-epochs", type=int, default=None, help="the schedule's length for target "
        "(default: the fast recipe's)",
    )  # fmt: skip
    parser.add_argument("--best-epochs", type=int, default=20, help="(default: 20)")
    parser.add_argument(
        "--best-seeds", type=int, default=None, help="seeds for best (default: --seeds)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs-speedrun"), help="runs folder")
    parser.add_argument("--json", type=Path, default=HERE / "speedrun.json")
    parser.add_argument("--figure", type=Path, default=HERE / "speedrun.png")
    parser.add_argument(
        "--max-iterations", type=int, default=None, help="stop each run early (a smoke test)"
    )
    args = parser.parse_args()
    import torch

    args.data = archlab.load_fashion_mnist()
    # parts measured apart (--only) land in one JSON: an earlier file's other parts stay
    report: dict = {}
    if args.json.is_file():
        try:
            report = json.loads(args.json.read_text())
        except (OSError, ValueError):
            report = {}
    when = {
        "machine": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seeds": args.seeds,
        "max_iterations": args.max_iterations,
    }
    report.update(when)
    report.setdefault("parts", {}).update({part: when for part in args.only})
    rungs = [r for r in _ladder() if r.name in args.rungs]
    if "ladder" in args.only:
        print("| rung | adds | model | epochs | test accuracy | training | |")
        print("|---|---|---|---:|---:|---:|---|")
        earlier = report.get("ladder") or []
        measured = {row["rung"]: row for row in run_ladder(args, rungs, earlier)}
        # rungs measured now replace their rows; the others stay, in the ladder's order
        kept = {row["rung"]: row for row in earlier}
        report["ladder"] = [
            measured.get(r.name) or kept[r.name]
            for r in _ladder()
            if r.name in measured or r.name in kept
        ]
    if "target" in args.only:
        report["target"] = run_target(args)
    if "best" in args.only:
        report["best"] = run_best(args)
    if "cnn-fast" in args.only:
        report["cnn_fast"] = run_cnn_fast(args)
    if "compile" in args.only:
        try:
            report["compile"] = compile_check()
        except Exception as exc:  # no C++ compiler, an inductor failure: say so, keep the rest
            report["compile"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            print(f"torch.compile failed: {report['compile']['error']}")
    from archlab._atomic import atomic_path

    with atomic_path(args.json) as tmp:
        Path(tmp).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.json}")
    if report.get("ladder"):
        import matplotlib

        matplotlib.use("Agg")
        figure = plot_ladder(report["ladder"])
        figure.savefig(args.figure, dpi=120)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
