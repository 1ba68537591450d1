"""The training loop: one run's model, optimiser and data on the device, step by step.

Batches are built by indexing the in-memory uint8 tensors and scaled per batch: no
per-sample PIL image or ``ToTensor``. On a GPU the whole dataset is moved there once. Test
accuracy is measured on all 10,000 test images in eval mode (the lecture measured it with
dropout still on), in batches of 1,000 under ``torch.inference_mode()``.

The loop's state is one :class:`_Progress`, saved whole in each checkpoint; a checkpoint
records a test accuracy only when it was measured on the weights it holds.
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from archlab import __version__
from archlab._text import plural
from archlab.training.check import materialize
from archlab.training.checkpoint import FORMAT
from archlab.training.data import CLASSES, FashionMNIST, without_class
from archlab.training.optim import make_optimizer
from archlab.training.plan import TrainPlan
from archlab.training.predict import evaluate, has_conv, nhwc_runs, to_input
from archlab.training.recipes import RECIPES, scheduled_lr, spoken
from archlab.training.runs import write_run_files
from archlab.training.stopping import describe, lower_bound, reached


@dataclass
class _Progress:
    """Everything the loop changes, with its name; saved whole in each checkpoint."""

    iteration: int = 0
    seconds: float = 0.0
    eval_seconds: float = 0.0
    window: list = field(default_factory=lambda: [0.0, 0])  # loss sum, count: history point
    interval: list = field(default_factory=lambda: [0.0, 0])  # ... since the last log line
    test_accuracy: float | None = None
    history: dict = field(default_factory=dict)
    # --target: the iteration and training seconds at the first evaluation that reached it
    target_iteration: int | None = None
    target_seconds: float | None = None

    def add_loss(self, value: float) -> None:
        for acc in (self.window, self.interval):
            acc[0] += value
            acc[1] += 1


def _epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """The sample order of one epoch: a function of (seed, epoch) only, so a resumed run
    sees exactly the batches an uninterrupted one would."""
    if not shuffle:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


@contextlib.contextmanager
def stop_flag() -> Iterator[dict]:
    """Turn Ctrl-C (and SIGTERM) into a flag the loop checks between iterations, so a
    checkpoint is written from a consistent state (never in the middle of a step). Held
    around the final save too (``train``): a stop asked for while a finished run is being
    written waits for the write, instead of losing the run (a second Ctrl-C stops at once)."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["stop"] and signum == signal.SIGINT:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        flag["stop"] = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Trainer:
    """One run: its plan's model, its optimiser and data on the device, and the loop."""

    def __init__(
        self,
        plan: TrainPlan,
        data: FashionMNIST,
        log,
        progress: bool | None = None,
        watch: int | None = None,
    ) -> None:
        self.ref, self.spec, self.config = plan.ref, plan.spec, plan.config
        self.dev, self.log, self.watch = plan.device, log, watch
        config, dev, payload = plan.config, plan.device, plan.payload
        self.recipe = RECIPES[config.recipe]
        self.data_md5 = dict(data.source.md5) if data.source is not None else {}
        if payload is not None and payload.get("data_md5") and self.data_md5 != payload["data_md5"]:
            other = "{} was trained on other data (its files' checksums differ); resume with "
            raise spoken(
                "resume=True: " + other.format(self.ref.checkpoint) + "the same data or "
                "start afresh",
                "--resume: " + other.format(self.ref.checkpoint) + "the same data or start afresh",
                1,
            )
        if config.held_out is not None:  # the class is never seen: not trained, not tested
            data = without_class(data, config.held_out)
        if payload is not None:
            norm = payload.get("normalize")
            self.normalize = (float(norm[0]), float(norm[1])) if norm else None
        else:
            self.normalize = data.pixel_stats() if self.recipe.normalize else None

        # the random state the plan's model was built with: the run starts from there
        torch.manual_seed(config.seed)
        torch.set_rng_state(plan.rng)
        sample = to_input(data.test_images[:2].to(dev), self.normalize)
        net = materialize(plan.model.to(dev), sample)
        # the fast recipe's start, said after the run's first line (a resume has its weights)
        self.whitening: str | None = None
        if self.recipe.whiten and payload is None:
            from archlab.training.whiten import SAMPLE, whiten_first_conv

            first = to_input(data.train_images[:SAMPLE].to(dev), self.normalize)
            self.whitening = whiten_first_conv(net, first)
        self.channels_last = has_conv(net) and nhwc_runs(net, sample)
        if self.channels_last:  # NHWC: measurably faster conv, pooling and BN on a CPU
            net = net.to(memory_format=torch.channels_last)
        elif has_conv(net):
            log(
                f"{self.ref.name}: training in the NCHW layout: its forward pass needs "
                "contiguous tensors (a .view after a convolution?); .flatten(1) or .reshape "
                "would let it run in NHWC, faster on a CPU"
            )
        self.net = net
        # the fast recipe's bfloat16 forward passes, only where the device has them natively
        self.bf16 = False
        if self.recipe.bf16:
            from archlab.training.speed import bf16_native

            self.bf16 = bf16_native(dev)
        self.optimizer = make_optimizer(net, config.lr, dev)
        self.params = sum(p.numel() for p in net.parameters())
        # the last `validation` training images are held out: never trained on
        kept = len(data.train_labels) - config.validation
        self.per_epoch = math.ceil(kept / config.batch_size)
        self.total = self.per_epoch * config.epochs
        self.images = data.train_images[:kept].to(dev)
        self.labels = data.train_labels[:kept].to(dev)
        self.test_images, self.test_labels = data.test_images.to(dev), data.test_labels.to(dev)
        # what the steps read: the images themselves, or this epoch's augmented copy
        self.view = self.images if self.recipe.pad is None else torch.empty_like(self.images)
        self.average = None  # the fast recipe's EMA of the weights
        if self.recipe.ema is not None:
            from archlab.training.speed import WeightAverage

            self.average = WeightAverage(net, self.recipe.ema)
        # --target: evaluations read the held-out images, and the test set once at the stop
        self.check_images = data.train_images[kept:].to(dev)
        self.check_labels = data.train_labels[kept:].to(dev)
        self.progress = _Progress(history={"model": self.ref.name, "config": asdict(config)})
        self.progress.history.update(train=[], eval=[])
        if self.whitening is not None:  # kept with the run: which conv started whitened
            self.progress.history["whitening"] = self.whitening
        self.show_bar = sys.stderr.isatty() if progress is None else progress
        self.bar = None
        # whether the folder's earlier files are kept aside already (as *.prev.*): a
        # fresh run and a warm restart keep them at their first save, a resume continues
        self.backed_up = False
        self.evaluated_at: int | None = None  # the iteration test_accuracy was measured at
        self.pending: list[torch.Tensor] = []  # losses on the device, not yet read
        self.graphed = None  # the step as a CUDA graph, while run() runs on CUDA
        # snapshots (--snapshots N): an earlier run's are moved aside before this fresh
        # run writes anything; a resume or a warm restart continues the run's own
        self.fresh = payload is None
        self.snapshots_moved = False  # an earlier run's were moved aside (snapshots.prev)
        self._aside_done = False
        self.keeper = None
        if config.snapshots:
            from archlab.training.snapshots import SnapshotKeeper, accuracy_subset

            at = None if payload is None else int(payload.get("iteration", 0))
            self.keeper = SnapshotKeeper(self.ref.folder, config.snapshots, self.total, at)
            self.snap_test = accuracy_subset(self.test_images, self.test_labels)
        if payload is not None:
            self._restore(payload, plan.warm_restart)

    def _restore(self, payload: dict, warm_restart: bool) -> None:
        try:
            self.net.load_state_dict(payload["state_dict"])
            self.optimizer.load_state_dict(payload["optimizer"])
            torch.set_rng_state(payload["rng"])
            if self.dev.type == "cuda" and payload.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(payload["cuda_rng"])
            for key in asdict(self.progress):
                if key in payload:
                    setattr(self.progress, key, payload[key])
            if self.average is not None and payload.get("average") is not None:
                self.average.load_state_dict(payload["average"])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'incomplete'}"
            text = f"{self.ref.checkpoint} cannot be resumed ({why}); train afresh without "
            raise spoken(f"resume=True: {text}resume", f"--resume: {text}--resume", 1) from exc
        if self.progress.test_accuracy is not None:
            self.evaluated_at = self.progress.iteration  # a checkpoint records no other
        # a resume continues this run; a warm restart keeps the finished run aside first
        self.backed_up = not warm_restart
        self.log(
            f"{self.ref.name}: resuming at iteration {self.progress.iteration:,} of {self.total:,}"
        )
        dynamics = self.progress.history.get("dynamics")
        if self.watch is None and isinstance(dynamics, dict) and dynamics.get("every"):
            # a watched run goes on being watched (a resume that dropped it left the
            # record ending at the interruption, with nothing to say so)
            self.watch = int(dynamics["every"])
            self.log(
                f"{self.ref.name}: recording the dynamics every {self.watch:,} iterations, "
                "as the run did (--watch)"
            )

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop_at: int, flag: dict | None = None) -> bool:
        """Train up to iteration ``stop_at``; True when stopped by Ctrl-C or SIGTERM.

        ``flag``: a :func:`stop_flag` the caller holds (over the save after, too).
        Default: one held while the loop runs."""
        config, p = self.config, self.progress
        rec = self.recipe
        mode = ""
        if self.dev.type == "cuda":
            mode = " (deterministic)" if config.deterministic else " (fast, not deterministic)"
        self.log(
            f"{self.ref.name}: recipe {rec.name} ({rec.summary}); "
            f"{plural(config.epochs, 'epoch')} × {plural(self.per_epoch, 'iteration')} "
            f"of batch {config.batch_size}, Adam lr {config.lr:g}, "
            f"seed {config.seed}, on {self.dev}{mode}"
        )
        if self.whitening is not None:
            self.log(f"{self.ref.name}: {self.whitening}")
            self.whitening = None  # said once, however often run() is called
        if config.target is not None:
            n, sure = len(self.check_labels), config.target_confidence
            self.log(f"{self.ref.name}: {describe(n, config.target, sure)}")
        if config.held_out is not None:
            k = config.held_out
            self.log(
                f"{self.ref.name}: class {k} ({CLASSES[k]}) held out: trained on "
                f"{len(self.labels):,} images of the other {len(CLASSES) - 1} classes; its "
                f"test accuracy is over their {len(self.test_labels):,} test images"
            )
        loss_fn = nn.CrossEntropyLoss(label_smoothing=rec.label_smoothing)
        self.net.train()
        held = contextlib.nullcontext(flag) if flag is not None else stop_flag()
        with held as flag, self._on_cuda(loss_fn), _watching(self):
            while p.iteration < stop_at:
                epoch = p.iteration // self.per_epoch
                order = _epoch_order(len(self.labels), config.seed, epoch, rec.shuffle)
                order = order.to(self.dev)
                if rec.pad is not None:  # this epoch's crops and flips, one gather
                    from archlab.training.speed import augment_epoch

                    started = time.perf_counter()  # training time: counted as such
                    self.view.copy_(
                        augment_epoch(self.images, config.seed, epoch, rec.pad, rec.flip)
                    )
                    p.seconds += time.perf_counter() - started
                first = p.iteration - epoch * self.per_epoch
                last = min(self.per_epoch, stop_at - epoch * self.per_epoch)
                self.bar = _progress_bar(self.show_bar, first, last, epoch, config.epochs)
                try:
                    for b in range(first, last):
                        self._step(
                            order[b * config.batch_size : (b + 1) * config.batch_size], loss_fn
                        )
                        if self._evaluation_due():
                            self._log_point()
                            self.net.train()
                        elif p.iteration == stop_at:
                            self._log_point(regular=False)
                        if flag["stop"] and p.iteration < self.total:
                            return True  # (a stop after the last step: the run finishes)
                        if self.reached_target():
                            self._stop_at_target()
                            return False
                finally:
                    if self.bar is not None:
                        self.bar.close()
                        self.bar = None
                if p.iteration < stop_at:  # an epoch's end
                    self.save(self.snapshot(finished=False))
            if p.iteration == self.total:
                self._finish()
        return False

    def _evaluation_due(self) -> bool:
        """Every ``log_every`` iterations and at the end; with a ``target``, at the middle
        and the end of each epoch instead (the stop rule's fixed points)."""
        p = self.progress
        if self.config.target is None:
            return p.iteration % self.config.log_every == 0 or p.iteration == self.total
        return p.iteration % self.per_epoch in (0, self.per_epoch // 2)

    def reached_target(self) -> bool:
        """Whether a ``target`` run's latest evaluation reached it (the run stops there)."""
        return self.progress.target_iteration is not None

    def _stop_at_target(self) -> None:
        """Say when the target was reached, then read the test set, once."""
        p, config = self.progress, self.config
        sure = config.target_confidence
        said = "reached" if sure == 0.5 else f"{100 * sure:g}% sure it reached"
        self.log(
            f"{self.ref.name}: {said} {config.target:g}% on the {config.validation:,} "
            f"validation images at iteration {p.target_iteration:,} (epoch "
            f"{p.target_iteration / self.per_epoch:.1f}) after {p.target_seconds:.1f} s of "
            "training; now the test set, once"
        )
        self._finish()

    def _eval_entry(self, train_loss, test_loss: float, accuracy: float) -> dict:
        """One point of the history's ``eval`` list, at the current iteration."""
        p = self.progress
        return {
            "iteration": p.iteration,
            "epoch": p.iteration / self.per_epoch,
            "train_loss": train_loss,
            "test_loss": test_loss,
            "test_accuracy": accuracy,
            "seconds": round(p.seconds, 3),
        }

    def _finish(self) -> None:
        """The end of a run: the EMA becomes the weights; a ``target`` run reads the test
        set once (its evaluations read validation images)."""
        p = self.progress
        if self.average is not None:
            self.average.copy_to(self.net)
        if self.config.target is not None:
            accuracy, test_loss = self._evaluate(self.test_images, self.test_labels, final=True)
            p.test_accuracy = accuracy
            self.evaluated_at = p.iteration
            p.history["eval"].append(self._eval_entry(None, test_loss, accuracy))
            if not self.reached_target():
                best = max((e["accuracy"] for e in p.history.get("validation", [])), default=0)
                sure = self.config.target_confidence
                said = "reach" if sure == 0.5 else f"make {100 * sure:g}% sure of"
                self.log(
                    f"{self.ref.name}: did not {said} {self.config.target:g}% on validation "
                    f"(best reading {100 * best:.2f}%)"
                )
            self.log(f"{self.ref.name}: test accuracy {100 * accuracy:.2f}% (read once)")

    def _evaluate(
        self, images: torch.Tensor, labels: torch.Tensor, final: bool = False
    ) -> tuple[float, float]:
        """Accuracy and loss on a labelled set, as the recipe evaluates: with flip TTA
        and the weights' EMA where it uses them, and at the run's ``final`` test reading
        with its shifted views (``shift_tta``)."""
        measure = evaluate
        if self.recipe.tta or (final and self.recipe.shift_tta):
            from archlab.training.speed import evaluate_tta

            shift = self.recipe.shift_tta if final else 0
            measure = functools.partial(evaluate_tta, shift=shift)
        if self.average is None or self.progress.iteration == 0:
            return measure(self.net, images, labels, self.normalize)
        with self.average.swapped_in(self.net):
            return measure(self.net, images, labels, self.normalize)

    @contextlib.contextmanager
    def _on_cuda(self, loss_fn) -> Iterator[None]:
        """On CUDA: the run's determinism mode, and the step captured in a CUDA graph where
        the model allows it, both recorded in the history; elsewhere nothing at all."""
        if self.dev.type != "cuda":
            yield
            return
        from archlab.training._cuda import cuda_mode
        from archlab.training._graph import graph_step

        with cuda_mode(self.dev, self.config.deterministic) as left_to_chance:
            if self.watch:  # its hooks and its wrapped optimizer step run in Python
                self.graphed, how = None, "--watch records the dynamics in Python each step"
            elif self.bf16:
                self.graphed, how = None, "bfloat16 autocast runs in eager steps"
            else:
                self.graphed, how = graph_step(
                    self.net,
                    self.optimizer,
                    loss_fn,
                    self.view,
                    self.labels,
                    self.config.batch_size,
                    self.normalize,
                    self.channels_last,
                )
            if self.graphed is None:
                self.log(f"{self.ref.name}: eager steps on CUDA: {how}")
            self.progress.history["cuda"] = {
                "gpu": torch.cuda.get_device_name(self.dev),
                "mode": "deterministic" if self.config.deterministic else "fast",
                "step": how if self.graphed is not None else f"eager: {how}",
                "nondeterministic_ops": left_to_chance,  # filled as torch reports them
            }
            try:
                yield
            finally:
                self.graphed = None

    def _step(self, idx: torch.Tensor, loss_fn) -> None:
        p, config = self.progress, self.config
        started = time.perf_counter()
        if self.recipe.schedule != "constant":  # a function of the iteration: nothing to save
            # after a warm restart (more epochs for a finished run) a new cosine
            # runs from the recipe's rate over the added iterations
            start = config.restart
            lr_now = scheduled_lr(
                self.recipe.schedule, config.lr, p.iteration - start, self.total - start
            )
            self.optimizer.set_lr(lr_now)
        if self.graphed is not None:
            loss = self.graphed.step(idx)
        else:
            # index_select: 3× faster than images[idx] for a batch of 100 here
            x = to_input(self.view.index_select(0, idx), self.normalize, self.channels_last)
            self.optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.dev.type, torch.bfloat16, enabled=self.bf16):
                loss = loss_fn(self.net(x), self.labels.index_select(0, idx))
            loss.backward()
            self.optimizer.step()
        if self.average is not None:
            self.average.update(self.net)
        self.pending.append(loss.detach())
        p.iteration += 1
        it = p.iteration
        history_point = it % 50 == 0 or it == self.total
        if history_point or it % config.log_every == 0:
            self._read_losses()  # the loop's only wait for the device
        p.seconds += time.perf_counter() - started
        if history_point:
            s, c = p.window
            p.history["train"].append({"iteration": it, "loss": s / c})
            p.window = [0.0, 0]
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{s / c:.4f}", refresh=False)
        if self.bar is not None:
            self.bar.update()
        if self.keeper is not None and it in self.keeper.due:
            self._take_snapshot()

    def _take_snapshot(self) -> None:
        """Keep the model as it is now, with its accuracy on the snapshots' test images
        (counted in the evaluation time); the step after it trains as if none was taken:
        eval mode draws no random numbers and moves no batch-norm statistics."""
        started = time.perf_counter()
        self._snapshots_aside()
        it = self.progress.iteration
        accuracy, _ = evaluate(self.net, *self.snap_test, self.normalize)
        self.net.train()
        self.keeper.take(self.net, it, it / self.per_epoch, accuracy)
        self.progress.eval_seconds += time.perf_counter() - started

    def _snapshots_aside(self) -> None:
        """A fresh run's first write: an earlier run's snapshots go to snapshots.prev."""
        if self.fresh and not self._aside_done:
            from archlab.training.snapshots import keep_previous_snapshots

            self.snapshots_moved = keep_previous_snapshots(self.ref.folder)
        self._aside_done = True

    def _read_losses(self) -> None:
        """Add the losses of the steps since the last read to the accumulators, in order
        (one host-device sync for all of them); a non-finite one stops the run before
        anything more is saved."""
        if not self.pending:
            return
        values = torch.stack(self.pending).tolist()
        self.pending = []
        first = self.progress.iteration - len(values) + 1
        for i, value in enumerate(values):
            if not math.isfinite(value):
                kept = (
                    f"nothing since was saved, {self.ref.checkpoint} is the last good state"
                    if self.ref.checkpoint.is_file()
                    else "nothing was saved (it diverged before its first checkpoint)"
                )
                text = (
                    f"{self.ref.name}: the training loss became {value} at iteration "
                    f"{first + i:,} (training diverged); {kept}; try a smaller "
                )
                lr = f"{self.config.lr:g}"
                raise spoken(f"{text}lr than {lr}", f"{text}--lr than {lr}", 1)
            self.progress.add_loss(value)

    def _log_point(self, regular: bool = True) -> None:
        """Evaluate, print the lecture's line, and (at a regular point) add it to history.

        A stop requested with ``max_iterations`` is evaluated but leaves the history and
        the loss accumulators alone, so a resumed run ends with the same history."""
        self._read_losses()
        p = self.progress
        started = time.perf_counter()
        if self.config.target is not None:  # held-out images: the test set stays unread
            self._check_target(regular)
            p.eval_seconds += time.perf_counter() - started
            return
        final = p.iteration == self.total  # the run's own reading (shifted views, if any)
        accuracy, test_loss = self._evaluate(self.test_images, self.test_labels, final)
        p.eval_seconds += time.perf_counter() - started
        s, c = p.interval
        train_loss = s / c if c else None
        p.test_accuracy = accuracy
        self.evaluated_at = p.iteration
        if regular:
            p.interval = [0.0, 0]
            p.history["eval"].append(self._eval_entry(train_loss, test_loss, accuracy))
        shown = f"{train_loss:.4f}" if train_loss is not None else "-"
        line = f"Iteration: {p.iteration}, Loss: {shown}, Accuracy: {100 * accuracy:.2f}%"
        if final and self.recipe.shift_tta:
            line += f" (over {(2 * self.recipe.shift_tta + 1) ** 2} shifted views)"
        if self.bar is not None:
            self.bar.clear()
            self.log(line)
            self.bar.refresh()
        else:
            self.log(line)

    def _check_target(self, regular: bool) -> None:
        """A ``target`` run's evaluation: on the validation images, logged, and the first
        that reaches the target (:mod:`archlab.training.stopping`'s rule) recorded."""
        p = self.progress
        accuracy, _ = self._evaluate(self.check_images, self.check_labels)
        n = len(self.check_labels)
        s, c = p.interval
        train_loss = s / c if c else None
        if regular:  # the fixed points: only they may stop the run
            p.interval = [0.0, 0]
            p.history.setdefault("validation", []).append(
                {"iteration": p.iteration, "accuracy": accuracy, "seconds": round(p.seconds, 3)}
            )
            if p.target_iteration is None and reached(
                accuracy, n, self.config.target, self.config.target_confidence
            ):
                p.target_iteration, p.target_seconds = p.iteration, p.seconds
        shown = f"{train_loss:.4f}" if train_loss is not None else "-"
        line = (
            f"Iteration: {p.iteration}, Loss: {shown}, Validation accuracy: {100 * accuracy:.2f}%"
        )
        if self.config.target_confidence > 0.5:
            bound = 100 * lower_bound(accuracy, n, self.config.target_confidence)
            line += f" ({100 * self.config.target_confidence:g}% sure of ≥ {bound:.2f}%)"
        if self.bar is not None:
            self.bar.clear()
            self.log(line)
            self.bar.refresh()
        else:
            self.log(line)

    # -- files ------------------------------------------------------------------------------
    def snapshot(self, finished: bool) -> dict:
        """The checkpoint of the run as it stands. Its ``test_accuracy`` is the one
        measured on these weights, or None when steps were taken since."""
        self._read_losses()
        p = self.progress
        earned = p.test_accuracy if self.evaluated_at == p.iteration else None
        return {
            "format": FORMAT,
            "model": self.ref.name,
            "spec": self.spec.base,
            "overrides": list(self.spec.overrides),
            "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.dev.type == "cuda" else None,
            "epoch": p.iteration // self.per_epoch,
            "finished": finished,
            "config": asdict(self.config),
            "normalize": list(self.normalize) if self.normalize is not None else None,
            **asdict(p),
            "test_accuracy": earned,
            "params": self.params,
            "data_md5": self.data_md5,
            "average": self.average.state_dict() if self.average is not None else None,
            "versions": {"torch": str(torch.__version__), "archlab": __version__},
        }

    def save(self, payload: dict, figures: bool = False) -> list[Path]:
        """Write ``payload`` (a :meth:`snapshot`) as the run's checkpoint, the history
        beside it (and the curves); the folder's earlier run is kept aside first."""
        self._snapshots_aside()
        files = write_run_files(
            self.ref.folder, payload, keep_previous=not self.backed_up, figures=figures
        )
        self.backed_up = True
        return files

    def trained_model(self) -> nn.Module:
        """The trained model as a run hands it out: on the CPU, contiguous, in eval mode."""
        net = self.net.to("cpu")
        if self.channels_last:
            net = net.to(memory_format=torch.contiguous_format)
        return net.eval()


def _watching(trainer: Trainer):
    """The dynamics recorder around the loop, when asked for (``--watch``)."""
    if not trainer.watch:
        return contextlib.nullcontext()
    from archlab.training.dynamics import watch

    p = trainer.progress
    return watch(trainer.net, trainer.optimizer, trainer.watch, p.iteration, p.history)


def _progress_bar(show: bool, first: int, last: int, epoch: int, epochs: int):
    if not show:
        return None
    # tqdm.std, not tqdm.auto: a text bar everywhere, no ipywidgets warning in Jupyter
    from tqdm.std import tqdm

    return tqdm(
        total=last,
        initial=first,
        desc=f"epoch {epoch + 1}/{epochs}",
        unit="it",
        leave=False,
        dynamic_ncols=True,
    )
