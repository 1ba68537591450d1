"""archlab draw: the layout checked against the trace, each picture rendered once, bad input.

Expected numbers come from docs/REFERENCE (the lecture's CNN: 32@28×28 → 32@14×14 →
64@12×12 → 64@6×6 → 2304; 1,475,338 parameters), not from the code under test.
"""

from __future__ import annotations

import doctest
import itertools
import math
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn

import archlab
from archlab.cli import main
from archlab.drawing import Drawing, draw
from archlab.drawing._graph import graph_layout, render_graph
from archlab.drawing._stages import is_chain, stages, tensor_label
from archlab.trace.shapes import ShapeReport

ROOT = Path(__file__).parent.parent
README_PICTURE = ROOT / "docs" / "_static" / "cnn.svg"
USER_MODELS = Path(__file__).parent / "user_models.py"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")


class Residual(nn.Module):
    """conv → relu → conv, plus the input: the smallest model that branches."""

    input_shape = (4, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(torch.relu(self.conv1(x))) + x
        return self.head(torch.flatten(out, 1))


@pytest.fixture(scope="module")
def pictures() -> dict[str, Drawing]:
    return {
        "cnn": draw("cnn"),
        "dnn": draw("dnn"),
        "claim": draw("cnn", claim=True),
        "broken": draw("cnn", input_shape=(1, 32, 32)),
        "tiny": draw(f"{USER_MODELS}:TinyNet"),
        "whatif": draw("cnn", overrides=["layer2.0.padding=1"]),
    }


CHAINS = ("cnn", "dnn", "claim", "broken", "tiny", "whatif")


# -- what is drawn -----------------------------------------------------------------------
def test_cnn_boxes_are_the_reference_trace(pictures):
    boxes = pictures["cnn"].layout.boxes
    assert [b.label for b in boxes] == [
        "1@28×28", "32@28×28", "32@14×14", "64@12×12", "64@6×6", "2304", "600", "120", "10",
    ]  # fmt: skip
    assert [b.kind for b in boxes] == ["map"] * 5 + ["column"] * 4


@pytest.mark.parametrize("name", ["cnn", "dnn", "tiny", "whatif", "broken"])
def test_one_stage_per_traced_tensor(pictures, name):
    """Every row of the trace is in exactly one stage, and each box is labelled with the
    trace's output of the last row of its stage (the tensor that leaves it)."""
    picture = pictures[name]
    report = picture.report
    rows = sorted(i for s in picture.stages for i in s.rows)
    assert rows == list(range(len(report.layers)))
    drawn = [s for s in picture.stages if not s.failed]
    assert drawn[0].label == tensor_label(report.input_shape)
    for stage, box in zip(drawn[1:], picture.layout.boxes[1:], strict=False):
        assert box.label == stage.label == tensor_label(report.layers[stage.rows[-1]].output)
    # every shape the trace passes through is drawn
    traced = {tensor_label(r.output) for r in report.layers if r.output is not None}
    assert traced <= {b.label for b in picture.layout.boxes}


@pytest.mark.parametrize("name", ["cnn", "dnn", "tiny", "whatif", "broken"])
def test_boxes_are_to_scale(pictures, name):
    layout = pictures[name].layout
    maps = [(b, s) for b, s in zip(layout.boxes, pictures[name].stages, strict=True) if s.is_map]
    for box, stage in maps:
        h, w = stage.shape[-2], stage.shape[-1]
        assert box.height == pytest.approx(h * layout.px)
        assert box.width == pytest.approx(w * layout.px)
    columns = [b for b in layout.boxes if b.kind == "column"]
    ratios = {round(b.height / math.sqrt(int(b.label)), 6) for b in columns}
    assert len(ratios) <= 1  # one √ scale for every column


def test_depth_grows_with_channels(pictures):
    depth = {b.label: b.depth for b in pictures["cnn"].layout.boxes}
    assert depth["1@28×28"] < depth["32@28×28"] == depth["32@14×14"] < depth["64@12×12"]


def test_kernels_and_flatten(pictures):
    picture = pictures["cnn"]
    windows = picture.layout.windows
    # conv 3×3, pool 2×2, conv 3×3, pool 2×2, each on the map it reads
    assert [(w.box, w.width / picture.layout.px) for w in windows] == [
        (0, 3), (1, 2), (2, 3), (3, 2),
    ]  # fmt: skip
    steps = picture.layout.labels("step")
    assert steps[:3] == ["3×3", "stride 1", "pad 1"]
    assert steps.count("stride 2") == 2 and "flatten" in steps
    assert "64·6·6 = 2304" in picture.layout.labels("caption")


def test_parameters_per_stage(pictures):
    stages_ = pictures["cnn"].stages
    assert sum(s.params for s in stages_) == 1_475_338
    by_label = {s.label: s.params for s in stages_}
    assert by_label["32@28×28"] == 320 + 64  # conv1 and its BatchNorm
    assert by_label["600"] == 1_383_000
    assert "384 params" in pictures["cnn"].layout.labels("caption")
    assert "1,475,338 parameters" in pictures["cnn"].layout.labels("title")[0]


def test_broken_chain_stops_at_the_failing_layer(pictures):
    picture = pictures["broken"]
    assert picture.stages[-1].failed and picture.layout.boxes[-1].kind == "failed"
    assert picture.stages[-1].names == ["fc1"]
    errors = " ".join(picture.layout.labels("error"))
    assert "fc1" in errors and "3136" in errors and "nn.Linear(3136, 600)" in errors


def test_the_claim_is_at_one_scale(pictures):
    layout = pictures["claim"].layout
    boxes = {b.label: b for b in layout.boxes}
    assert list(boxes) == ["32@784×784", "32@392×392", "32@28×28", "32@14×14"]
    assert boxes["32@784×784"].height / boxes["32@28×28"].height == pytest.approx(28)
    assert "19,668,992 values" in layout.labels() and "25,088 values" in layout.labels()


def _overlap(a, b, slack: float = 0.5) -> bool:
    """Do boxes (x0, y0, x1, y1) overlap by more than ``slack`` points?"""
    apart_x = a[2] - slack <= b[0] or b[2] - slack <= a[0]
    apart_y = a[3] - slack <= b[1] or b[3] - slack <= a[1]
    return not (apart_x or apart_y)


@pytest.mark.parametrize("name", CHAINS)
def test_no_label_overlaps_or_is_clipped(pictures, name):
    layout = pictures[name].layout
    boxes = [(b.x, b.y, b.right, b.top) for b in layout.boxes]
    x0, y0, x1, y1 = layout.bounds
    for t in layout.texts:
        bb = t.bbox()
        assert x0 <= bb[0] and bb[2] <= x1 and y0 <= bb[1] and bb[3] <= y1, t.text
        assert not any(_overlap(bb, box) for box in boxes), t.text
    for a, b in itertools.combinations(layout.texts, 2):
        assert not _overlap(a.bbox(), b.bbox()), (a.text, b.text)


# -- rendered ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", CHAINS)
def test_svg_holds_every_label(pictures, name):
    svg = pictures[name].to_bytes("svg").decode()
    ET.fromstring(svg)  # well formed
    for label in pictures[name].layout.labels():
        assert f"<!-- {label} -->" in svg, label  # matplotlib keeps each text line so


def test_png(pictures, tmp_path):
    path = pictures["cnn"].save(tmp_path / "cnn.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_picture_is_the_same_bytes(pictures):
    assert draw("dnn").to_bytes("svg") == pictures["dnn"].to_bytes("svg")


def test_readme_picture_is_current(pictures, update_expected):
    picture = pictures["cnn"]
    if update_expected:
        picture.save(README_PICTURE)
    assert README_PICTURE.is_file()
    assert f"archlab draw {picture.fingerprint}" in README_PICTURE.read_text(encoding="utf-8"), (
        "docs/_static/cnn.svg is stale: run `pytest tests/test_draw.py --update-expected` "
        "(or archlab draw cnn --out docs/_static/cnn.svg)"
    )


def test_docstring_examples_run():
    from archlab import drawing

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(drawing, globs={"archlab": archlab}):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 2


# -- models that branch ------------------------------------------------------------------
@dataclass
class Row:
    """A trace row as the tracer of issue 10 gives it: with the rows it reads."""

    name: str
    type: str
    input: tuple
    output: tuple
    inputs: list[int] = field(default_factory=list)
    formula: str | None = None
    checked: bool = True


def _residual_report() -> tuple[ShapeReport, dict]:
    m = (4, 8, 8)
    rows = [
        Row("conv1", "Conv2d", m, m, [-1]),
        Row("(forward)", "torch.relu", m, m, [0]),
        Row("conv2", "Conv2d", m, m, [1]),
        Row("(forward)", "add", m, m, [2, -1]),
        Row("(forward)", "flatten(1)", m, (256,), [3], "4·8·8 = 256"),
        Row("head", "Linear", (256,), (3,), [4]),
    ]
    model = Residual()
    return ShapeReport("Residual", m, layers=rows), dict(model.named_modules())


def test_branches_make_a_graph_whose_merge_shows_both_inputs():
    report, modules = _residual_report()
    assert not is_chain(report)
    parts = stages(report, modules)
    assert [s.label for s in parts] == ["4@8×8", "4@8×8", "4@8×8", "4@8×8", "256", "3"]
    assert parts[1].types == ["Conv2d", "torch.relu"]  # the relu folded into conv1
    assert parts[3].inputs == [2, 0]  # the addition reads conv2's output and the input
    layout = graph_layout(parts, "Residual")
    merge = [n for n in layout.nodes if n.kind == "merge"]
    assert len(merge) == 1 and "from 4@8×8 and 4@8×8" in merge[0].lines
    into = [e for e in layout.edges if e.dst == merge[0].id]
    assert sorted(e.src for e in into) == ["s0", "s2"] and {e.label for e in into} == {"4@8×8"}
    assert "3×3, stride 1, pad 1" in layout.nodes[1].lines


@needs_dot
def test_graph_svg_holds_every_label():
    report, modules = _residual_report()
    layout = graph_layout(stages(report, modules), "Residual")
    svg = render_graph(layout, "svg").decode()
    text = " ".join(
        "".join(e.itertext()) for e in ET.fromstring(svg).iter() if e.tag.endswith("text")
    )
    for label in layout.labels():
        assert label in text, label


@needs_dot
def test_a_real_residual_model_is_drawn_as_a_graph():
    picture = draw(Residual())
    assert picture.kind == "graph"
    assert any(n.kind == "merge" for n in picture.layout.nodes)
    assert picture.to_bytes("svg").startswith(b"<?xml")


@pytest.mark.parametrize("name", archlab.list_models())
def test_every_parameter_is_in_exactly_one_node(name):
    """The stages' counts add up to the model's: a functional operation (``add``,
    ``F.relu``), named after the block whose forward calls it, counts none of the block's."""
    model = archlab.create_model(name)
    total = sum(p.numel() for p in model.parameters())
    for depth in (None, 1):
        assert sum(s.params for s in draw(model, depth=depth).stages) == total, (name, depth)


def test_a_residual_add_counts_no_parameters():
    picture = draw("resnet")
    adds = [s for s in picture.stages if s.types[:1] == ["add"]]
    assert [s.names[0] for s in adds] == ["stage1", "stage2", "stage3"]
    assert [s.params for s in adds] == [0, 0, 0]
    # stage3's own layers: conv1 3·3·64·128 + bn 256, conv2 3·3·128·128 + bn 256
    by_name = {s.names[0]: s.params for s in picture.stages[1:]}
    assert by_name["stage3.conv1"] == 73_728 + 256
    assert by_name["stage3.conv2"] == 147_456 + 256


def test_the_graph_wraps_one_block_to_a_row():
    rows = draw("resnet").layout.rows
    names = {s: n for s, n in enumerate(draw("resnet").stages)}
    first = [names[int(row[0][1:])].names[0] if int(row[0][1:]) else "input" for row in rows]
    assert first == ["input", "stage1.conv1", "stage2.conv1", "stage3.conv1", "head.0"]
    assert max(len(r) for r in rows) <= 5
    assert sorted(int(n[1:]) for r in rows for n in r) == list(range(len(names)))


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@needs_dot
def test_resnet_graph_fits_a_slide():
    """Drawn in one line, resnet was 3,845 × 213 px; wrapped by block it must fit a 16:9
    slide (13.33 × 7.5 in) at Graphviz's 96 dpi, where its 9-point text stays 9 points."""
    width, height = _png_size(draw("resnet").to_bytes("png"))
    assert width <= 13.33 * 96 and height <= 7.5 * 96, (width, height)
    assert 1.0 <= width / height <= 16 / 9 + 0.4, (width, height)


def test_depth_folds_resnet_into_a_chain():
    picture = draw("resnet", depth=1)
    assert picture.kind == "chain"
    assert [b.label for b in picture.layout.boxes] == [
        "1@28×28", "32@14×14", "64@7×7", "128@4×4", "10",
    ]  # fmt: skip


# -- the command -------------------------------------------------------------------------
def test_cli_writes_the_cnn(tmp_path, capsys):
    out = tmp_path / "cnn.svg"
    assert main(["draw", "cnn", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert "<!-- 64@6×6 -->" in out.read_text(encoding="utf-8")


def test_cli_default_path_and_user_model(tmp_path, capsys):
    assert main(["draw", f"{USER_MODELS}:TinyNet", "--runs", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split("wrote ", 1)[1].strip()
    assert Path(written) == tmp_path / "user_models.TinyNet" / "figures" / "architecture.svg"
    assert "<!-- 4@5×5 -->" in Path(written).read_text(encoding="utf-8")


def test_cli_broken_chain_draws_and_exits_1(tmp_path, capsys):
    out = tmp_path / "broken.png"
    assert main(["draw", "cnn", "--input", "1,32,32", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert out.is_file() and "fc1 (Linear)" in err and len(err.strip().splitlines()) == 1


def test_cli_claim(tmp_path):
    out = tmp_path / "claim.svg"
    assert main(["draw", "cnn", "--claim", "--out", str(out)]) == 0
    assert "<!-- 32@784×784 -->" in out.read_text(encoding="utf-8")


def _one_line_error(capsys, argv, code, message):
    assert main(argv) == code
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err, err
    assert "wrote" not in captured.out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["draw", "nosuch"], 2, "unknown model 'nosuch'"),
        (["draw", "cnn", "--out", "cnn.pdf"], 2, "write a .svg or .png file"),
        (["draw", "cnn", "--out", "cnn"], 2, "write a .svg or .png file"),
        (["draw", "dnn", "--claim", "--out", "x.svg"], 2, "claimed shapes for cnn only"),
        (["draw", "cnn", "--set", "layer9.padding=1", "--out", "x.svg"], 2, "layer9"),
    ],
)
def test_cli_bad_input(capsys, tmp_path, monkeypatch, argv, code, message):
    monkeypatch.chdir(tmp_path)
    _one_line_error(capsys, argv, code, message)


def test_cli_unwritable_path(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _one_line_error(capsys, ["draw", "cnn", "--out", str(blocker / "x.svg")], 1, "cannot write")


def test_cli_graphviz_absent(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot
    argv = ["draw", "cnn", "--graph", "--out", str(tmp_path / "g.svg")]
    _one_line_error(capsys, argv, 2, "apt-get install graphviz")
    monkeypatch.setitem(sys.modules, "graphviz", None)  # nor the Python package
    _one_line_error(capsys, argv, 2, "pip install graphviz")


@needs_dot
def test_cli_graph_of_a_chain(tmp_path, capsys):
    out = tmp_path / "g.svg"
    assert main(["draw", "cnn", "--graph", "--out", str(out)]) == 0
    assert re.search(r"64@6×6", out.read_text(encoding="utf-8"))


class _GlobalMeanHead(nn.Module):
    """NiN's head: a global mean over H and W, then a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3)))


class _RowsGRU(nn.Module):
    """A GRU over the rows of the image, classifying from its last step."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(28, 16, batch_first=True)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        out, _ = self.rnn(x[:, 0])
        return self.fc(out[:, -1])


@pytest.mark.parametrize(
    ("model", "step"),
    [("cnn", "flatten"), (_GlobalMeanHead(), "global mean"), (_RowsGRU(), "last step")],
)
def test_a_drawing_names_what_the_op_does(model, step):
    picture = draw(model)
    flat = [s for s in picture.stages if s.step is not None]
    assert [s.step for s in flat] == [step]
    assert step in picture.layout.labels("step")
    graph = graph_layout(picture.stages, "graph")  # a model that branches is drawn so
    assert any(step in n.lines for n in graph.nodes)


def test_a_depthwise_convolution_is_drawn_with_its_groups():
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8),  # depthwise, dilated
        nn.Conv2d(8, 16, 1),  # pointwise
        nn.Conv2d(16, 16, 3, groups=4),
    )
    picture = draw(model)
    steps = picture.layout.labels("step")
    assert "groups 8 (depthwise)" in steps and "dilation 2" in steps
    assert "groups 4" in steps and steps.count("groups 8 (depthwise)") == 1
    # the dilated window spans 2·(3 − 1) + 1 = 5 pixels of the map it reads
    assert [round(w.width / picture.layout.px) for w in picture.layout.windows] == [3, 5, 1, 3]
