"""Whether a model can be trained on Fashion-MNIST: checked once, before the first step."""

from __future__ import annotations

import torch
from torch import nn

from archlab._shell import archlab_command
from archlab.errors import ArchlabError
from archlab.models import IMAGE_SHAPE
from archlab.models.spec import ModelSpec, user_code
from archlab.trace.formulas import fmt_shape
from archlab.training.data import CLASSES


def check_trainable(spec: ModelSpec, model: nn.Module | None = None) -> nn.Module:
    """Refuse a model that cannot take one Fashion-MNIST image (1×28×28), does not return
    a tensor, or does not output one score per class (10).

    A lazy model (``nn.LazyLinear``) is materialised by the trace's forward pass.

    Args:
        spec: the model's spec, for the messages.
        model: the built model to check (the one that will train). Default: ``spec.build()``.

    Returns:
        The model checked.
    """
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
        args = ", ".join(repr(a) for a in (spec.base, list(spec.overrides)) if a)
        look = f"(see archlab.trace_shapes({args}))"
        head = f"{spec.label} cannot be trained on {size} Fashion-MNIST images:"
        raise ArchlabError(
            f"{head} {report.error} {look}",
            1,
            cli_message=f"{head} {report.error.render(flags=True)} {see}",
        )
    if report.returns != "a tensor":
        example = "out[0]"
        if report.returns.startswith("a dict with keys "):
            example = f"out[{report.returns.removeprefix('a dict with keys ').split(', ')[0]}]"
        raise ArchlabError(
            f"{spec.label}'s forward returns {report.returns}; training needs the scores "
            f"tensor itself, (N, {len(CLASSES)}): return it alone (e.g. return {example})",
            1,
        )
    if report.output_shape != (len(CLASSES),):
        shape = fmt_shape(report.output_shape or ()) or "nothing"
        raise ArchlabError(
            f"{spec.label} outputs {shape} per image, not {len(CLASSES)} class scores; "
            f"make its last layer output {len(CLASSES)} (e.g. nn.Linear(..., {len(CLASSES)}))",
            1,
        )
    if report.output_dtype is not None and not report.output_dtype.startswith(("float", "bfloat")):
        raise ArchlabError(
            f"{spec.label} outputs {report.output_dtype} scores; the loss needs floating-point "
            "scores (drop the .long(), .round() or argmax at its end)",
            1,
        )
    if not any(p.requires_grad for p in model.parameters()):
        how = "none requires a gradient" if any(True for _ in model.parameters()) else "it has none"
        raise ArchlabError(
            f"{spec.label} has no parameters to train ({how}): nothing for the optimiser to change",
            1,
        )
    return model


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
