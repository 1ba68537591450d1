"""The registry: the only list of model names, one card per model (as in timm's ``_registry.py``).

A :class:`ModelCard` holds every fact archlab knows about a registered model that cannot be
read off the model itself: its description, the paper and idea it teaches, the input it is
built for, the accuracy the lecture printed and the accuracy measured here. What *can* be
read off the model (its convolutions, where its blocks end, its Grad-CAM layer) is derived
from it (``archlab.analysis.features``), so a user's model gets the same treatment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from archlab.errors import ArchlabError

# (C, H, W) of one Fashion-MNIST image: what every model is fed unless its card says
# otherwise. Its one home: data, training, the tracer and the drawings read it from here.
IMAGE_SHAPE: tuple[int, int, int] = (1, 28, 28)

# groups that `archlab train GROUP` expands; every card belongs to one
GROUPS = {
    "lecture": "the lecture's two models",
    "zoo": "the classic ideas after the lecture's CNN",
    "speedrun": "nets shaped for the fast recipe (archlab train speednet --recipe fast)",
}


@dataclass(frozen=True)
class ModelCard:
    """Everything archlab knows about one registered model.

    Args:
        name: what users type (``archlab shapes NAME``).
        description: one line for ``archlab models``.
        builder: builds a fresh, randomly initialised model.
        input_shape: the (C, H, W) it is built for. Default: (1, 28, 28).
        num_classes: how many scores it outputs. Default: 10.
        group: ``"lecture"``, ``"zoo"`` or ``"speedrun"``. Default: lecture.
        paper: where the idea comes from. Default: none.
        idea: the one idea it teaches. Default: none.
        lecture_accuracy: test accuracy (%) the lecture printed. Default: none.
        lecture_claims: shapes the lecture claimed for some layers' outputs, as
            ``((layer, (C, H, W)), ...)``, for ``archlab draw --claim``. Default: none.
        measured: what a run here measured (``{"accuracy": 91.72, "train_seconds": 103}``),
            with the command in ``benchmarks/README.md``. Default: empty.
        train_time: how long ``archlab train NAME`` takes on a 2-core CPU. Default: unknown.
        lesson: what the measured run teaches, honestly (also where a model lands below the
            lecture's CNN, and why). Default: none.

    Example:

        >>> archlab.model_card("dnn").input_shape, archlab.model_card("dnn").num_classes
        ((1, 28, 28), 10)
    """

    name: str
    description: str
    builder: Callable[[], nn.Module] = field(repr=False)
    input_shape: tuple[int, int, int] = IMAGE_SHAPE
    num_classes: int = 10
    group: str = "lecture"
    paper: str | None = None
    idea: str | None = None
    lecture_accuracy: float | None = None
    lecture_claims: tuple = ()
    measured: dict = field(default_factory=dict)
    train_time: str | None = None
    lesson: str | None = None


_MODELS: dict[str, ModelCard] = {}


def register_model(
    name: str, description: str, **card: object
) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Register a builder under ``name`` with its :class:`ModelCard` fields.

    Args:
        name: the name users type (``archlab shapes NAME``).
        description: one line for ``archlab models``.
        **card: the other :class:`ModelCard` fields (``input_shape``, ``paper``...).

    Example:

        >>> from torch import nn
        >>> @archlab.register_model("tiny-example", "a one-layer model", group="lecture")
        ... def tiny() -> nn.Module:
        ...     return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
        >>> archlab.model_card("tiny-example").input_shape
        (1, 28, 28)
        >>> archlab.models._registry._MODELS.pop("tiny-example").name
        'tiny-example'
    """

    # a name every command can take as MODEL: not blank, no path, spec or run syntax
    if (
        not isinstance(name, str)
        or not name.strip()
        or name != name.strip()
        or any(c in name for c in "/\\:@+=(), ")
    ):
        raise ArchlabError(
            f"register_model(): name={name!r}: give a word a command can take as MODEL, "
            "e.g. 'my-net' (no spaces, /, :, @, +, = or brackets)"
        )

    def decorate(builder: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        if name in _MODELS or name in GROUPS:
            raise ArchlabError(f"model {name!r} is already registered (or is a group name)")
        entry = ModelCard(name, description, builder, **card)
        if entry.group not in GROUPS:
            raise ArchlabError(f"model {name!r}: group must be one of {', '.join(GROUPS)}")
        _MODELS[name] = entry
        return builder

    return decorate


def is_model(name: str) -> bool:
    """True when ``name`` is a registered model (no model is built).

    Example:

        >>> archlab.models.is_model("cnn"), archlab.models.is_model("resnet50")
        (True, False)
    """
    return name in _MODELS


def model_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of a registered model.

    Example:

        >>> archlab.model_card("cnn").lecture_accuracy
        90.5
    """
    try:
        return _MODELS[name]
    except KeyError:
        known = ", ".join(list_models())
        raise ArchlabError(f"unknown model {name!r}; known models: {known}") from None


def build_registered(name: str) -> nn.Module:
    """Build a fresh, randomly initialised model by its registered name (what
    :func:`archlab.create_model` does for a registered name without what-ifs).

    Args:
        name: a name from :func:`list_models`, e.g. ``"cnn"``.

    Returns:
        The ``nn.Module``; its ``input_shape`` attribute gives the (C, H, W) it expects.

    Example:

        >>> archlab.models.build_registered("cnn").input_shape
        (1, 28, 28)
    """
    card = model_card(name)
    model = card.builder()
    model.input_shape = card.input_shape
    return model


def list_models(group: str | None = None) -> list[str]:
    """The registered model names, sorted; only one group's when ``group`` is given.

    Example:

        >>> archlab.list_models("lecture")
        ['cnn', 'dnn']
    """
    if group is not None and group not in GROUPS:
        raise ArchlabError(f"unknown group {group!r}; groups: {', '.join(GROUPS)}")
    return sorted(n for n, c in _MODELS.items() if group is None or c.group == group)


def model_description(name: str) -> str:
    """The one-line description of a registered model.

    Example:

        >>> archlab.models.model_description("dnn")
        "the lecture's fully connected net: 784 → 256 → 128 → 10"
    """
    return model_card(name).description
