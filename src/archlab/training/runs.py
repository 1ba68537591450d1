"""Run folders: where a model's training lands and how it is found again.

A run folder ``<runs>/<run name>/`` holds ``checkpoint.pt``, ``history.json`` and
``curves.png``. Its name comes from the model spec and its what-ifs (``cnn``,
``cnn+layer2.0.padding=1``, ``my_net.MyNet``) or from ``--name``. The checkpoint records
the spec and the what-ifs, so every command rebuilds exactly the architecture that was
trained. A model's code outside the registry is imported only when the user names it:
a run of ``my_net.py:MyNet`` is opened with ``--model my_net.py:MyNet``, never by
importing a file a checkpoint points at.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from archlab._atomic import atomic_path, refuse_link, remove_stale_partials
from archlab._exclusive import held_lock, pid_holder
from archlab._shell import archlab_command, recorded_spec_text, shell_command
from archlab.errors import ArchlabError, cannot_write, os_reason
from archlab.models.spec import ModelSpec, model_at_run
from archlab.training.recipes import setting_error, spoken


@dataclass(frozen=True)
class RunRef:
    """A run folder and the spec trained (or to be trained) in it."""

    runs: Path
    name: str
    spec: ModelSpec | None  # None: named by its folder only; the checkpoint says which

    @property
    def folder(self) -> Path:
        return self.runs / self.name

    @property
    def checkpoint(self) -> Path:
        return self.folder / "checkpoint.pt"

    @property
    def label(self) -> str:
        return self.spec.label if self.spec is not None else self.name


def _check_name(name: str) -> str:
    """A run name: one folder name that every command can name again (no ``:``, read as
    ``file.py:Class``, no ``@``, read as ``MODEL@RUN``, no control characters, not blank)."""
    if (
        not isinstance(name, str)
        or not name.strip()
        or name != name.strip()
        or name in (".", "..")
        or any(c in name for c in "/\\:@")
        or any(not c.isprintable() for c in name)
    ):
        raise setting_error(
            "name",
            name,
            "a run name is one folder name without /, \\, : or @, nor spaces at its ends "
            "(e.g. my-variant)",
        )
    return name


def find_run(
    model: str | ModelSpec,
    runs: str | os.PathLike = "runs",
    overrides: Sequence[str] = (),
    name: str | None = None,
) -> RunRef:
    """Which run folder a model spec (or a run's folder name) refers to; nothing is loaded.

    Args:
        model: a spec (``"cnn"``, ``"net.py:Net"``) or the name of a run folder.
        runs: the runs folder. Default: ``"runs"``.
        overrides: ``--set`` what-ifs. Default: none.
        name: the run folder's name, instead of the one derived from the spec.

    Example:

        >>> archlab.training.runs.find_run("cnn", "runs", ["layer2.0.padding=1"]).folder
        PosixPath('runs/cnn+layer2.0.padding=1')
    """
    runs = Path(runs)
    if model_at_run(model) and name is None:
        # MODEL@RUN: the run folder RUN of the model MODEL (a run of a user's own code
        # trained with --name or --hold-out is opened this way)
        model, _, name = model.rpartition("@")
        try:
            _check_name(name)
        except ArchlabError:
            raise ArchlabError(
                f"{model}@{name}: after the @ goes the run's folder name, without /, \\, :, "
                f"@ or spaces at its ends (e.g. {model}@my-variant)"
            ) from None
    if isinstance(model, ModelSpec):
        spec = model
    elif ":" in model or _is_registered(model):
        spec = ModelSpec.parse(model, overrides)
    elif (runs / model / "checkpoint.pt").exists() or (runs / model).is_dir():
        if overrides:
            said = f"{model} is a run folder; its what-ifs are recorded in it, so drop "
            raise spoken(said + "the overrides", said + "--set")
        return RunRef(runs, _check_name(name or model), None)
    else:
        ModelSpec.parse(model)  # raises: unknown model, with the registered names
        raise AssertionError("unreachable")
    return RunRef(runs, _check_name(name) if name is not None else spec.run_name, spec)


def _is_registered(name: str) -> bool:
    from archlab.models import is_model

    return is_model(name)


def recorded_spec(payload: dict) -> ModelSpec:
    """The spec a checkpoint was trained from (older checkpoints: its registered name)."""
    spec = payload.get("spec") or payload.get("model")
    if not isinstance(spec, str):
        raise ArchlabError("the checkpoint does not say which model it holds", 1)
    return ModelSpec.parse(spec, payload.get("overrides") or ())


def check_same_model(ref: RunRef, payload: dict, training: bool = False) -> ModelSpec:
    """The checkpoint's spec, refusing one that is not the spec the user named.

    A spec outside the registry, read from the checkpoint, is shown as data with a
    warning (:func:`~archlab._shell.recorded_spec_text`), never inside a command to
    paste: naming it imports the file it points at or calls the function it names."""
    recorded = recorded_spec(payload)
    same_code = ref.spec is not None and _same_code(ref.spec, recorded)
    if same_code and ref.spec.overrides == recorded.overrides:
        return ref.spec  # as the user named it (net.py or /abs/path/net.py: one file)
    if same_code and not training and not ref.spec.overrides and ref.name != ref.spec.run_name:
        # MODEL@RUN (or --name) for a what-if run of MODEL: the same code, the what-ifs
        # its checkpoint records (data, not code)
        return replace(ref.spec, overrides=recorded.overrides)
    if ref.spec is not None and ref.spec != recorded:
        where = ref.spec.source.rpartition(":")[0]
        if where.endswith(".py") and not os.path.isfile(where):
            raise ArchlabError(f"model {ref.spec.source!r}: no file {where}", 2)
        head = f"{ref.folder} holds a run of {recorded.label}, not {ref.spec.label}; "
        if training:
            raise spoken(
                head + "give another name= (or runs=) to keep both",
                head + "give another --name (or --out) to keep both",
                1,
            )
        if ref.name != ref.spec.run_name:  # its own folder, which `train` accepts
            advice = train_hint(RunRef(ref.runs, ref.spec.run_name, ref.spec)).replace(
                "first", f"to train it into {ref.runs / ref.spec.run_name}", 1
            )
        else:
            advice = f"move it away, or train {ref.spec.label} under another name to keep both"
        raise ArchlabError(head + advice, 1)
    if ref.spec is None and not recorded.registered:
        todo = (
            "to train it (add --resume to continue the run), name it as the model"
            + ("" if ref.name == recorded.run_name else f" with --name {ref.name}")
            if training
            else "to open it, name it as the model"
            + ("" if ref.name == recorded.run_name else f" and the run: MODEL@{ref.name}")
        )
        raise ArchlabError(
            f"run {ref.name} was trained from {recorded_spec_text(recorded.base)}"
            + (f" with the what-ifs {list(recorded.overrides)!r}" if recorded.overrides else "")
            + f"; archlab imports a model's code only when you name it: {todo}",
            2,
        )
    return recorded


def _same_code(a: ModelSpec, b: ModelSpec) -> bool:
    """Whether two specs build the same code with the same arguments: the same text, or
    the same file named two ways (a relative and an absolute path)."""
    if (a.source, a.kwargs) == (b.source, b.kwargs):
        return True
    (fa, _, ca), (fb, _, cb) = a.source.rpartition(":"), b.source.rpartition(":")
    if a.kwargs != b.kwargs or ca != cb or not (fa.endswith(".py") and fb.endswith(".py")):
        return False
    try:
        return os.path.samefile(fa, fb)
    except OSError:
        return False


def named_run(ref: RunRef) -> RunRef:
    """A run folder named where a MODEL goes (``dnn+drop.p=0.5``), with the spec its
    checkpoint records; a model outside the registry must be named on the command line."""
    from archlab.training.checkpoint import load_checkpoint

    if ref.spec is not None:
        return ref
    payload = load_checkpoint(ref.checkpoint, hint=train_hint(ref))
    return RunRef(ref.runs, ref.name, check_same_model(ref, payload, training=True))


def train_command(ref: RunRef) -> str | None:
    """The ``archlab train`` command that trains ``ref.spec`` into ``ref``'s folder, every
    word quoted for the shell (None: a word no pasted line can carry)."""
    assert ref.spec is not None
    words = [ref.spec.base]
    for override in ref.spec.overrides:
        words += ["--set", override]
    if ref.name != ref.spec.run_name:
        words += ["--name", ref.name]
    return archlab_command("train", *words, runs=ref.runs)


def resume_command(runs: str | os.PathLike, name: str) -> str | None:
    """The command that continues the interrupted run ``runs/name``: ``archlab train``
    with the spec its checkpoint records, quoted (None: none can be printed)."""
    from archlab.training.checkpoint import load_checkpoint

    try:
        spec = recorded_spec(load_checkpoint(Path(runs) / name / "checkpoint.pt"))
    except ArchlabError:
        return None
    command = train_command(RunRef(Path(runs), name, spec))
    return f"{command} --resume" if command is not None else None


def train_hint(ref: RunRef) -> str:
    """ "run `archlab train ...` first", with how long it takes where the card says."""
    if ref.spec is None:
        folder = shell_command(ref.name)
        return f"train a model into it with --name {folder} first" if folder else "train it first"
    command = train_command(ref)
    if command is None:
        return "train it first"
    time = None
    if ref.spec.registered and not ref.spec.overrides:
        from archlab.models import model_card

        time = model_card(ref.spec.source).train_time
    return f"run `{command}` first" + (f" ({time} on a 2-core CPU)" if time else "")


@contextlib.contextmanager
def lock_run(folder: Path) -> Iterator[None]:
    """Hold an OS lock on a run folder while training into it; a second ``archlab train``
    into the same folder is refused with one line. The lock dies with its process.

    Files a killed run left half-written (``.checkpoint.pt.<pid>.partial``) are removed.
    A symbolic link, or a folder, where the run keeps one of its own files is refused
    with one line before anything is opened: archlab never writes through a link.
    """
    folder = writable_dir(folder)
    lock_file = folder / ".lock"
    check_run_files(folder)

    def busy(holder: str) -> ArchlabError:
        said = f"{folder} is being trained into by {holder}; wait for it to finish, or "
        return spoken(
            said + "train into another folder with name= or runs=",
            said + "train into another folder with --name or --out",
            1,
        )

    # O_NOFOLLOW: a link planted since the check is refused, not followed
    with held_lock(
        lock_file,
        pid_holder("archlab train"),
        lambda reason: f"cannot write to the run folder {folder}: {reason}",
        busy,
    ):
        remove_stale_partials(folder)
        yield


# the files a run keeps in its folder: each is archlab's own, written only by renaming
RUN_FILES = (
    ".lock",
    "checkpoint.pt",
    "history.json",
    "curves.png",
    "checkpoint.prev.pt",
    "history.prev.json",
    "curves.prev.png",
    "checkpoint.failed.pt",
    "history.failed.json",
    "curves.failed.png",
)


def check_run_files(folder: Path) -> None:
    """Refuse, with one line, a link or a folder where a run keeps one of its files."""
    for name in RUN_FILES:
        path = folder / name
        refuse_link(path)
        if path.is_dir():
            raise ArchlabError(
                f"{path} is a folder where archlab keeps the run's {name}; move it away "
                "and train again (nothing was written)",
                1,
            )


def writable_dir(path: Path) -> Path:
    """``path``, created if needed, or one line saying why it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchlabError(f"cannot create the folder {path}: {os_reason(exc)}", 1) from exc
    if not os.access(path, os.W_OK):
        reason = "permission denied"
        with contextlib.suppress(OSError, AttributeError):
            if os.statvfs(path).f_flag & os.ST_RDONLY:
                reason = "read-only file system"
        raise ArchlabError(f"cannot write to the folder {path}: {reason}", 1)
    return path


def _keep_previous(folder: Path) -> list[tuple[Path, Path]]:
    """Keep an earlier run's files as ``*.prev.*`` before a fresh run writes its own;
    returns the ``(file, kept as)`` pairs that were moved.

    ``checkpoint.pt`` stays a complete file at every instant: it is hard-linked (or copied)
    to ``checkpoint.prev.pt``, never moved; its history and curves, which would describe
    the old run beside the new checkpoint, are moved aside."""
    checkpoint = folder / "checkpoint.pt"
    if checkpoint.is_file():
        with atomic_path(folder / "checkpoint.prev.pt") as partial:
            partial.unlink()  # os.link makes it anew (and never writes through a link)
            try:
                os.link(checkpoint, partial)
            except OSError:
                with open(checkpoint, "rb") as src, open(partial, "xb") as dst:
                    shutil.copyfileobj(src, dst)
    moved = []
    for name, prev in zip(_CURRENT[1:], _PREVIOUS[1:], strict=True):
        if (folder / name).exists():
            os.replace(folder / name, folder / prev)
            moved.append((folder / name, folder / prev))
    return moved


_CURRENT = ("checkpoint.pt", "history.json", "curves.png")
_PREVIOUS = ("checkpoint.prev.pt", "history.prev.json", "curves.prev.png")
FAILED = ("checkpoint.failed.pt", "history.failed.json", "curves.failed.png")


def write_run_files(
    folder: Path, payload: dict, keep_previous: bool = False, figures: bool = True
) -> list[Path]:
    """Write a run's ``checkpoint.pt`` and ``history.json`` (and ``curves.png``), each
    atomically; with ``keep_previous`` the earlier run's files are kept first."""
    try:
        moved = _keep_previous(folder) if keep_previous else []
    except OSError as exc:
        raise ArchlabError(f"cannot write {exc.filename or folder}: {os_reason(exc)}", 1) from exc
    return _write_run(folder, payload, _CURRENT, figures, moved)


def _write_run(
    folder: Path, payload: dict, names: Sequence[str], figures: bool, moved=()
) -> list[Path]:
    from archlab.training.checkpoint import save_checkpoint

    checkpoint, history, curves = (folder / name for name in names)
    written = [checkpoint, history]
    saved = False
    try:
        try:
            save_checkpoint(payload, checkpoint)
        except BaseException:  # the old checkpoint is still the current one: so are its files
            for current, prev in moved:
                with contextlib.suppress(OSError):
                    os.replace(prev, current)
            raise
        saved = True
        with atomic_path(history) as partial:
            partial.write_text(json.dumps(payload["history"], indent=1), encoding="utf-8")
        if figures:
            from archlab.viz import save_figure
            from archlab.viz.curves import curves_figure

            fig = curves_figure(payload["history"])
            written.append(save_figure(fig, curves))
    except OSError as exc:
        where = exc.filename or folder
        safe = f"; the checkpoint {checkpoint} is saved and complete" if saved else ""
        raise ArchlabError(f"cannot write {where}: {os_reason(exc)}{safe}", 1) from exc
    return written


def keep_failed_run(
    folder: Path, payload: dict, replaced_current: bool, figures: bool = True
) -> list[Path]:
    """Keep a run that learned nothing beside the good one, as ``checkpoint.failed.pt``,
    ``history.failed.json`` and ``curves.failed.png``; returns the files written.

    ``checkpoint.pt``, where every command looks, stays the previous run's: when the
    failed run had already replaced it (``replaced_current``: its epoch-end saves), the
    previous run's files (``*.prev.*``) are put back, or the failed run's removed."""
    written = _write_run(folder, payload, FAILED, figures)
    if replaced_current:
        try:
            for current, prev in zip(_CURRENT, _PREVIOUS, strict=True):
                if (folder / prev).exists():
                    os.replace(folder / prev, folder / current)
                else:
                    (folder / current).unlink(missing_ok=True)
        except OSError as exc:
            raise cannot_write(exc.filename or folder, exc) from exc
    return written
