"""Hooks for the fault-injection tests, loaded by every ``python -m archlab`` subprocess
started with :func:`tests.faults.env`: its ``PYTHONPATH`` holds a folder whose
``sitecustomize.py`` (which Python imports at start-up) imports this module. The hooks are
not themselves named ``sitecustomize``, so pytest's collection never meets the system
Python's own module of that name (Ubuntu's ``/usr/lib/python3.*/sitecustomize.py``).

Each hook acts only when its environment variable is set:

- ``ARCHLAB_TEST_MD5``: a JSON file of checksums that replace Fashion-MNIST's, so the
  real CLI accepts the tiny synthetic IDX files of ``tests/synthetic.py``;
- ``ARCHLAB_TEST_KILL=POINT:N``: SIGKILL the process the N-th time it reaches POINT
  (``checkpoint-half``: half-way through writing a checkpoint's bytes; ``checkpoint-synced``:
  written and synced, not yet renamed; ``kept``: the previous run's files moved aside;
  ``history``: the checkpoint renamed into place, history.json not yet written); with
  ``ARCHLAB_TEST_KILL_SIGNAL=SIGINT`` a Ctrl-C there instead;
- ``ARCHLAB_TEST_STEP_SLEEP``: seconds to sleep in each training step (a slow run to
  race against);
- ``ARCHLAB_TEST_BUG``: make ``archlab models`` raise ZeroDivisionError (a bug).

And always: Ctrl-C raises KeyboardInterrupt, as in a program started from a terminal.
A shell without job control starts a background command (``make test &``, some CI
runners) with SIGINT ignored, which its children inherit, and Python then installs no
handler: every test that sends a Ctrl-C saw the process run on to exit 0.
"""

import json
import os
import signal

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

if os.environ.get("ARCHLAB_TEST_MD5"):
    import archlab.training.data

    with open(os.environ["ARCHLAB_TEST_MD5"], encoding="utf-8") as _handle:
        _md5 = json.load(_handle)
    archlab.training.data.CHECKSUMS.clear()
    archlab.training.data.CHECKSUMS.update(_md5)

if os.environ.get("ARCHLAB_TEST_KILL"):
    import archlab.training.checkpoint
    import archlab.training.runs

    _point, _, _n = os.environ["ARCHLAB_TEST_KILL"].partition(":")
    _signal = os.environ.get("ARCHLAB_TEST_KILL_SIGNAL", "SIGKILL")  # SIGINT: a Ctrl-C there
    _seen = {"count": 0}

    def _reached(point: str) -> None:
        if point == _point:
            _seen["count"] += 1
            if _seen["count"] == int(_n or 1):
                os.kill(os.getpid(), getattr(signal, _signal))

    class _KillingFile:
        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            data = memoryview(data)
            half = len(data) // 2
            self._handle.write(data[:half])
            self._handle.flush()
            _reached("checkpoint-half")
            return self._handle.write(data[half:]) + half

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._handle.__exit__(*exc)

    def _open(path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)  # noqa: SIM115
        return _KillingFile(handle) if "w" in mode else handle

    archlab.training.checkpoint.open = _open  # the module's global, shadowing the builtin

    _fsync = archlab.training.checkpoint.os.fsync

    class _Os:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def fsync(fd):
            _fsync(fd)
            _reached("checkpoint-synced")

    archlab.training.checkpoint.os = _Os()

    _keep = archlab.training.runs._keep_previous

    def _keep_previous(folder):
        moved = _keep(folder)
        _reached("kept")
        return moved

    archlab.training.runs._keep_previous = _keep_previous

    _save_checkpoint = archlab.training.checkpoint.save_checkpoint

    def _save_then_stop(payload, path):
        result = _save_checkpoint(payload, path)
        _reached("history")
        return result

    archlab.training.checkpoint.save_checkpoint = _save_then_stop

if os.environ.get("ARCHLAB_TEST_STEP_SLEEP"):
    import time

    import archlab.training.loop

    _step = archlab.training.loop.Trainer._step
    _pause = float(os.environ["ARCHLAB_TEST_STEP_SLEEP"])

    def _slow_step(self, idx, loss_fn):
        time.sleep(_pause)
        return _step(self, idx, loss_fn)

    archlab.training.loop.Trainer._step = _slow_step

if os.environ.get("ARCHLAB_TEST_BUG"):
    import archlab.commands.models

    def _buggy(args):
        return 1 // 0

    archlab.commands.models.run = _buggy
