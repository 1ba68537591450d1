"""The ``archlab`` command: parse arguments, call the library, print. Nothing else lives here.

Each subcommand lives in ``archlab/commands/<name>.py`` with its options next to its handler.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from archlab import __version__
from archlab.errors import ArchlabError

EXIT_CODES = """\
exit codes:
  0    done
  1    the model, data or run is wrong (a run that learned nothing too), or the
       machine refused (a permission, a full disk, memory); one line says where and
       what to do
  2    bad usage (an unknown option, model or file, a value out of range)
  3    a bug in archlab (please report it with the command you ran;
       ARCHLAB_TRACEBACK=1 shows the traceback)
  130  interrupted (Ctrl-C); a training run saved its checkpoint first
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (no usage block) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from archlab.commands import COMMANDS

    parser = _Parser(
        prog="archlab",
        description="Take neural networks apart on Fashion-MNIST: shapes, parameters,\n"
        "training and attributions, for the lecture's DNN and CNN, the zoo, or your own model.",
        epilog="Run `archlab COMMAND --help` for a command's options.\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"archlab {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for name in COMMANDS:
        module = importlib.import_module(f"archlab.commands.{name}")
        description = getattr(module, "DESCRIPTION", None)
        if hasattr(module, "description"):
            description = module.description()
        p = sub.add_parser(
            module.NAME,
            help=module.SUMMARY,
            description=description or module.SUMMARY,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process; returns the exit code (see ``EXIT_CODES``).

    Only archlab's own output goes to stdout (through ``echo``): anything else that prints
    while a command runs (a user's model, a library) is sent to stderr, so ``--json`` stays
    clean. A stream that cannot encode ``×`` or ``─`` gets ASCII stand-ins instead of an
    error. No exception leaves: a user mistake or an environmental fault is one line and
    exit 1 or 2, anything else is archlab's bug (exit 3).
    """
    from archlab._exclusive import terminate_as_interrupt
    from archlab.commands import _options

    _options.ascii_fallback(sys.stdout)
    _options.ascii_fallback(sys.stderr)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error argparse printed
            return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
        _options.refuse_empty_paths(args)
        with (
            terminate_as_interrupt(),
            _options.output_to(sys.stdout),
            contextlib.redirect_stdout(sys.stderr),
        ):
            return args.handler(args)
    except ArchlabError as exc:
        return _fail(f"archlab: error: {exc.cli_message}", exc.exit_code)
    except KeyboardInterrupt:
        return _fail("archlab: interrupted", 130)
    except BrokenPipeError:  # `archlab ... | head`: the reader has all it wanted
        _options.silence(sys.stdout)
        return 0
    except MemoryError:
        return _fail("archlab: error: out of memory; try a smaller --input or --batch-size", 1)
    except OSError as exc:  # the environment: a disk, a permission, a device
        return _fail(f"archlab: error: {_options.os_error(exc)}", 1)
    except Exception as exc:  # everything else is ours to fix
        if os.environ.get("ARCHLAB_TRACEBACK"):
            raise
        if isinstance(exc, RuntimeError) and _is_out_of_memory(exc):
            return _fail(f"archlab: error: out of memory ({str(exc).splitlines()[0]})", 1)
        text = str(exc).strip().splitlines()
        where = _innermost_archlab_frame(exc)
        return _fail(
            f"archlab BUG, please report: {type(exc).__name__}"
            + (f": {text[0]}" if text else "")
            + (f" (at {where}; ARCHLAB_TRACEBACK=1 shows the traceback)" if where else ""),
            3,
        )


def entry_point() -> None:
    """The ``archlab`` command (and ``python -m archlab``): :func:`main`, then exit.

    Before exiting, every object still alive is moved out of the garbage collector's
    reach with the documented ``gc.freeze()``: the interpreter's final collections would
    otherwise walk the million-odd objects that importing torch, matplotlib and captum
    made, only to free them a moment before the process ends (about 0.3 s of every
    command on 2 cores). Exit handlers still run and output is still flushed; what the
    command wrote was closed before.
    """
    import gc

    code = main()
    gc.freeze()
    sys.exit(code)


def _is_out_of_memory(exc: RuntimeError) -> bool:
    """torch reports a failed allocation as a RuntimeError (CUDA: its OutOfMemoryError)."""
    text = str(exc)
    return "can't allocate memory" in text or "out of memory" in text.lower()


def _fail(line: str, code: int) -> int:
    from archlab.commands._options import echo

    echo(line, file=sys.stderr)
    return code


def _innermost_archlab_frame(exc: BaseException) -> str:
    """``archlab/training/train.py:123``: where in archlab the bug surfaced, for the report."""
    import traceback

    frames = [
        (f.filename.replace("\\", "/"), f.lineno) for f in traceback.extract_tb(exc.__traceback__)
    ]
    ours = [(name, line) for name, line in frames if "/archlab/" in name]
    if not ours:
        return ""
    name, line = ours[-1]
    return f"archlab/{name.rpartition('/archlab/')[2]}:{line}"
