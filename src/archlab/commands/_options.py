"""Options and output helpers that several commands share."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from archlab.errors import ArchlabError, cannot_write, os_reason

SPEC_HELP = (
    "a registered model (`archlab models`), path/to/file.py:Class, package.module:Class or "
    "a factory package.module:function, with constructor arguments as "
    "'module:fn(num_classes=10)' or module:fn:num_classes=10"
)

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


# what archlab prints that a legacy console (ASCII, cp1252) may not encode, in ASCII
ASCII_STAND_INS = {
    "×": "x",
    "·": "*",
    "−": "-",
    "–": "-",
    "─": "-",
    "→": "->",
    "↔": "<->",
    "⌊": "floor(",
    "⌋": ")",
    "⌈": "ceil(",
    "⌉": ")",
    "≤": "<=",
    "≥": ">=",
    "≠": "!=",
    "∞": "inf",
    "…": "...",
    "✓": "ok",
    "✗": "X",
    "ρ": "rho",
    "σ": "sigma",
    "∂": "d",
}


def _ascii_stand_in(exc: UnicodeError) -> tuple[str | bytes, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    first = exc.object[exc.start]
    if "\udc80" <= first <= "\udcff":  # a byte surrogateescape decoded (a file name): as it was
        return bytes([ord(first) - 0xDC00]), exc.start + 1
    bad = exc.object[exc.start : exc.end]
    return "".join(ASCII_STAND_INS.get(c, "?") for c in bad), exc.end


codecs.register_error("archlab-ascii", _ascii_stand_in)


def ascii_fallback(stream) -> None:
    """Let ``stream`` write ASCII stand-ins (``28x28``, ``floor(``) for the characters its
    encoding lacks (``PYTHONIOENCODING=ascii``, a cp1252 console, the C locale with UTF-8
    coercion off, whose ``surrogateescape`` still passes undecodable bytes through)
    instead of failing."""
    errors = getattr(stream, "errors", None)
    if errors in ("strict", "surrogateescape") and hasattr(stream, "reconfigure"):
        with contextlib.suppress(ValueError, OSError):
            stream.reconfigure(errors="archlab-ascii")


_output: list = []  # the stream archlab's own output goes to, while main() runs


@contextlib.contextmanager
def output_to(stream) -> Iterator[None]:
    """Send :func:`echo`'s output to ``stream`` while ``sys.stdout`` points elsewhere (the
    CLI sends everything else that prints, a user's model included, to stderr)."""
    _output.append(stream)
    try:
        yield
    finally:
        _output.pop()


def silence(stream) -> None:
    """Point a stream whose reader has gone (a closed pipe) at /dev/null for good, so that
    neither later output nor the flush at exit raises ``BrokenPipeError`` again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file: nothing to flush at exit
        pass


def printable(text: str) -> str:
    r"""``text`` with every control character but a newline or a tab written as its escape
    (``\x1b``): a run name or a spec holding a terminal escape sequence is shown, never
    obeyed by the terminal.

    Example:

        >>> print(printable("wrote runs/\x1b[2Jred!"))
        wrote runs/\x1b[2Jred!
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)


def echo(text: object = "", file=None) -> None:
    """print, but a closed pipe (``archlab ... | head -1``) never stops the work: the rest
    of the output is dropped and the command goes on to finish and save. Control
    characters are shown escaped (:func:`printable`)."""
    stream = file or (_output[-1] if _output else sys.stdout)
    try:
        print(printable(str(text)), file=stream, flush=True)
    except BrokenPipeError:
        silence(stream)
    except OSError as exc:  # a full disk (> /dev/full), a vanished terminal
        silence(stream)  # or the flush at exit fails again, with a traceback
        name = "the output" if stream is not sys.stderr else "error messages"
        raise ArchlabError(f"cannot write {name}: {os_error(exc)}", 1) from exc


def os_error(exc: OSError) -> str:
    """One line for an ``OSError``: what failed, on which path, and why."""
    reason = os_reason(exc)
    if exc.filename is None:
        return reason
    where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    return f"cannot use {where}: {reason}"


def shape_arg(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.replace("x", ",").replace("×", ",").split(","))
    except ValueError:
        dims = ()
    if len(dims) not in (1, 2, 3, 4) or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"{text!r} is not C,H,W with positive sizes, e.g. 1,28,28")
    return dims


def index_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 9999:
        raise argparse.ArgumentTypeError(f"{text!r} is not a test-image index 0-9999")
    return value


def count_arg(limit: int, low: int = 0):
    """An argparse type: a whole number from ``low`` to ``limit``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= limit:
            raise argparse.ArgumentTypeError(f"{text!r}: give a number from {low} to {limit}")
        return value

    return parse


def model_input_options(p: argparse.ArgumentParser) -> None:
    """MODEL, ``--input`` and ``--set``: a model to trace (shapes, draw)."""
    p.add_argument("model", metavar="MODEL", help=SPEC_HELP)
    p.add_argument(
        "--input",
        type=shape_arg,
        metavar="C,H,W",
        help="per-sample input shape (default: the model's, 1,28,28 for dnn and cnn)",
    )
    set_option(p)


def depth_arg(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a depth 0, 1, 2, ...")
    return int(text)


def depth_option(p: argparse.ArgumentParser, help: str) -> None:
    """``--depth N``: fold the blocks deeper than N (shapes, draw)."""
    p.add_argument("--depth", type=depth_arg, metavar="N", help=help)


def set_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="LAYER.ARG=VALUE",
        help="what-if: rebuild a layer with one argument changed, e.g. layer2.0.padding=1, "
        "take a layer out with LAYER=Identity, e.g. layer1.1=Identity, or swap it for a "
        "torch.nn activation or dropout, e.g. layer1.2=GELU (repeatable)",
    )


def run_options(p: argparse.ArgumentParser, default: str = "cnn") -> None:
    """``--model``, ``--set``, ``--name`` and ``--runs``: which trained run to open."""
    p.add_argument(
        "--model",
        default=default,
        metavar="MODEL",
        help=f"{SPEC_HELP}; or a run folder's name (default: {default})",
    )
    set_option(p)
    p.add_argument("--name", default=None, help="the run folder, if it was trained with --name")
    runs_option(p)


def models_argument(p: argparse.ArgumentParser) -> None:
    """The runs an analysis of several runs looks at (``models``; the library expands
    groups and defaults to the lecture's two)."""
    p.add_argument(
        "models",
        nargs="*",
        metavar="RUN",
        help="trained runs, groups or run folders; MODEL@RUN for the run folder RUN of MODEL "
        "(your own model trained with --name or --hold-out) (default: lecture, i.e. dnn and "
        "cnn)",
    )


# the options that name a file or folder: an empty one ('') is refused, not read as the
# current folder (--data-dir '' once copied the data into it, --out '' trained into it)
PATH_OPTIONS = ("out", "runs", "data_dir")


def refuse_empty_paths(args: argparse.Namespace) -> None:
    for name in PATH_OPTIONS:
        value = getattr(args, name, None)
        if isinstance(value, str) and not value.strip():
            flag = "--" + name.replace("_", "-")
            raise ArchlabError(f"{flag} {value!r}: give a path (. for the current folder)")


def runs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runs", default="runs", help="the folder `archlab train --out` wrote (default: runs)"
    )


def snapshot_option(p: argparse.ArgumentParser) -> None:
    """``--snapshot K``: show a run as it was at a snapshot (``archlab train --snapshots``)."""
    p.add_argument(
        "--snapshot",
        default=None,
        metavar="K",
        help="show the run as it was at its snapshot of iteration K, or at every one: all "
        "(runs trained with --snapshots N; default: the trained run)",
    )


def at_snapshots(runs: list, args: argparse.Namespace) -> list:
    """Each run, or with ``--snapshot`` its snapshot(s) (each a Run named run@iteration)."""
    from archlab.training.snapshots import pick_snapshots

    return [s for run in runs for s in pick_snapshots(run, args.snapshot, runs=args.runs)]


def snapshot_figure(path: Path, run) -> Path:
    """The figure ``path`` of ``run``; for a snapshot (``cnn@35``) in its run's folder,
    never a folder of its own (a default ``<runs>/cnn@35/...`` becomes ``<runs>/cnn/...``),
    and named ``<stem>@35``."""
    if run.snapshot is None:
        return path
    if run.name in path.parts:
        path = run.folder.joinpath(*path.parts[path.parts.index(run.name) + 1 :])
    return path.with_name(f"{path.stem}@{run.snapshot}{path.suffix}")


def device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        help="where to compute: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps "
        "(default: auto)",
    )


def on_device(run, device: str):
    """``run`` with its model moved to ``--device``: the analyses compute where it is."""
    from archlab.device import pick_device

    run.model.to(pick_device(device))
    return run


def data_dir_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="the data folder (default: $ARCHLAB_DATA, else ~/.cache/archlab)",
    )


def out_option(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help=f"the figure to write, .png, .svg or .pdf (default: {default})",
    )


def figure_path(args: argparse.Namespace, run: str, stem: str) -> Path:
    """``--out``, else ``<runs>/<run>/figures/<stem>.png``."""
    if getattr(args, "out", None):
        return Path(args.out)
    return Path(args.runs) / run / "figures" / f"{stem}.png"


def check_figure_path(path: str | None) -> None:
    """Refuse an output suffix we cannot write before any work is done."""
    if path is not None and Path(path).suffix.lower() not in FIGURE_SUFFIXES:
        raise ArchlabError(
            f"--out {path}: write a {', '.join(FIGURE_SUFFIXES)} file (the suffix names the format)"
        )


def show_report(args: argparse.Namespace, report, default: Path, extras=()) -> int:
    """What every analysis command ends with: the report as JSON (``--json``), or its text
    and its figure at ``--out`` (else ``default``), then each extra figure beside it as
    ``<stem>-<suffix>`` (``extras``: ``(suffix, draw)`` pairs, e.g. ``("flips",
    report.plot_flips)``). Returns the exit code, 0."""
    if args.json:
        echo(report.to_json())
        return 0
    echo(report)
    out = Path(args.out) if args.out else default
    save(report.plot(), out)
    for suffix, draw in extras:
        save(draw(), out.with_name(f"{out.stem}-{suffix}{out.suffix}"))
    return 0


def save(fig, path: Path) -> None:
    """Write a figure in the format its suffix names, and print where."""
    from archlab.viz import save_figure

    check_figure_path(str(path))
    try:
        echo(f"wrote {save_figure(fig, path)}")
    except OSError as exc:
        raise cannot_write(path, exc) from exc
