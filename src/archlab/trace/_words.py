"""How a diagnosis reads: every sentence the tracer says about a model that does not fit.

The engine (:mod:`archlab.trace._engine`) finds where and why; this module words it. Shapes
in a message are always per image: the trace's own batch never appears inside one.
A :class:`~archlab.trace.fixes.Fix` reads in words for Python (``set fc.in_features=2352``)
or, where the command line asks (``flags=True``), as the flags that make it
(``--set fc.in_features=2352``, ``--input 3,28,28``).
"""

from __future__ import annotations

import math

from archlab.trace._batch import BATCH
from archlab.trace.formulas import Shape, fmt_shape

FUNCTIONAL = "(forward)"  # the name column for operations in the model's own forward


# -- fixes -------------------------------------------------------------------------------------
def _value(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) if len(value) != 1 else f"({value[0]},)"
    return str(value)


def _step_text(fix, flags: bool) -> str:
    if fix.kind == "set":
        flag = f"--set {fix.layer}.{fix.argument}={_value(fix.value)}"
        words = f"set {fix.layer}.{fix.argument}={fix.value!r}"
        if fix.text:
            where = fix.text.replace(" it ", f" {fix.layer} ", 1)
            return f"{where} ({flag})" if flags else where
        return flag if flags else words
    if fix.kind == "input":
        shape = ",".join(map(str, fix.value))
        return (f"--input {shape}" if flags else f"trace a {fmt_shape(fix.value)} input") + (
            f" {fix.text}" if fix.text else ""
        )
    if fix.kind == "dtype":
        return f"--dtype {fix.value}" if flags else f"dtype={fix.value}"
    return fix.text or ""


def fix_text(fix, flags: bool = False) -> str:
    """A fix and what goes with it: ``x.view(x.size(0), -1), then build fc as ...``."""
    return ", then ".join(_step_text(step, flags) for step in fix.steps())


def diagnosis_text(diagnosis, flags: bool = False) -> str:
    """The one line a diagnosis prints: where, why, what was tried, and the fix."""
    if diagnosis.layer == FUNCTIONAL:
        kind = diagnosis.type
        where = "in forward," if kind in ("forward", "output") else f"in forward, {kind}"
    elif diagnosis.functional:
        where = f"in {diagnosis.layer}'s forward, {diagnosis.type}"
    elif not diagnosis.layer:  # the model itself (its own forward, or none)
        where = diagnosis.type
    else:
        where = f"{diagnosis.layer} ({diagnosis.type})"
    tried = "".join(f" ({t})" for t in diagnosis.tried)
    if diagnosis.fix is not None:
        tail = f"; fix: {fix_text(diagnosis.fix, flags)}"
    elif diagnosis.hint:
        tail = f"; hint: {diagnosis.hint}"
    else:
        tail = ""
    return f"{where} {diagnosis.message}{tried}{tail}"


def would_not_help(fix, outcome: str) -> str:
    """``resizing ln to 64 would not help: ...``: a local fix that was tried and failed."""
    return f"{fix_text(fix)} would not help: {outcome}"


# -- what the engine found -------------------------------------------------------------------
def too_big(out: Shape, size: int, budget: int) -> str:
    return (
        f"its output {fmt_shape(out)} per image would need {size / 2**30:.1f} GiB for the "
        f"traced images, more than half of what this machine has available "
        f"({2 * budget / 2**30:.1f} GiB)"
    )


def input_too_big(shape: Shape, need: int, free: int) -> str:
    return (
        f"{fmt_shape(shape)} per image needs {need / 2**30:.1f} GiB of memory for the "
        f"traced images before any layer runs, too much for this machine's "
        f"{free / 2**30:.1f} GiB available"
    )


def fails_on(sources: list[str], error: str) -> str:
    return f"fails on {' and '.join(sources)}: {error}"


def wants_integers(dtype: str) -> str:
    return f"takes integer indices but receives a {dtype} tensor"


WANTS_INTEGERS_FIX = "trace with --dtype long (archlab.trace_shapes(..., dtype=torch.long))"


def rank_at_input(form: str, sample: Shape) -> str:
    return (
        f"takes one {form} image, but --input {','.join(map(str, sample))} has {len(sample)} dims"
    )


FROM_THE_INPUT = " from the input itself (this is the model's first layer)"


def features_from(shape: Shape, who: str) -> str:
    """' = 64×7×7 from layer2.3': where a flat vector's features came from."""
    return f" = {fmt_shape(shape)} from {who}"


def source(who: str | None, shape: Shape) -> str:
    return f"the input ({fmt_shape(shape)})" if who is None else f"{who} ({fmt_shape(shape)})"


def batch_mixed(shape: Shape, out_rows: int, out_per_row: Shape) -> str:
    """A reshape that cuts across images (``view(-1, 784)`` on 3×28×28 images)."""
    if not out_per_row:
        return f"merges every {fmt_shape(shape)} image into one vector: the batch is gone"
    rows = out_rows / BATCH
    per = f"{rows:g} rows" if rows != 1 else "one row"
    return (
        f"turns each {fmt_shape(shape)} image into {per} of {fmt_shape(out_per_row)}, "
        "cutting across images: every layer after it sees the wrong number of images"
    )


def batch_fix_text(kind: str, per_image: int) -> str:
    if kind == "flatten":
        change = "torch.flatten(x, 1) (flatten from dim 1, keeping the batch)"
    else:
        change = f"x.{kind}(x.size(0), -1)"
    return f"{change} (each image then has {per_image} features)"


def batch_lost(whole: Shape) -> str:
    """What an op that took the batch away did (the line's start names the op)."""
    what = f"{fmt_shape(whole)} in all" if whole else "one number"
    return (
        "reduces or indexes over the batch dimension: the model's output "
        f"({what}) no longer has one row per image"
    )


BATCH_LOST_HINT = (
    "reduce over the other dims only (e.g. x.mean((2, 3)) for a global average), "
    "and keep dim 0 for the images"
)


def batch_folded(shape: Shape | None, fold: int) -> str:
    what = f"folds each {fmt_shape(shape)} image" if shape else "an operation folded each image"
    return (
        f"{what} into {fold} rows, and nothing unfolds them: the model outputs {fold} rows "
        "per image"
    )


def empty_map(out: Shape) -> str:
    return f"outputs an empty {fmt_shape(out)} map: the map shrinks to nothing"


EMPTY_MAP_HINT = "feed a larger input or use less padding here"
SMALLER_INPUT = "trace a smaller --input"
OUT_OF_MEMORY = "ran out of memory: the input is too large for this machine"


def raised(kind: str, first_line: str) -> str:
    return f"raised {kind}: {first_line}"


def exited(code: object) -> str:
    return (
        f"calls sys.exit({code!r}) inside forward: a model's forward must return its output, "
        "never end the program"
    )


def returned(what: str) -> str:
    """What a forward returned when it is not a tensor of scores."""
    return f"returns {what}, not a tensor: a model's forward must return its output tensor"


def returned_hint(what: str) -> str:
    if what == "None":
        return "end forward with `return x` (the last layer's output)"
    if what.startswith("a dict"):
        return "return the scores tensor itself (e.g. return out['logits'])"
    return "return the scores tensor itself (e.g. return out[0])"


def returned_kind(output: object) -> str:
    """``None``, ``a tuple of 2``, ``a dict with keys 'logits', 'aux'``, ``a str``."""
    if output is None:
        return "None"
    if isinstance(output, dict):
        keys = ", ".join(repr(k) for k in list(output)[:4])
        return f"a dict with keys {keys}" if keys else "an empty dict"
    if isinstance(output, (tuple, list)):
        return f"a {type(output).__name__} of {len(output)}"
    return f"a {type(output).__name__}"


def per_image_features(shape: Shape) -> int:
    return math.prod(shape)


# -- images mixed across the batch -------------------------------------------------------------
# an image's output moved when only other images changed (no count: the trace's own
# batch never shows in a message)
MIXES = (
    "mixes the images of a batch: an image's output changes when only other images of its "
    "batch change, so a prediction depends on which images share its batch"
)


MIXES_HINT = (
    "compute each image on its own: reduce, attend, recur or index over an image's own "
    "dims, never along dim 0 (the batch)"
)

MIXED_BEFORE = (
    "receives images already mixed with each other by an operation before it that keeps "
    "the shape (x.flip(0), x.roll(1, 0), x[perm] along the batch): each image must stay "
    "in its own place"
)


def rnn_across_batch(kind: str) -> str:
    return (
        f"runs along the batch: without batch_first=True a {kind} reads (N, T, F) as "
        "(T, N, F), one sequence across the images, each step carrying one image into the next"
    )
