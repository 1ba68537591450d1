"""The learning-rate finder (Smith 2015, fast.ai): one short run, the rate growing
exponentially each step, the loss watched.

Each step trains one batch at the current rate, from ``start`` (1e-7) up to ``end`` (10)
over ``iterations`` steps, so step ``i`` uses ``start · (end / start)^(i / (n − 1))``. The
loss is smoothed by an exponential moving average started at the first loss,
``s_i = (1 − β)·loss_i + β·s_(i−1)`` with β = ``smooth`` (0.9), and the sweep stops early
once the smoothed loss exceeds ``diverge`` (4) times its minimum: past that point the rate
is too high to train at all. This is the range test as torch-lr-finder's ``range_test``
defines it (``step_mode="exp"``, ``smooth_f = 1 − β``, ``diverge_th``); the tests check
it against that library.

The rule for the suggested rate, stated on every report: the rate at the **steepest
descent** of the smoothed loss against log(rate), looked for before the loss's minimum
(where the loss falls fastest per decade of rate). The rate at the minimum divided by 10
(fast.ai's first rule) is reported beside it. When the smoothed loss never falls
:data:`MOVED` (5 %) below its first steps' level, no rate is suggested (both are NaN):
the sweep never reached a rate that trains. Nothing is written: the model is a fresh
copy, trained for the sweep and thrown away.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from archlab._report import Report
from archlab._table import Table
from archlab._text import plural
from archlab.errors import ArchlabError

__all__ = ["LRFinder", "check_lr_find_options", "loss_moved", "lr_find", "suggest", "sweep"]

RULE = "steepest descent of the smoothed loss against log(rate), before its minimum"
MOVED = 0.05  # the least fall of the smoothed loss, relative to its start, that counts
MAX_RATE = 1e3
MAX_ITERATIONS = 10_000
MAX_BATCH = 60_000  # Fashion-MNIST's training set


@dataclass
class LRFinder(Report):
    """The result of :func:`lr_find`: the loss at each rate of the sweep and the
    suggested rate (``suggested``, by :data:`RULE`; ``min_over_10``, fast.ai's first rule).

    Example::

        >>> found = archlab.lr_find("cnn")  # doctest: +SKIP
        >>> found.suggested, found.rule  # doctest: +SKIP
    """

    model: str
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)
    suggested: float = float("nan")
    min_over_10: float = float("nan")
    rule: str = RULE
    diverged_at: float | None = None  # the rate at which the sweep stopped early
    seconds: float = 0.0
    moved: bool = True  # False: the loss never fell, so no rate is suggested
    _shows_figure = True

    def _parts(self) -> list[Table | str]:
        stop = (
            f"stopped at {self.diverged_at:.2g}: the loss diverged"
            if self.diverged_at is not None
            else "ran the whole sweep"
        )
        if not self.moved:
            title = (
                f"{self.model}: {len(self.lrs)} steps from {self.lrs[0]:.0e} to "
                f"{self.lrs[-1]:.2g}: the loss never moved (its smoothed value never fell "
                f"{MOVED:.0%} below its start), so no rate is suggested; sweep higher rates"
            )
            return [title]
        rows = [
            ["suggested", f"{self.suggested:.2g}", self.rule],
            [
                "minimum / 10",
                f"{self.min_over_10:.2g}",
                "the rate of the lowest smoothed loss, / 10",
            ],
        ]
        title = (
            f"{self.model}: {plural(len(self.lrs), 'step')} from {self.lrs[0]:.0e} to "
            f"{self.lrs[-1]:.2g} ({stop}) in {self.seconds:.1f} s"
        )
        return [Table(("rate", "value", "rule"), rows, title)]

    def plot(self, ax=None, *, color=None, label: str | None = None):
        """The smoothed loss against the learning rate (log x), the suggestion marked. On a
        given ``ax``, one run of an overlay: its smoothed loss and suggestion in the axes'
        next colour (or ``color``), labelled by the run (or ``label``)."""
        from archlab.viz._figure import _new_ax

        overlay = ax is not None
        before = ax.get_ylim() if overlay and ax.lines else None
        fig, ax = _new_ax(ax, (7, 4.5))
        if not overlay:
            ax.plot(self.lrs, self.losses, color="0.8", lw=0.8, label="loss per batch")
        line = ax.plot(
            self.lrs,
            self.smoothed,
            color=color or (None if overlay else "C0"),
            label=label or (f"{self.model}: smoothed loss" if overlay else "smoothed"),
        )[0]
        mark = line.get_color() if overlay else None
        who = f"{self.model}: " if overlay else ""
        if self.moved:  # no rate is suggested when the loss never moved
            ax.axvline(
                self.suggested,
                color=mark or "C3",
                ls="--",
                label=f"{who}suggested {self.suggested:.2g}",
            )
            ax.axvline(
                self.min_over_10,
                color=mark or "C2",
                ls=":",
                label=f"{who}minimum / 10 {self.min_over_10:.2g}",
            )
        ax.set_xscale("log")
        low = min(self.smoothed)
        bottom, top = low - 0.05 * abs(low), max(self.smoothed[0], low) * 1.5 + 1e-12
        if before is not None:  # room for the runs drawn before
            bottom, top = min(bottom, before[0]), max(top, before[1])
        ax.set_ylim(bottom, top)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title("learning-rate finder" if overlay else f"{self.model}: learning-rate finder")
        ax.legend(fontsize=8)
        return fig


def sweep(
    step: Callable[[float], float],
    start: float = 1e-7,
    end: float = 10.0,
    iterations: int = 200,
    smooth: float = 0.9,
    diverge: float = 4.0,
) -> tuple[list[float], list[float], list[float], float | None]:
    """Call ``step(rate)`` (one training step at that rate; returns its loss) for rates
    growing exponentially from ``start`` to ``end``; returns ``(rates, losses, smoothed,
    diverged_at)`` (``diverged_at``: the rate where it stopped early, else None).

    The smoothed loss starts at the first loss and follows ``s = f·loss + (1 − f)·s`` with
    ``f = 1 − smooth``; the sweep stops (that step included) once ``s > diverge · min(s)``,
    or at once on a non-finite loss (that step left out)."""
    check_lr_find_options(start=start, end=end, iterations=iterations)
    if not (0 <= smooth < 1) or not (math.isfinite(diverge) and diverge > 1):
        raise ArchlabError(f"smooth={smooth!r}, diverge={diverge!r}: need 0 ≤ smooth < 1 < diverge")
    lrs, losses, smoothed = [], [], []
    f = 1 - smooth
    best = math.inf
    for i in range(iterations):
        lr = start * (end / start) ** (i / (iterations - 1))
        loss = step(lr)
        if not math.isfinite(loss):
            return lrs, losses, smoothed, lr
        value = loss if i == 0 else f * loss + (1 - f) * smoothed[-1]
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if i > 0 and value > diverge * best:
            return lrs, losses, smoothed, lr
    return lrs, losses, smoothed, None


def check_lr_find_options(
    *,
    start: float = 1e-7,
    end: float = 10.0,
    iterations: int = 200,
    batch_size: int = 100,
    seed: int = 0,
) -> None:
    """Check :func:`lr_find`'s options (the CLI calls it before any work): ``0 < start <
    end ≤ 1000``, 2 to 10,000 iterations, batches of 1 to 60,000, a seed torch accepts.

    Example:

        >>> archlab.training.lr_find.check_lr_find_options(start=1e-7, end=10)
    """
    from archlab._bounds import check_float, check_int, check_seed

    check_float("start", start, 0.0, MAX_RATE, low_open=True)
    check_float("end", end, 0.0, MAX_RATE, low_open=True)
    if not start < end:
        raise ArchlabError(
            f"start={start!r}, end={end!r}: the sweep needs start < end",
            cli_message=f"--start {start} --end {end}: the sweep needs start < end",
        )
    check_int("iterations", iterations, 3, MAX_ITERATIONS)  # fewer read as a divergence
    check_int("batch_size", batch_size, 1, MAX_BATCH)
    check_seed(seed)


def loss_moved(losses: Sequence[float], smoothed: Sequence[float]) -> bool:
    """Whether the sweep trained at all: the lowest smoothed loss is at least
    :data:`MOVED` below the mean of the first losses (the first 10 steps, or all)."""
    first = losses[: max(1, min(10, len(losses)))]
    level = sum(first) / len(first)
    return min(smoothed) < level - MOVED * abs(level)


def suggest(lrs: Sequence[float], smoothed: Sequence[float]) -> tuple[float, float]:
    """``(steepest, minimum / 10)``: see :data:`RULE`."""
    low = min(range(len(smoothed)), key=smoothed.__getitem__)
    if low < 2:
        return lrs[low], lrs[low] / 10
    logs = [math.log10(x) for x in lrs[: low + 1]]
    slopes = [
        (smoothed[i + 1] - smoothed[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(1, low)
    ]
    steepest = 1 + min(range(len(slopes)), key=slopes.__getitem__)
    return lrs[steepest], lrs[low] / 10


def lr_find(
    model,
    input_shape=None,
    overrides: Sequence[str] = (),
    *,
    data=None,
    start: float = 1e-7,
    end: float = 10.0,
    iterations: int = 200,
    batch_size: int = 100,
    seed: int = 0,
    device: str = "auto",
    data_dir: str | os.PathLike | None = None,
) -> LRFinder:
    """Sweep Adam's learning rate exponentially over a short run of ``model`` on
    Fashion-MNIST and suggest one (see the module's docstring for the rule).

    Args:
        model: a spec (``"cnn"``, ``"file.py:Net"``...) or an ``nn.Module`` (a copy trains).
        input_shape: unused (Fashion-MNIST's ``(1, 28, 28)``); kept for the common signature.
        overrides: ``--set`` what-ifs. Default: none.
        data: the dataset in memory. Default: :func:`~archlab.load_fashion_mnist`.
        start, end: the first and last rate. Default: 1e-7 and 10.
        iterations: steps of the sweep (fewer when the loss diverges). Default: 200.
        batch_size: images per step. Default: 100.
        seed: seeds the initialisation and the batches. Default: 0.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``. Default: auto.
        data_dir: where the data is when ``data`` is None. Default: the usual place.

    Returns:
        An :class:`LRFinder` report (``.suggested``, ``.plot()``).

    Example::

        >>> archlab.lr_find("cnn").suggested  # doctest: +SKIP
    """
    import copy

    import torch
    from torch import nn

    from archlab.device import pick_device
    from archlab.models.spec import resolve_model, what_ifs
    from archlab.training.data import load_fashion_mnist
    from archlab.training.optim import make_optimizer as _optimizer
    from archlab.training.predict import to_input

    check_lr_find_options(
        start=start, end=end, iterations=iterations, batch_size=batch_size, seed=seed
    )
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ArchlabError(
            f"overrides={overrides!r}: give a list of what-ifs, e.g. ['layer1.0.padding=2']"
        )
    began = time.perf_counter()
    torch.manual_seed(seed)
    built, name = resolve_model(model, overrides)
    changed = what_ifs(model, overrides)
    if changed:  # the title names the what-if, as shapes and params do
        name = f"{name} with {', '.join(changed)}"
    if isinstance(model, nn.Module) and built is model:
        built = copy.deepcopy(model)
    _check_trainable(model, overrides, built)
    dev = pick_device(device)
    net = built.to(dev).train()
    data = data if data is not None else load_fashion_mnist(data_dir)
    norm = data.pixel_stats()
    optimizer = _optimizer(net, start, dev)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.train_labels), generator=generator)
    images, labels = data.train_images, data.train_labels
    batches = max(1, len(order) // batch_size)
    count = {"i": 0}

    def step(lr: float) -> float:
        b = count["i"] % batches
        count["i"] += 1
        idx = order[b * batch_size : (b + 1) * batch_size]
        x = to_input(images[idx].to(dev), norm)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), labels[idx].to(dev))
        value = loss.item()
        if math.isfinite(value):
            loss.backward()
            optimizer.step()
        return value

    lrs, losses, smoothed, diverged = sweep(step, start, end, iterations)
    if len(lrs) < 3:
        raise ArchlabError(
            f"{name}'s loss diverged at once, from start={start:g}; give a lower start",
            cli_message=f"{name}'s loss diverged at once, from --start {start:g}; start lower",
        )
    moved = loss_moved(losses, smoothed)
    steepest, min10 = suggest(lrs, smoothed) if moved else (math.nan, math.nan)
    seconds = time.perf_counter() - began
    return LRFinder(name, lrs, losses, smoothed, steepest, min10, RULE, diverged, seconds, moved)


def _check_trainable(model, overrides: Sequence[str], built) -> None:
    """Refuse what ``train`` refuses, with train's own check (a forward that returns a
    dict, a ``--set`` that does not fit, the wrong number of class scores)."""
    from torch import nn

    from archlab.models.spec import ModelSpec
    from archlab.training.check import check_trainable

    run_model = getattr(model, "model", None)
    if isinstance(run_model, nn.Module) and hasattr(model, "folder"):  # a trained Run
        model = run_model
    if isinstance(model, str):
        spec = ModelSpec.parse(model, overrides)
    elif isinstance(model, ModelSpec):
        spec = ModelSpec(model.source, model.kwargs, (*model.overrides, *overrides))
    else:  # a module: named by its class in the messages
        spec = ModelSpec(type(model).__name__, (), tuple(overrides))
    check_trainable(spec, built)
