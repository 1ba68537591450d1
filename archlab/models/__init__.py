"""Model registry and the registered architectures."""

from archlab.models import (  # noqa: F401  (registers the builders)
    cnn,
    dnn,
    lenet5,
    mobilenet,
    nin,
    resnet,
    vgg,
)
from archlab.models._registry import (
    GROUPS,
    ModelCard,
    create_model,
    is_model,
    list_models,
    model_card,
    model_description,
    register_model,
)

__all__ = [
    "GROUPS",
    "ModelCard",
    "create_model",
    "is_model",
    "list_models",
    "model_card",
    "model_description",
    "register_model",
]
