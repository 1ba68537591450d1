"""archlab: take the lecture's Fashion-MNIST DNN and CNN apart.

The public API lives here; every name is imported lazily so that ``archlab --help``
answers without importing torch.

Example::

    >>> import archlab
    >>> print(archlab.trace_shapes("cnn"))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (the single place the public surface is listed)
_EXPORTS: dict[str, str] = {
    "ArchlabError": "archlab.errors",
    "Drawing": "archlab.drawing",
    "FashionMNIST": "archlab.training.data",
    "ParamReport": "archlab.trace.params",
    "ShapeReport": "archlab.trace.shapes",
    "TrainResult": "archlab.training.train",
    "activations": "archlab.analysis.features",
    "classification_report": "archlab.analysis.evaluation",
    "compare_models": "archlab.analysis.evaluation",
    "compare_params": "archlab.trace.params",
    "confusion_matrix": "archlab.analysis.evaluation",
    "count_params": "archlab.trace.params",
    "create_model": "archlab.models",
    "draw": "archlab.drawing",
    "evaluate": "archlab.training.predict",
    "evaluate_report": "archlab.analysis.evaluation",
    "explain_image": "archlab.analysis.explain",
    "explain_test_image": "archlab.analysis.explain",
    "filter_weights": "archlab.analysis.features",
    "list_models": "archlab.models",
    "load_or_train": "archlab.training.train",
    "load_fashion_mnist": "archlab.training.data",
    "load_model": "archlab.models.spec",
    "expand_models": "archlab.models.spec",
    "expand_run_names": "archlab.models.spec",
    "ModelSpec": "archlab.models.spec",
    "ModelCard": "archlab.models",
    "is_model": "archlab.models",
    "model_card": "archlab.models",
    "load_trained_model": "archlab.training.runs",
    "model_description": "archlab.models",
    "model_table": "archlab.trace.params",
    "pick_device": "archlab.device",
    "plot_activations": "archlab.viz",
    "plot_attribution": "archlab.viz",
    "plot_comparison": "archlab.viz",
    "plot_confusion": "archlab.viz",
    "plot_curves": "archlab.viz",
    "plot_explanation": "archlab.viz",
    "plot_filters": "archlab.viz",
    "plot_mistakes": "archlab.viz",
    "plot_shapes": "archlab.viz",
    "plot_tradeoff": "archlab.viz",
    "register_model": "archlab.models",
    "set_hyperparameter": "archlab.models.whatif",
    "trace_shapes": "archlab.trace.shapes",
    "train_model": "archlab.training.train",
    "train_models": "archlab.training.train",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'archlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
