"""Training, data and run folders: everything between a model and a trained run.

- ``data``: Fashion-MNIST found, checked by MD5 and read;
- ``recipes``: the lecture's recipe and the careful one;
- ``train``: training models, returning trained runs: ``plan`` (each run decided and
  checked once), ``loop`` (the steps), ``check`` (can it train), ``optim`` (its Adam);
- ``predict``: running a model over a dataset (logits, accuracy);
- ``run``: the trained :class:`~archlab.Run` and how it is loaded; ``runs``: run folders;
- ``checkpoint``: writing atomically and loading safely (``weights_only=True``);
- ``table``: the table ``archlab train`` ends with;
- ``_adam``, ``_alloc``: the fast optimiser step and the allocator settings.
"""

from archlab._lazy import lazy_exports

# no "train" here: the submodule archlab.training.train would shadow it once imported
# (Python binds a package's submodules as its attributes); the door is archlab.train

_EXPORTS = {
    "load_fashion_mnist": "archlab.training.data",
    "Run": "archlab.training.run",
    "load_run": "archlab.training.run",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
