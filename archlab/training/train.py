"""Training any model on Fashion-MNIST held in memory.

Two recipes (``archlab.training.recipes``), both Adam at lr 1e-3, batch 100, cross-entropy, 5 epochs
(3,000 iterations). Batches are built by indexing the in-memory uint8 tensors and scaled
per batch: no per-sample PIL image or ``ToTensor``. On a GPU the whole dataset is moved
there once. Test accuracy is measured on all 10,000 test images in eval mode (the lecture
measured it with dropout still on), in batches of 1,000 under ``torch.inference_mode()``.

Before a step is taken the model is traced on one image: a chain that does not fit, or an
output that is not one score per class, is refused with the shape diagnosis.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from archlab import __version__
from archlab._shell import archlab_command
from archlab.device import pick_device
from archlab.errors import ArchlabError
from archlab.models.spec import ModelSpec, user_code
from archlab.trace.formulas import fmt_shape
from archlab.training._alloc import keep_freed_memory
from archlab.training.checkpoint import FORMAT, load_checkpoint
from archlab.training.data import CLASSES, IMAGE_SHAPE, FashionMNIST, load_fashion_mnist
from archlab.training.predict import evaluate, has_conv, nhwc_runs, to_input
from archlab.training.recipes import RECIPES, TrainConfig, scheduled_lr
from archlab.training.run import Run, weights_into
from archlab.training.runs import (
    RunRef,
    check_same_model,
    find_run,
    lock_run,
    named_run,
    train_hint,
    write_run_files,
)

_SETTINGS = ("recipe", "epochs", "batch_size", "lr", "seed", "log_every", "deterministic")


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


def _optimizer(model: nn.Module, lr: float, device: torch.device):
    """Adam, bit-identical to ``torch.optim.Adam``, through torch's functional ``adam``:
    constructing any ``torch.optim`` optimiser imports ``torch._dynamo`` (1.5-2 s, more
    than a DNN epoch's compute), the functional API does not (``archlab/training/_adam.py``)."""
    from archlab.training._adam import Adam

    # the fused kernel does the whole Adam update in one pass: measurably faster on a CPU
    # (MPS gained it only in later torch releases, so it keeps the default there); on CUDA
    # its learning rate lives on the device, so a CUDA graph of the step follows a schedule
    fused = device.type in ("cpu", "cuda")
    return Adam(model.parameters(), lr=lr, fused=fused, capturable=device.type == "cuda")


@contextlib.contextmanager
def _sigint_flag() -> Iterator[dict]:
    """Turn Ctrl-C (and SIGTERM) into a flag the loop checks between iterations, so a
    checkpoint is written from a consistent state (never in the middle of a step)."""
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


# specs train_models has checked before its first step: train() does not trace them again
# (set for the length of one train_models call, so an edited model file is checked anew)
_CHECKED: contextvars.ContextVar[frozenset] = contextvars.ContextVar("checked", default=frozenset())


def check_trainable(spec: ModelSpec, model: nn.Module | None = None) -> None:
    """Refuse a model that cannot take one Fashion-MNIST image (1×28×28), does not return
    a tensor, or does not output one score per class (10). ``train_models`` checks
    every model before the first step, and ``train`` does not trace them again within
    that call. A lazy model (``nn.LazyLinear``) is materialised by the
    trace's forward pass."""
    if spec in _CHECKED.get():
        return
    if model is None:
        model = spec.build()
    from archlab.trace.shapes import trace_shapes

    with user_code(f"tracing {spec.label}"):
        # the images are what they are: a fix changes the model, never the input
        report = trace_shapes(model, IMAGE_SHAPE, expect=(len(CLASSES),), input_fixed=True)
    size = fmt_shape(IMAGE_SHAPE)
    if report.error is not None:
        shape = ",".join(map(str, IMAGE_SHAPE))
        command = archlab_command("shapes", *spec.command_words, "--input", shape)
        see = f"(see `{command}`)" if command else "(see archlab shapes)"
        head = f"{spec.label} cannot be trained on {size} Fashion-MNIST images:"
        raise ArchlabError(
            f"{head} {report.error} {see}",
            1,
            cli_message=f"{head} {report.error.render(flags=True)} {see}",
        )
    if report.returns != "a tensor":
        raise ArchlabError(
            f"{spec.label}'s forward returns {report.returns}; training needs the scores "
            f"tensor itself, (N, {len(CLASSES)}): return it alone (e.g. return out[0])",
            1,
        )
    if report.output_shape != (len(CLASSES),):
        shape = fmt_shape(report.output_shape or ()) or "nothing"
        raise ArchlabError(
            f"{spec.label} outputs {shape} per image, not {len(CLASSES)} class scores; "
            f"make its last layer output {len(CLASSES)} (e.g. nn.Linear(..., {len(CLASSES)}))",
            1,
        )


def materialize(model: nn.Module, sample: torch.Tensor) -> nn.Module:
    """Give a lazy model (``nn.LazyConv2d``, ``nn.LazyLinear``, as d2l writes them) its
    parameters by one forward pass on ``sample``, before anything needs them (the
    optimiser, the parameter count, a checkpoint). Other models are left as they are."""
    from torch.nn.modules.lazy import LazyModuleMixin

    if any(
        isinstance(m, LazyModuleMixin) and m.has_uninitialized_params() for m in model.modules()
    ):
        from archlab._modes import in_mode

        # eval: no batch statistics or dropout on this one pass
        with in_mode(model), torch.no_grad():
            model(sample)
    return model


class _Trainer:
    """One run: the model, its optimiser and data on the device, and the loop."""

    watch: int | None = None  # record the dynamics every this many steps (--watch)

    def __init__(self, ref, spec, config, data, dev, payload, log, progress) -> None:
        self.ref, self.spec, self.config, self.dev, self.log = ref, spec, config, dev, log
        self.recipe = RECIPES[config.recipe]
        self.data_md5 = dict(data.source.md5) if data.source is not None else {}
        if payload is not None and payload.get("data_md5") and self.data_md5 != payload["data_md5"]:
            raise ArchlabError(
                f"--resume: {ref.checkpoint} was trained on other data (its files' checksums "
                "differ); resume with the same data or start afresh",
                1,
            )
        if payload is not None:
            norm = payload.get("normalize")
            self.normalize = (float(norm[0]), float(norm[1])) if norm else None
        else:
            self.normalize = data.pixel_stats() if self.recipe.normalize else None

        if dev.type == "cuda":
            from archlab.training._cuda import prepare

            prepare(dev, config.deterministic)  # before the first cuBLAS call
        torch.manual_seed(config.seed)
        sample = to_input(data.test_images[:2].to(dev), self.normalize)
        net = materialize(spec.build().to(dev), sample)
        self.channels_last = has_conv(net) and nhwc_runs(net, sample)
        if self.channels_last:  # NHWC: measurably faster conv, pooling and BN on a CPU
            net = net.to(memory_format=torch.channels_last)
        elif has_conv(net):
            log(
                f"{ref.name}: training in the NCHW layout: its forward pass needs contiguous "
                "tensors (a .view after a convolution?); .flatten(1) or .reshape would let "
                "it run in NHWC, faster on a CPU"
            )
        self.net = net
        self.optimizer = _optimizer(net, config.lr, dev)
        self.params = sum(p.numel() for p in net.parameters())
        self.per_epoch = math.ceil(len(data.train_labels) / config.batch_size)
        self.total = self.per_epoch * config.epochs
        self.images, self.labels = data.train_images.to(dev), data.train_labels.to(dev)
        self.test_images, self.test_labels = data.test_images.to(dev), data.test_labels.to(dev)
        self.progress = _Progress(history={"model": ref.name, "config": asdict(config)})
        self.progress.history.update(train=[], eval=[])
        self.show_bar = sys.stderr.isatty() if progress is None else progress
        self.bar = None
        self.backed_up = False
        self.pending: list[torch.Tensor] = []  # losses on the device, not yet read
        self.graphed = None  # the step as a CUDA graph, while run() runs on CUDA
        if payload is not None:
            self._restore(payload)

    def _restore(self, payload: dict) -> None:
        try:
            self.net.load_state_dict(payload["state_dict"])
            self.optimizer.load_state_dict(payload["optimizer"])
            torch.set_rng_state(payload["rng"])
            if self.dev.type == "cuda" and payload.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(payload["cuda_rng"])
            for key in asdict(self.progress):
                if key in payload:
                    setattr(self.progress, key, payload[key])
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise ArchlabError(
                f"--resume: {self.ref.checkpoint} cannot be resumed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'incomplete'}); train afresh "
                "without --resume",
                1,
            ) from exc
        self.backed_up = True  # resuming continues this run: nothing to keep aside
        self.log(
            f"{self.ref.name}: resuming at iteration {self.progress.iteration:,} of {self.total:,}"
        )

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop_at: int) -> bool:
        """Train up to iteration ``stop_at``; True when stopped by Ctrl-C or SIGTERM."""
        config, p = self.config, self.progress
        rec = self.recipe
        mode = ""
        if self.dev.type == "cuda":
            mode = " (deterministic)" if config.deterministic else " (fast, not deterministic)"
        self.log(
            f"{self.ref.name}: recipe {rec.name} ({rec.summary}); {config.epochs} epochs × "
            f"{self.per_epoch} iterations of batch {config.batch_size}, Adam lr {config.lr:g}, "
            f"seed {config.seed}, on {self.dev}{mode}"
        )
        loss_fn = nn.CrossEntropyLoss()
        self.net.train()
        with _sigint_flag() as flag, self._on_cuda(loss_fn), _watching(self):
            while p.iteration < stop_at:
                epoch = p.iteration // self.per_epoch
                order = _epoch_order(len(self.labels), config.seed, epoch, rec.shuffle)
                order = order.to(self.dev)
                first = p.iteration - epoch * self.per_epoch
                last = min(self.per_epoch, stop_at - epoch * self.per_epoch)
                self.bar = _progress_bar(self.show_bar, first, last, epoch, config.epochs)
                try:
                    for b in range(first, last):
                        self._step(
                            order[b * config.batch_size : (b + 1) * config.batch_size], loss_fn
                        )
                        if p.iteration % config.log_every == 0 or p.iteration == self.total:
                            self._log_point()
                            self.net.train()
                        elif p.iteration == stop_at:
                            self._log_point(regular=False)
                        if flag["stop"]:
                            return True
                finally:
                    if self.bar is not None:
                        self.bar.close()
                        self.bar = None
                if p.iteration < stop_at:  # an epoch's end
                    self.save(finished=False)
        return False

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
            else:
                self.graphed, how = graph_step(
                    self.net,
                    self.optimizer,
                    loss_fn,
                    self.images,
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
            x = to_input(self.images.index_select(0, idx), self.normalize, self.channels_last)
            self.optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(self.net(x), self.labels.index_select(0, idx))
            loss.backward()
            self.optimizer.step()
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
                raise ArchlabError(
                    f"{self.ref.name}: the training loss became {value} at iteration "
                    f"{first + i:,} (training diverged); nothing since was saved, "
                    f"{self.ref.checkpoint} is the last good state; try a smaller --lr "
                    f"than {self.config.lr:g}",
                    1,
                )
            self.progress.add_loss(value)

    def _log_point(self, regular: bool = True) -> None:
        """Evaluate, print the lecture's line, and (at a regular point) add it to history.

        A stop requested with ``max_iterations`` is evaluated but leaves the history and
        the loss accumulators alone, so a resumed run ends with the same history."""
        self._read_losses()
        p = self.progress
        started = time.perf_counter()
        accuracy, test_loss = evaluate(self.net, self.test_images, self.test_labels, self.normalize)
        p.eval_seconds += time.perf_counter() - started
        s, c = p.interval
        train_loss = s / c if c else None
        p.test_accuracy = accuracy
        if regular:
            p.interval = [0.0, 0]
            p.history["eval"].append(
                {
                    "iteration": p.iteration,
                    "epoch": p.iteration / self.per_epoch,
                    "train_loss": train_loss,
                    "test_loss": test_loss,
                    "test_accuracy": accuracy,
                    "seconds": round(p.seconds, 3),
                }
            )
        shown = f"{train_loss:.4f}" if train_loss is not None else "-"
        line = f"Iteration: {p.iteration}, Loss: {shown}, Accuracy: {100 * accuracy:.2f}%"
        if self.bar is not None:
            self.bar.clear()
            self.log(line)
            self.bar.refresh()
        else:
            self.log(line)

    # -- files ------------------------------------------------------------------------------
    def snapshot(self, finished: bool) -> dict:
        self._read_losses()
        p = self.progress
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
            "params": self.params,
            "data_md5": self.data_md5,
            "versions": {"torch": str(torch.__version__), "archlab": __version__},
        }

    def save(self, finished: bool, figures: bool = False) -> list[Path]:
        """Write the checkpoint and the history beside it (and the curves at the end)."""
        files = write_run_files(
            self.ref.folder,
            self.snapshot(finished),
            keep_previous=not self.backed_up,
            figures=figures,
        )
        self.backed_up = True
        return files

    def result(self, files: Sequence[Path], finished: bool, interrupted: bool) -> Run:
        payload = self.snapshot(finished)
        return _result(self.ref, self.spec, payload, str(self.dev), files, interrupted)


def _result(
    ref: RunRef, spec: ModelSpec, payload: dict, device: str, files, interrupted: bool = False
) -> Run:
    net = weights_into(spec, payload, ref)
    return Run.from_checkpoint(
        ref.folder, payload, spec, net, device=device, interrupted=interrupted, files=list(files)
    )


def train(
    model: str | ModelSpec,
    overrides: Sequence[str] = (),
    *,
    runs: str | os.PathLike = "runs",
    data: FashionMNIST | None = None,
    name: str | None = None,
    recipe: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    log_every: int | None = None,
    deterministic: bool | None = None,
    device: str = "auto",
    data_dir: str | os.PathLike | None = None,
    resume: bool = False,
    reuse: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
    max_iterations: int | None = None,
    figures: bool = True,
    watch: int | None = None,
) -> Run:
    """Train one model on Fashion-MNIST, write its files under ``runs/<run name>`` and
    return the trained :class:`~archlab.Run`.

    Files: ``checkpoint.pt`` (atomically, at each epoch end, on Ctrl-C and at the end),
    ``history.json`` (every logged point) and ``curves.png`` (loss and accuracy). A fresh
    run over an earlier one keeps the earlier files as ``checkpoint.prev.pt``,
    ``history.prev.json`` and ``curves.prev.png``.

    Args:
        model: a spec: ``"cnn"``, ``"path/net.py:Net"``, ``"module:factory(k=v)"``...
        overrides: ``--set`` what-ifs such as ``["layer2.0.padding=1"]``. Default: none.
        runs: the runs folder. Default: ``"runs"``.
        data: the dataset in memory. Default: :func:`~archlab.load_fashion_mnist`.
        name: the run folder's name. Default: from the spec (``cnn+layer2.0.padding=1``).
        recipe: ``"careful"``, ``"lecture"`` or ``"onecycle"`` (``archlab.training.recipes``;
            onecycle without ``lr`` peaks at the rate :func:`~archlab.lr_find` suggests).
            Default: careful.
        epochs: passes over the 60,000 training images. Default: 5.
        batch_size: images per step. Default: 100.
        lr: Adam's learning rate. Default: 1e-3.
        seed: seeds initialisation, shuffling and dropout. Default: 0.
        log_every: iterations between test-set evaluations and log lines. Default: 500.
        deterministic: on CUDA, deterministic kernels, so that a seed reproduces the run
            on the same GPU and software; False picks the fastest kernels instead
            (``archlab train --fast``). No effect on the CPU, whose kernels are
            deterministic. Default: True.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``. Default: auto.
        data_dir: where to find or put the data when ``data`` is None. Default: see
            :func:`~archlab.training.data.default_data_dir`.
        resume: continue from the run's checkpoint; the result equals an uninterrupted
            run with the same seed. A finished run given more ``epochs`` continues with a
            warm restart: a new cosine from the recipe's rate over the added epochs
            (recorded in its settings as ``restart``). Default: False.
        reuse: return the finished run already in the folder, trained with these
            settings, instead of training again (notebooks, the docs). Default: False.
        progress: show a progress bar. Default: only when stderr is a terminal.
        log: where the ``Iteration: 500, Loss: ..., Accuracy: ...%`` lines go. Default: print.
        max_iterations: stop after this many iterations (quick demos, benchmarks).
            Default: run all epochs.
        figures: draw ``curves.png`` at the end. Default: True.
        watch: every this many iterations, record each layer's activation statistics,
            dead units, gradient norm and update ratio in the history
            (:mod:`archlab.training.dynamics`; read by :func:`archlab.dynamics`).
            Default: None, not recorded.

    Returns:
        The trained :class:`~archlab.Run` (``run.interrupted`` after Ctrl-C).

    Example::

        >>> run = archlab.train("cnn", ["layer2.0.padding=1", "fc1.in_features=3136"],
        ...                     epochs=1)  # doctest: +SKIP
        Iteration: 500, Loss: 0.4123, Accuracy: 86.01%
        >>> run.test_accuracy  # doctest: +SKIP
    """
    given = {
        k: v
        for k, v in zip(
            _SETTINGS,
            (recipe, epochs, batch_size, lr, seed, log_every, deterministic),
            strict=True,
        )
    }
    ref = find_run(model, runs, overrides, name)
    if reuse and not resume:
        reused = _finished_run(ref, given, device)
        if reused is not None:
            return reused
    if ref.spec is None and not resume:  # a run folder's name: train the spec it records
        ref = named_run(ref)
    if recipe == "onecycle" and lr is None and not resume and ref.spec is not None:
        given["lr"] = _finder_peak(ref, overrides, data, data_dir, device, log)
    if not resume:  # settings and model are checked before anything is created
        TrainConfig(ref.name, **{k: v for k, v in given.items() if v is not None}).validate()
        check_trainable(ref.spec)
    else:  # a finished run given nothing more writes nothing: no lock, a read-only disk is fine
        early = load_checkpoint(ref.checkpoint, hint=train_hint(ref))  # or: there is none
        if early.get("finished"):
            spec = check_same_model(ref, early, training=True)
            if _resume_config(early, given).epochs == early["config"]["epochs"]:
                return _already_finished(ref, spec, early, pick_device(device), log)
    with lock_run(ref.folder):
        payload = None
        if resume:
            payload = load_checkpoint(ref.checkpoint, hint=train_hint(ref))
            spec = check_same_model(ref, payload, training=True)
            config = _resume_config(payload, given)
        else:
            spec = ref.spec
            config = TrainConfig(ref.name, **{k: v for k, v in given.items() if v is not None})
            _refuse_other_model(ref)
        dev = pick_device(device)
        if payload is not None and payload.get("finished"):
            if config.epochs == payload["config"]["epochs"]:
                return _already_finished(ref, spec, payload, dev, log)
            weights_into(spec, payload, ref)  # its weights must still fit, as on every load
            payload = {**payload, "finished": False, "config": asdict(config)}
            log(
                f"{ref.name}: continuing a finished run from epoch {payload['epoch']} to "
                f"{config.epochs}, with a warm restart of the learning-rate schedule"
            )
        if resume:
            check_trainable(spec)
        if dev.type == "cpu":
            keep_freed_memory()
        if data is None:
            data = load_fashion_mnist(data_dir)
        trainer = _Trainer(ref, spec, config, data, dev, payload, log, progress)
        trainer.watch = watch
        stop_at = trainer.total if max_iterations is None else min(trainer.total, max_iterations)
        interrupted = trainer.run(stop_at)
        finished = not interrupted and trainer.progress.iteration == trainer.total
        failure = _learned_nothing(trainer.progress) if finished else None
        if failure is not None:
            _refuse_failed_run(trainer, failure, figures)
        files = trainer.save(finished, figures=figures)
        return trainer.result(files, finished, interrupted)


def _finished_run(ref: RunRef, given: dict, device: str) -> Run | None:
    """The finished run in ``ref``'s folder when its settings are the ones asked for."""
    if not ref.checkpoint.is_file():
        return None
    try:
        payload = load_checkpoint(ref.checkpoint)
        spec = check_same_model(ref, payload)
    except ArchlabError:
        return None  # damaged, or another model's: training says why
    if not payload.get("finished"):
        return None
    config = payload.get("config") or {}
    if any(v is not None and config.get(k) != v for k, v in given.items()):
        return None
    return _result(ref, spec, payload, str(pick_device(device)), [])


# a run this long has had time to learn something: judged at its end
JUDGED_AFTER = 100


def _learned_nothing(progress: _Progress) -> str | None:
    """Why a finished run learned nothing (its test accuracy at chance level, or its
    training loss ending above where it began), or None. Runs shorter than
    ``JUDGED_AFTER`` iterations are not judged: chance is normal after a few steps."""
    if progress.iteration < JUDGED_AFTER:
        return None
    chance = 1 / len(CLASSES)
    accuracy = progress.test_accuracy
    if accuracy is not None and accuracy < 2 * chance:
        return (
            f"its test accuracy {100 * accuracy:.2f}% is chance level "
            f"({100 * chance:.0f}% for {len(CLASSES)} classes)"
        )
    losses = [point["loss"] for point in progress.history.get("train", [])]
    if len(losses) >= 2 and losses[-1] > losses[0]:
        return f"its training loss ended at {losses[-1]:.4g}, above its start ({losses[0]:.4g})"
    return None


def _refuse_failed_run(trainer: _Trainer, failure: str, figures: bool) -> None:
    """Keep a run that learned nothing as ``*.failed.*`` beside the previous good run,
    which stays ``checkpoint.pt``, and stop with one line (exit 1)."""
    from archlab.training.runs import keep_failed_run

    ref = trainer.ref
    kept = keep_failed_run(ref.folder, trainer.snapshot(True), trainer.backed_up, figures)
    current = (
        f"{ref.checkpoint} is still the previous run"
        if ref.checkpoint.is_file()
        else f"no {ref.checkpoint.name} was written"
    )
    raise ArchlabError(
        f"{ref.name} learned nothing: {failure}; its files are kept for inspection as "
        f"{kept[0]} (and {', '.join(p.name for p in kept[1:])}), {current}; "
        f"try another --lr than {trainer.config.lr:g}",
        1,
    )


def _already_finished(ref: RunRef, spec: ModelSpec, payload: dict, dev: torch.device, log) -> Run:
    """--resume of a finished run given no more epochs: nothing to train, nothing to write."""
    log(
        f"{ref.name}: already finished at iteration {payload['iteration']:,}; "
        "nothing to resume (give more --epochs to continue it)"
    )
    return _result(ref, spec, payload, str(dev), [])  # its weights must still fit


def _refuse_other_model(ref: RunRef) -> None:
    """A fresh run may replace an earlier run of the same spec, never another model's."""
    if not ref.checkpoint.is_file():
        return
    try:
        payload = load_checkpoint(ref.checkpoint)
    except ArchlabError:
        return  # a damaged file: the new run replaces it (the old one is kept as .prev)
    check_same_model(ref, payload, training=True)


def _resume_config(payload: dict, given: dict) -> TrainConfig:
    config = TrainConfig.from_dict(payload.get("config"))
    more = given.get("epochs")
    if payload.get("finished") and more is not None and more > config.epochs:
        # a finished run continued: a warm restart at the iteration it finished
        config = replace(config, epochs=more, restart=int(payload["iteration"]))
        given = {**given, "epochs": None}
    for key, value in given.items():
        if value is not None and getattr(config, key) != value:
            more_ok = " (a finished run can be given more --epochs)" if key == "epochs" else ""
            raise ArchlabError(
                f"--resume: the checkpoint was trained with {key}={getattr(config, key)}, "
                f"not {value}{more_ok}; drop that option or start afresh without --resume"
            )
    return config


def train_models(
    models: Sequence[str | ModelSpec],
    overrides: Sequence[str] = (),
    *,
    runs: str | os.PathLike = "runs",
    data: FashionMNIST | None = None,
    **settings,
) -> list[Run]:
    """Train several models on one copy of the data with one recipe, checking them all
    before the first step (``archlab train dnn cnn``).

    Args:
        models: specs (or group names, see :func:`archlab.models.spec.expand_models`).
        overrides: what-ifs applied to every model. Default: none.
        runs, data: as in :func:`train`.
        **settings: the other keyword arguments of :func:`train`.

    Returns:
        One :class:`~archlab.Run` per model trained; it stops after one was interrupted.

    Example::

        >>> runs = archlab.training.train.train_models(["dnn", "cnn"], epochs=1)  # doctest: +SKIP
    """
    from archlab.models.spec import expand_run_names

    specs = expand_run_names(models, overrides)  # a run folder's name stays a name
    if settings.get("name") and len(specs) > 1:
        raise ArchlabError("--name names one run; train one model with it")
    given = {k: settings[k] for k in _SETTINGS if settings.get(k) is not None}
    refs = [
        find_run(s, runs, overrides if isinstance(s, str) else (), settings.get("name"))
        for s in specs
    ]
    if not settings.get("resume"):
        refs = [named_run(ref) for ref in refs]  # a run folder's name: the spec it records
    folders = [r.folder for r in refs]
    if len(set(folders)) < len(folders):
        raise ArchlabError(
            "two of these models would write the same run folder; train them "
            "one at a time with --name"
        )
    if not settings.get("resume"):
        TrainConfig("check", **given).validate()
        for ref in refs:
            _refuse_other_model(ref)
            check_trainable(ref.spec)
    pick_device(settings.get("device", "auto"))
    if data is None and not settings.get("resume"):
        data = load_fashion_mnist(settings.get("data_dir"))
    settings = {k: v for k, v in settings.items() if k != "name"}
    results = []
    checked = frozenset(r.spec for r in refs if r.spec is not None and not settings.get("resume"))
    token = _CHECKED.set(checked)
    try:
        for ref in refs:
            run = train(ref.spec or ref.name, runs=runs, data=data, name=ref.name, **settings)
            results.append(run)
            if run.interrupted:
                break
    finally:
        _CHECKED.reset(token)
    return results


def _finder_peak(ref, overrides, data, data_dir, device, log) -> float:
    """The one-cycle recipe's peak rate when none is given: what lr-find suggests."""
    from archlab.training.lr_find import lr_find

    found = lr_find(ref.spec, data=data, device=device, data_dir=data_dir)
    log(f"{ref.name}: lr-find suggests {found.suggested:.2g} ({found.rule}): the one-cycle peak")
    return float(f"{found.suggested:.2g}")


def _watching(trainer: _Trainer):
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
