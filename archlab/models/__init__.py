"""Model registry and the lecture's two architectures."""

from archlab.models import cnn, dnn  # noqa: F401  (registers the builders)
from archlab.models._registry import (
    create_model,
    list_models,
    model_description,
    model_input_shape,
    register_model,
)

__all__ = [
    "create_model",
    "list_models",
    "model_description",
    "model_input_shape",
    "register_model",
]
