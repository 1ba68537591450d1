"""Model registry and the registered architectures."""

from archlab.models import (  # noqa: F401  (registers the builders)
    cnn,
    dnn,
    lenet5,
    mobilenet,
    nin,
    resnet,
    speednet,
    vgg,
)
from archlab.models._registry import (
    GROUPS,
    IMAGE_SHAPE,
    ModelCard,
    build_registered,
    is_model,
    list_models,
    model_card,
    model_description,
    register_model,
)
from archlab.models.spec import ModelSpec, create_model

__all__ = [
    "GROUPS",
    "IMAGE_SHAPE",
    "ModelCard",
    "ModelSpec",
    "build_registered",
    "create_model",
    "is_model",
    "list_models",
    "model_card",
    "model_description",
    "register_model",
]
