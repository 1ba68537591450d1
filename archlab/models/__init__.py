"""Model registry and the registered architectures."""

from archlab.models import cnn, dnn  # noqa: F401  (registers the builders)
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
