"""archlab: take neural networks apart, starting with the lecture's Fashion-MNIST DNN and CNN.

One door per question; each answer is a report that prints as a table, renders itself in
Jupyter, draws itself (``.plot(ax=None)``), saves itself (``.save(path)``) and exports its
numbers (``.to_dict()``). The surface, by group (see the API page):

- models: :func:`create_model` (any spec, untrained), :func:`list_models`,
  :func:`model_card`, :func:`register_model`;
- architecture: :func:`trace_shapes`, :func:`count_params`, :func:`draw`;
- data and training: :func:`load_fashion_mnist`, :func:`train`, :func:`load_run`;
- a trained run, inside: :func:`explain`, :func:`filters`, :func:`activations`,
  :func:`evaluate`, :func:`compare`, :func:`explore` (an offline web page);
- trusting a trained run: :func:`faithfulness` (are the maps faithful?), :func:`attack`
  (how fragile is the model?), :func:`calibration` (can its confidence be believed?),
  :func:`ood` (does it flag images it was never trained for?).

Every function that looks at a model takes ``(model, input_shape=None, overrides=(), *,
depth=None, ...)``; every function that looks at a trained run takes ``(run, ..., *,
runs="runs", data=None)``, where ``run`` is a :class:`Run` or the name of one. Names are
imported lazily, so ``archlab --help`` answers without importing torch.

Example::

    >>> import archlab
    >>> archlab.trace_shapes("cnn").output_shape
    (10,)
"""

from __future__ import annotations

from archlab._lazy import lazy_exports

__version__ = "0.2.0"

# public name -> module that defines it, by group (the single place the surface is listed;
# docs/api.rst is generated from _GROUPS)
_GROUPS: dict[str, dict[str, str]] = {
    "Models": {
        "create_model": "archlab.models.spec",
        "list_models": "archlab.models",
        "model_card": "archlab.models",
        "register_model": "archlab.models",
        "ModelCard": "archlab.models",
    },
    "Architecture": {
        "trace_shapes": "archlab.trace.shapes",
        "count_params": "archlab.trace.params",
        "draw": "archlab.drawing",
        "draw_field": "archlab.drawing.field",
        "ShapeReport": "archlab.trace.shapes",
        "ParamReport": "archlab.trace.params",
        "ReceptiveField": "archlab.trace.receptive",
        "Drawing": "archlab.drawing",
        "FieldPicture": "archlab.drawing.field",
    },
    "Data and training": {
        "load_fashion_mnist": "archlab.training.data",
        "train": "archlab.training.train",
        "load_run": "archlab.training.run",
        "snapshots": "archlab.training.snapshots",
        "FashionMNIST": "archlab.training.data",
        "Run": "archlab.training.run",
    },
    "Training dynamics and the learning rate": {
        "dynamics": "archlab.analysis.dynamics",
        "lr_find": "archlab.training.lr_find",
        "Dynamics": "archlab.analysis.dynamics",
        "LRFinder": "archlab.training.lr_find",
    },
    "Inside a trained run": {
        "explain": "archlab.analysis.explain",
        "filters": "archlab.analysis.features",
        "activations": "archlab.analysis.features",
        "evaluate": "archlab.analysis.evaluation",
        "compare": "archlab.analysis.evaluation",
        "channels": "archlab.analysis.channels",
        "explore": "archlab.explorer",
        "Explanation": "archlab.analysis.explain",
        "Filters": "archlab.analysis.features",
        "Activations": "archlab.analysis.features",
        "ClassificationReport": "archlab.analysis.evaluation",
        "Comparison": "archlab.analysis.evaluation",
        "Channels": "archlab.analysis.channels",
    },
    "Where the classes come apart": {
        "probes": "archlab.analysis.probes",
        "embedding": "archlab.analysis.embedding",
        "Probes": "archlab.analysis.probes",
        "Embedding": "archlab.analysis.embedding",
    },
    "Trusting a trained run": {
        "faithfulness": "archlab.analysis.faithfulness",
        "attack": "archlab.analysis.robustness",
        "calibration": "archlab.analysis.calibration",
        "ood": "archlab.analysis.ood",
        "without_class": "archlab.training.data",
        "Faithfulness": "archlab.analysis.faithfulness",
        "Robustness": "archlab.analysis.robustness",
        "Calibration": "archlab.analysis.calibration",
        "OOD": "archlab.analysis.ood",
    },
    "Errors": {
        "ArchlabError": "archlab.errors",
    },
}
_EXPORTS: dict[str, str] = {name: mod for group in _GROUPS.values() for name, mod in group.items()}

__all__ = sorted([*_EXPORTS, "__version__"])
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
