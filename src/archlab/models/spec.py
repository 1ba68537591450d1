"""Model specs: how every command names a model, and how a spec becomes a model.

A spec is one of

- a registered name: ``cnn``, ``lenet5`` (see ``archlab models``);
- a class in a file or an importable module: ``path/to/net.py:MyNet``, ``pkg.mod:MyNet``;
- a factory function that returns an ``nn.Module``: ``torchvision.models:resnet18``;

optionally followed by constructor arguments, as Python keywords in parentheses
(``'torchvision.models:resnet18(num_classes=10)'``, quoted for the shell) or, needing no
quotes, after one more colon (``torchvision.models:resnet18:num_classes=10,weights=None``).
Values are Python literals. What-ifs (``--set layer2.0.padding=1``) are part of a spec too:
they are applied after the model is built, and they name the run folder.

User code (importing the file, the constructor, the forward pass) runs with its ``print``
sent to stderr, so that archlab's own output (``--json``) stays clean, and a ``sys.exit``
in it is reported as an error rather than ending archlab quietly.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from archlab.errors import ArchlabError
from archlab.models._registry import IMAGE_SHAPE as DEFAULT_INPUT_SHAPE


@contextlib.contextmanager
def user_code(what: str) -> Iterator[None]:
    """Run a user's code: its prints go to stderr, ``sys.exit`` and crashes become one line.

    Args:
        what: names the code in the message, e.g. ``"building MyNet()"``.
    """
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except ArchlabError:
        raise
    except SystemExit as exc:
        raise ArchlabError(f"{what} called sys.exit({exc.code!r})", 1) from exc
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()
        detail = f": {text[0]}" if text else ""
        raise ArchlabError(f"{what} failed: {type(exc).__name__}{detail}", 1) from exc


def _parse_kwargs(text: str, spec: str) -> tuple[tuple[str, object], ...]:
    """``"num_classes=10, weights=None"`` → ``(("num_classes", 10), ("weights", None))``."""
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        assert isinstance(call, ast.Call) and not call.args
        pairs = []
        for kw in call.keywords:
            assert kw.arg is not None
            pairs.append((kw.arg, ast.literal_eval(kw.value)))
    except (SyntaxError, ValueError, AssertionError):
        raise ArchlabError(
            f"model {spec!r}: constructor arguments must be name=Python-literal pairs, "
            "e.g. module:fn(num_classes=10) or module:fn:num_classes=10"
        ) from None
    return tuple(pairs)


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-.")
    return slug or "model"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: what to build, with which arguments and what-ifs.

    Example:

        >>> spec = archlab.models.ModelSpec.parse("torchvision.models:resnet18:num_classes=10")
        >>> str(spec)
        'torchvision.models:resnet18(num_classes=10)'
        >>> spec.run_name
        'torchvision.models.resnet18-num_classes=10'
        >>> archlab.models.ModelSpec.parse("cnn", ["layer2.0.padding=1"]).run_name
        'cnn+layer2.0.padding=1'
    """

    source: str  # "cnn", "path/to/net.py:Net" or "pkg.mod:fn"
    kwargs: tuple[tuple[str, object], ...] = ()
    overrides: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, overrides: Sequence[str] = ()) -> ModelSpec:
        """Parse ``text`` (see the module docs); ``overrides`` are ``--set`` what-ifs."""
        text = text.strip()
        if not text:
            raise ArchlabError("empty model name; see `archlab models`")
        kwargs: tuple[tuple[str, object], ...] = ()
        source = text
        if text.endswith(")") and "(" in text:
            source, _, args = text.partition("(")
            kwargs = _parse_kwargs(args[:-1], text)
        else:
            head, sep, tail = text.rpartition(":")
            if sep and "=" in tail and ":" in head:
                source = head
                kwargs = _parse_kwargs(tail, text)
        if ":" not in source:
            from archlab.models import is_model, list_models

            if not is_model(source):
                if model_at_run(source):
                    raise _a_run_for_a_model(text)
                raise ArchlabError(
                    f"unknown model {source!r}; registered: {', '.join(list_models())} "
                    "(or give path/to/file.py:Class, package.module:Class)"
                )
            if kwargs:
                raise ArchlabError(f"{source} is registered and takes no constructor arguments")
        else:
            where, _, attr = source.rpartition(":")
            if not where or not attr.isidentifier():
                if model_at_run(text):
                    raise _a_run_for_a_model(text)
                raise ArchlabError(
                    f"model {text!r}: expected path/to/file.py:ClassName or "
                    "package.module:ClassName (or :function)"
                )
        where, _, attr = source.rpartition(":")
        if where.endswith(".py") or "/" in where or "\\" in where:
            # one spelling per file (./net.py and net.py are one model, one run folder)
            source = f"{os.path.normpath(where)}:{attr}"
        # keyword order does not change the model: one spelling, one run folder
        kwargs = tuple(sorted(kwargs))
        return cls(source, kwargs, tuple(o.strip() for o in overrides))

    @property
    def registered(self) -> bool:
        """True for a registered name (building it imports no user code)."""
        return ":" not in self.source

    @property
    def base(self) -> str:
        """The spec without what-ifs, as it is written back: ``module:fn(k=v)``."""
        if not self.kwargs:
            return self.source
        return f"{self.source}({', '.join(f'{k}={v!r}' for k, v in self.kwargs)})"

    def __str__(self) -> str:
        return self.base

    @property
    def label(self) -> str:
        """The spec with its what-ifs, for titles: ``cnn with layer2.0.padding=1``."""
        return f"{self.base} with {', '.join(self.overrides)}" if self.overrides else self.base

    @property
    def command_words(self) -> tuple[str, ...]:
        """The spec and its what-ifs as a command's words, ``('m:f(k=1)', '--set', 'a=1')``:
        for :func:`archlab._shell.archlab_command`, which quotes each."""
        return (self.base, *(w for o in self.overrides for w in ("--set", o)))

    @property
    def short_name(self) -> str:
        """A display name: the registered name, or the class/function name."""
        return self.source.rpartition(":")[2]

    @property
    def run_name(self) -> str:
        """A readable, filesystem-safe folder name for this spec's runs."""
        where, _, attr = self.source.rpartition(":")
        if not where:
            name = attr
        elif where.endswith(".py") or "/" in where or "\\" in where:
            name = f"{Path(where).stem}.{attr}"
        else:
            name = f"{where}.{attr}"
        parts = [_slug(name)]
        parts += [_slug(f"{k}={v}") for k, v in self.kwargs]
        name = "-".join(parts) + "".join(f"+{_slug(o)}" for o in self.overrides)
        if len(name) > 96:  # keep it readable, and unique by a digest of the whole spec
            digest = hashlib.sha1(self.label.encode()).hexdigest()[:8]
            name = f"{name[:80]}-{digest}"
        return name

    def build(self) -> nn.Module:
        """A fresh model, what-ifs applied, with ``input_shape`` (C, H, W) set on it."""
        from archlab.models.whatif import set_hyperparameter

        if self.registered:
            from archlab.models import build_registered

            model = build_registered(self.source)
        else:
            model = _construct(self)
        for assignment in self.overrides:
            set_hyperparameter(model, assignment)
        return model


def _import_source(source: str):
    if source.endswith(".py") or "/" in source or "\\" in source:
        path = Path(source)
        if not path.is_file():
            raise ArchlabError(f"no such file: {source}")
        name = f"_archlab_user_{_slug(path.stem).replace('-', '_').replace('.', '_')}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ArchlabError(f"cannot import {source} as Python (is it a .py file?)")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            with user_code(f"importing {source}"):
                spec.loader.exec_module(module)
        except ArchlabError:
            sys.modules.pop(name, None)
            raise
        return module
    try:
        with user_code(f"importing {source}"):
            return importlib.import_module(source)
    except ArchlabError as exc:
        if (
            isinstance(exc.__cause__, ModuleNotFoundError)
            and exc.__cause__.name
            and (source == exc.__cause__.name or source.startswith(exc.__cause__.name + "."))
        ):
            raise ArchlabError(
                f"cannot import module {source!r}: no module named {exc.__cause__.name!r}"
            ) from None
        raise


def _target(source: str):
    where, _, attr = source.rpartition(":")
    module = _import_source(where)
    obj = getattr(module, attr, None)
    if obj is None:
        found = sorted(
            n
            for n, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__
        )
        hint = f"; it defines: {', '.join(found)}" if found else ""
        raise ArchlabError(f"{where} has no {attr!r}{hint}")
    if isinstance(obj, type) and not issubclass(obj, nn.Module):
        raise ArchlabError(f"{source} is a class but not an nn.Module")
    if not callable(obj):
        raise ArchlabError(f"{source} is neither an nn.Module class nor a function")
    return obj


def _construct(spec: ModelSpec) -> nn.Module:
    obj = _target(spec.source)
    kwargs = dict(spec.kwargs)
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        params = signature.parameters.values()
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
        missing = [
            p.name
            for p in params
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.name not in kwargs
        ]
        unknown = [k for k in kwargs if k not in signature.parameters and not takes_any]
        if missing or unknown:
            problem = (
                f"needs the arguments {', '.join(missing)}"
                if missing
                else f"has no argument {', '.join(unknown)}"
            )
            example = ", ".join(f"{n}=..." for n in missing) or "name=value"
            raise ArchlabError(
                f"{spec.short_name} {problem}; give them in the spec: "
                f"'{spec.source}({example})' (see --help)"
            )
    call = f"{spec.short_name}({', '.join(f'{k}={v!r}' for k, v in spec.kwargs)})"
    with user_code(f"building {call}"):
        model = obj(**kwargs)
    if not isinstance(model, nn.Module):
        raise ArchlabError(f"{call} returned a {type(model).__name__}, not an nn.Module", 1)
    model.input_shape = _input_shape_of(model, spec)
    return model


def _input_shape_of(model: nn.Module, spec: ModelSpec) -> tuple[int, ...]:
    shape = getattr(model, "input_shape", None)
    if shape is None:
        return DEFAULT_INPUT_SHAPE
    try:
        dims = tuple(int(d) for d in shape)
        ok = len(dims) >= 1 and all(d >= 1 and d == s for d, s in zip(dims, shape, strict=True))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ArchlabError(
            f"{spec.short_name}.input_shape is {shape!r}: it must be the per-sample shape as "
            "positive integers, e.g. (1, 28, 28); fix the attribute or give --input",
            1,
        )
    return dims


def create_model(model, overrides: Sequence[str] = ()) -> nn.Module:
    """A fresh, randomly initialised model from any spec: the one door to a model.

    The returned model carries ``input_shape`` (C, H, W): the registry's, the model's own
    ``input_shape`` attribute, or (1, 28, 28).

    Args:
        model: a registered name (``"cnn"``), ``"file.py:Class"``, ``"module:factory"``,
            ``"module:factory(k=v)"`` (see :class:`ModelSpec`); an ``nn.Module`` is
            returned as is, or as an edited copy when ``overrides`` are given.
        overrides: what-ifs, e.g. ``["layer2.0.padding=1"]``. Default: none.

    Example:

        >>> archlab.create_model("cnn", ["layer2.0.padding=1"]).layer2[0].padding
        (1, 1)
    """
    return resolve_model(model, overrides)[0]


def resolve_model(model, overrides: Sequence[str] = ()) -> tuple[nn.Module, str]:
    """``(model, display name)`` for a spec, a ``ModelSpec``, an ``nn.Module`` or a trained
    :class:`~archlab.Run`, with ``overrides`` applied: the one place every "look at a
    model" function turns its ``model`` argument into a module. A module passed in is
    never changed: with what-ifs, an edited copy is returned."""
    from archlab.models.whatif import set_hyperparameter

    run_model = getattr(model, "model", None)
    if isinstance(run_model, nn.Module) and hasattr(model, "folder"):  # a trained Run
        model, name = run_model, model.name
    else:
        name = model_name(model)
    if isinstance(model, nn.Module):
        if not overrides:
            return model, name
        built = copy.deepcopy(model)
        for assignment in overrides:
            set_hyperparameter(built, assignment)
        return built, name
    if isinstance(model, str):
        model = ModelSpec.parse(model, overrides)
    elif isinstance(model, ModelSpec):
        if overrides:
            model = ModelSpec(model.source, model.kwargs, (*model.overrides, *overrides))
    else:
        raise ArchlabError(
            f"a model is a spec such as 'cnn' or 'net.py:Net', an nn.Module or a trained "
            f"run, not {type(model).__name__}"
        )
    return model.build(), name


def what_ifs(model, overrides: Sequence[str] = ()) -> list[str]:
    """The what-ifs a title names for ``model`` and ``overrides`` (what
    :func:`resolve_model` applies): a spec's own and those passed. A trained run's are
    already in its name (``cnn+layer2.0.padding=1``), a module's are the ones passed.

    Example:

        >>> what_ifs("cnn", ["layer2.0.padding=1"]), what_ifs("dnn")
        (['layer2.0.padding=1'], [])
    """
    if isinstance(model, str):
        return list(ModelSpec.parse(model, overrides).overrides)
    if isinstance(model, ModelSpec):
        return [*model.overrides, *overrides]
    if hasattr(model, "folder") and hasattr(model, "model"):  # a trained Run
        return []
    return list(overrides)


def model_name(spec: str | ModelSpec | nn.Module) -> str:
    """A short display name: the registry name, the class name, or the module's type."""
    if isinstance(spec, nn.Module):
        return type(spec).__name__
    if isinstance(spec, ModelSpec):
        return spec.short_name
    return ModelSpec.parse(spec).short_name if ":" in spec else spec


def expand_models(
    names: Sequence[str | ModelSpec], overrides: Sequence[str] = ()
) -> list[ModelSpec]:
    """Specs for ``names``, where a group name (``lecture``, ``zoo``, ``all``) stands for
    its registered models; ``overrides`` apply to every one. Duplicates are dropped.

    Example:

        >>> [str(s) for s in archlab.models.spec.expand_models(["lecture"])]
        ['dnn', 'cnn']
    """
    from archlab.models import GROUPS, list_models

    specs: list[ModelSpec] = []
    for name in names or ["lecture"]:
        if isinstance(name, ModelSpec):
            group = [name]
        elif name in GROUPS or name == "all":
            members = list_models(None if name == "all" else name)
            # the quick dnn first: its result is there while the others train
            group = [ModelSpec.parse(n, overrides) for n in sorted(members, key=_quick_first)]
        else:
            group = [ModelSpec.parse(name, overrides)]
        specs += [s for s in group if s not in specs]
    return specs


def _quick_first(name: str) -> tuple[bool, bool, str]:
    return (name != "dnn", name != "cnn", name)


def _a_run_for_a_model(text: str) -> ArchlabError:
    """The one line for ``MODEL@RUN`` given where a model is asked for (``shapes``,
    ``params``: they read the architecture, which no run changes)."""
    model = text.rpartition("@")[0]
    return ArchlabError(
        f"{text!r} names a trained run (MODEL@RUN); this command takes a model: give {model!r}"
    )


def model_at_run(text: object) -> bool:
    """Whether ``text`` names a run as ``MODEL@RUN``: an ``@`` whose tail is a run name
    (no ``/`` or ``:``; a path such as ``/home/a@b/net.py:Net`` is a model).

    Example:

        >>> model_at_run("net.py:Net@mine"), model_at_run("/home/a@b/net.py:Net")
        (True, False)
    """
    if not isinstance(text, str) or "@" not in text:
        return False
    head, _, tail = text.rpartition("@")
    return bool(head) and not any(c in tail for c in "/\\:")


def expand_run_names(names: Sequence[str], overrides: Sequence[str] = ()) -> list[str | ModelSpec]:
    """Like :func:`expand_models`, but a name that is neither a spec nor a group is kept
    as the name of a run folder (``cnn+layer2.0.padding=1``) for the run loader to find.

    Example:

        >>> archlab.models.spec.expand_run_names(["cnn+layer2.0.padding=1", "dnn"])
        ['cnn+layer2.0.padding=1', ModelSpec(source='dnn', kwargs=(), overrides=())]
    """
    from archlab.models import GROUPS, is_model

    found: list[str | ModelSpec] = []
    for name in names or ["lecture"]:
        if model_at_run(name):  # MODEL@RUN: the run loader reads it
            ModelSpec.parse(name.rpartition("@")[0], overrides)  # a bad model: its error now
            if name not in found:
                found.append(name)
            continue
        spec_like = isinstance(name, ModelSpec) or ":" in name or is_model(name)
        if spec_like or name in GROUPS or name == "all":
            found += [s for s in expand_models([name], overrides) if s not in found]
        elif name not in found:
            found.append(name)
    return found
