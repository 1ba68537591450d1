"""``archlab explore``: an offline web page to look inside trained runs.

:mod:`~archlab.explorer.export` computes what the page shows, :mod:`~archlab.explorer.write`
lays it out as JSON and PNG files, and ``static/`` (plain HTML, CSS and JavaScript, no
library, nothing from another host) renders them from ``file://`` or any web server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archlab.training.run import Run

DEFAULT_IMAGES = 30
DEFAULT_MAP = 10_000  # test images on the map panel (all of them); as panels.DEFAULT_MAP


def explore(
    models: Sequence | str | Run = ("dnn", "cnn"),
    *,
    images: int = DEFAULT_IMAGES,
    out: str | os.PathLike = "explorer",
    methods: Sequence[str] | str = "all",
    map_images: int = DEFAULT_MAP,
    runs: str | os.PathLike = "runs",
    data=None,
    log: Callable[[str], None] | None = None,
    timings: dict[str, float] | None = None,
) -> Path:
    """Write a self-contained explorer of trained runs: open its ``index.html`` offline.

    The page shows each run's trace (every row, its formula, parameters and MACs), one
    test image flowing through the selected layer (every channel, its value range; a
    convolution's kernels; a flat layer's values as bars), the class probabilities and
    five attribution maps, the confusion matrix (a cell shows its images), and, for
    several runs, a switch and their accuracy, parameters and MACs side by side; a live
    panel where the selected run's model, exported to ONNX, runs in the page on a drawing
    (:mod:`archlab.explorer.onnx`); and below, the panels (:mod:`archlab.explorer.panels`):
    what a convolution's channels look for with a two-choice quiz, the map of the test
    images (with a timeline where the run has snapshots), and the run's calibration.

    Args:
        models: :class:`~archlab.Run` objects, specs, groups or run folder names.
            Default: the lecture's two.
        images: how many test images flow through (right ones of every class and the
            runs' mistakes, the same for every run). Default: 30.
        out: the folder to write: missing, empty, or an explorer written before, which
            stays whole until the new one replaces it at once (a folder holding anything
            else is refused). Default: ``"explorer"``.
        methods: attribution methods (``archlab.analysis.explain.METHODS``). Default: all.
        map_images: test images on the map panel and its timeline (stratified by class,
            the same for every run; 0: no map, else 11 or more). Default: 10,000.
        runs: the runs folder, for names. Default: ``"runs"``.
        data: the dataset (:func:`~archlab.load_fashion_mnist`). Default: loaded.
        log: called with a line per step and its seconds. Default: silent.
        timings: filled with the seconds per step, summed over the runs (``load``,
            ``test set``, ``trace``, ``activations``, ``live`` (the ONNX export and
            its check), ``attributions``, ``write``), for
            the benchmark. Default: not kept.

    Returns:
        The path of ``index.html``.

    Example::

        >>> archlab.explore(["cnn"], images=30, out="explorer")   # doctest: +SKIP
        PosixPath('explorer/index.html')
    """
    import torch

    from archlab._bounds import check_int
    from archlab.analysis.explain import check_methods
    from archlab.errors import ArchlabError
    from archlab.explorer.export import choose_images, export_run
    from archlab.explorer.panels import MIN_MAP, export_panels
    from archlab.explorer.site import cannot_write_site, staged_site
    from archlab.explorer.write import write_explorer
    from archlab.training.data import CLASSES
    from archlab.training.predict import predict_logits
    from archlab.training.run import as_runs

    say = log or (lambda _line: None)
    check_int("images", images, 1, 10_000)  # the test set's 10,000 at most
    if not (map_images == 0 or MIN_MAP <= map_images <= 10_000):
        # under MIN_MAP the map (its 10-NN accuracy) cannot be drawn: said, not left out
        why = f"give 0 (no map) or {MIN_MAP} to 10,000, as a map needs {MIN_MAP} images"
        raise ArchlabError(
            f"map_images={map_images}: {why}", cli_message=f"--map {map_images}: {why}"
        )
    # the arguments are checked before anything is written beside `out` (its lock);
    # then the lock: a second writer into `out` is refused before any work
    check_methods(methods)
    start = time.perf_counter()
    # the runs are loaded (each checkpoint checked) before the lock is written beside
    # `out`: a refused run leaves nothing there; the minutes of work come after the lock
    loaded = as_runs(models, runs)  # a group ("zoo") is its models; a Run is itself
    with staged_site(Path(out)) as staging:
        if data is None:
            from archlab.training.data import load_fashion_mnist

            data = load_fashion_mnist()
        _add(timings, "load", time.perf_counter() - start)
        say(f"loaded {len(loaded)} run(s) and the data in {time.perf_counter() - start:.1f} s")
        images = min(images, len(data.test_labels))
        probs, logits = [], []
        for run in loaded:
            t = time.perf_counter()
            logits.append(predict_logits(run.model, data.test_images, run.normalize))
            probs.append(torch.softmax(logits[-1], 1))
            _add(timings, "test set", time.perf_counter() - t)
            say(f"{run.name}: test set in {time.perf_counter() - t:.1f} s")
        indices = choose_images(data.test_labels, [p.argmax(1) for p in probs], images)
        exports = []
        for run, p, z in zip(loaded, probs, logits, strict=True):
            t = time.perf_counter()
            exports.append(
                export_run(run, data, indices, test_probs=p, methods=methods, timings=timings)
            )
            seconds = time.perf_counter() - t
            say(f"{run.name}: trace, activations and attributions in {seconds:.1f} s")
            t = time.perf_counter()
            exports[-1].panels = export_panels(run, data, z, map_images=map_images)
            _add(timings, "panels", time.perf_counter() - t)
            say(f"{run.name}: channels, map, timeline and confidence in "
                f"{time.perf_counter() - t:.1f} s")  # fmt: skip
            for line in exports[-1].warnings:
                say(f"warning: {line}")
        t = time.perf_counter()
        try:
            write_explorer(
                staging,
                exports,
                data.test_images[indices],
                [int(data.test_labels[i]) for i in indices],
                indices,
                CLASSES,
                data.test_images,
                data.test_labels,
            )
        except OSError as exc:
            raise cannot_write_site(Path(out), exc) from exc
    _add(timings, "write", time.perf_counter() - t)
    say(f"files written in {time.perf_counter() - t:.1f} s")
    return Path(out) / "index.html"


def _add(timings: dict[str, float] | None, step: str, seconds: float) -> None:
    if timings is not None:
        timings[step] = timings.get(step, 0.0) + seconds
