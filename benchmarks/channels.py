"""`archlab channels`: the synthesised ≥ best fraction, the effective fields, the time.

For each run (default cnn and resnet, every Conv2d):

- the share of channels whose synthesised image (regularised, the defaults) excites the
  channel at least as much as the best of the 10,000 test images (goal ≥ 95 %);
- each layer's effective receptive field (the width holding 95 % of the centre unit's
  mean |input gradient|) beside its theoretical size;
- the explorer's proxy for Borowski et al.'s two-choice quiz (people: 92 % from natural
  reference images, 82 % from synthetic ones, ImageNet): :mod:`archlab.analysis.quiz`
  (references: a channel's 9 top test images; the strong query the 10th, the weak one the
  lowest; the pick: the query whose pixels are more like the references, mean cosine).
  It used its own variant here (the best image against the lowest, cosine to the mean of
  the next 8), which gave another number for the same question: one proxy, one home;
- `archlab channels RUN` end to end as a command (goal: cnn ≤ 30 s, resnet ≤ 90 s on
  2 CPU cores), and where the time goes inside the library (its ``timings`` dict): the
  dataset search through the trace's rows, relevance, synthesis, the effective field.

Needs the runs trained (`archlab train cnn resnet`); time it on an idle machine.

    python benchmarks/channels.py [--runs runs] [cnn resnet]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _timing import time_command


def quiz_proxy(run) -> tuple[float, int]:
    """The explorer's quiz proxy (:func:`archlab.analysis.quiz.quiz_proxy`, the number on
    the docs page) over every channel of every convolution, on the 10,000 test images."""
    from archlab.explorer.panels import channel_panel
    from archlab.training.data import load_fashion_mnist

    images = load_fashion_mnist().test_images
    _, proxy, counted = channel_panel(run.model, images, list(range(len(images))), run.normalize)
    return proxy, counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["cnn", "resnet"])
    parser.add_argument("--runs", default="runs")
    args = parser.parse_args()
    import archlab

    for model in args.models:
        run = archlab.load_run(model, runs=args.runs)
        timings: dict[str, float] = {}
        report = archlab.channels(run, timings=timings)
        print(f"{model}: synthesised ≥ best test image in {100 * report.beats_best_fraction:.1f} %")
        proxy, counted = quiz_proxy(run)
        print(f"  quiz proxy: {100 * proxy:.1f} % of {counted} channels")
        for layer in report.layers:
            flags = [c.beats_best for c in layer.channels]
            print(
                f"  {layer.layer:<20} {sum(flags):>3}/{len(flags):<3} channels; field "
                f"{'×'.join(map(str, layer.field_size or ()))} theoretical, "
                f"{'×'.join(map(str, layer.erf_width or ()))} effective; "
                f"dead {len(layer.dead)}"
            )
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, "-m", "archlab", "channels", model, "--runs", args.runs]
            whole = time_command([*command, "--out", str(Path(tmp) / "c.png")])
        print(f"  `archlab channels {model}`: {whole:.1f} s end to end")
        print("  inside the library (archlab.channels(run, timings=...)):")
        for step, seconds in sorted(timings.items(), key=lambda kv: -kv[1]):
            print(f"    {step:<28} {seconds:6.1f} s")
        if model == "resnet":  # the last stage's output (after the residual add)
            last = archlab.channels(run, "stage3.relu2", steps=0, relevant=False).layers[0]
            print(
                f"  stage3.relu2 (the last stage): field "
                f"{'×'.join(map(str, last.field_size or ()))} theoretical, "
                f"{'×'.join(map(str, last.erf_width or ()))} effective"
            )


if __name__ == "__main__":
    main()
