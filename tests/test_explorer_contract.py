"""The explorer's data contract (issue 29, item 5), checked from both sides against
``archlab/explorer/schema.json``: Python writes exactly its keys, and the page, run in Node
over the same site with every run, row, image and cell selected, reads exactly its keys.
Also: the JavaScript parses (``node --check``), its unit tests pass (``node --test``),
sprites stay under the documented cap, and a model without gradients is explored."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

import archlab
from archlab.explorer import write

from .explorer_models import ArgmaxNet, snapshot_runs
from .synthetic import learnable_dataset

ROOT = Path(__file__).parents[1]
STATIC = ROOT / "src" / "archlab" / "explorer" / "static"
SCHEMA = json.loads(
    (ROOT / "src" / "archlab" / "explorer" / "schema.json").read_text(encoding="utf-8")
)
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="needs Node.js (apt-get install nodejs)")


def read_script(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("ARCHLAB.add(") and text.endswith(");\n")
    return json.loads(text[len("ARCHLAB.add(") : -3])


def written_keys(site: Path) -> set[str]:
    """Every schema path of the data Python wrote into ``site`` (see schema.json's about)."""
    maps = set(SCHEMA["maps"])
    found: set[str] = set()

    def walk(value, where: str) -> None:
        found.add(where)
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}{{}}" if where in maps else f"{where}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{where}[]")

    walk(read_script(site / "data" / "index.js")["index"], "index")
    for run in sorted((site / "data").glob("run-*/run.js")):
        walk(read_script(run), "run")
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """dnn, cnn (with two snapshots: the timeline) and a model answering with a one-hot of
    its argmax (a row with an integer output: no picture; no gradient: no gradient maps),
    explored into one site."""
    from archlab.explorer import panels

    data = learnable_dataset(n_train=300, n_test=120)
    runs = tmp_path_factory.mktemp("runs")
    quiet = {"progress": False, "log": lambda _line: None, "figures": False}
    dnn, cnn = (
        archlab.train(m, runs=runs, data=data, max_iterations=4, batch_size=50, **quiet)
        for m in ("dnn", "cnn")
    )
    argmax = dataclasses.replace(dnn, name="argmax", model=ArgmaxNet(dnn.model))
    lines: list[str] = []
    snaps = snapshot_runs(cnn)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(panels, "find_snapshots", lambda run: snaps if run is cnn else [])
        page = archlab.explore([dnn, cnn, argmax], images=12, out=runs / "explorer", data=data,
                               log=lines.append)  # fmt: skip
    return page.parent, lines


def test_the_format_key_is_the_schemas_everywhere(site):
    folder, _ = site
    assert SCHEMA["format"] == write.FORMAT == "archlab-explorer/1"
    assert SCHEMA["max_sprite_side"] == write.MAX_SPRITE_SIDE
    assert read_script(folder / "data" / "index.js")["index"]["format"] == SCHEMA["format"]
    assert read_script(folder / "data" / "run-0" / "run.js")["format"] == SCHEMA["format"]
    core = (STATIC / "explorer-core.js").read_text(encoding="utf-8")
    assert f'const FORMAT = "{SCHEMA["format"]}";' in core


def test_python_writes_exactly_the_schemas_keys(site):
    folder, _ = site
    assert written_keys(folder) == set(SCHEMA["keys"])


@needs_node
def test_the_page_reads_exactly_the_schemas_keys(site):
    folder, _ = site
    result = subprocess.run(
        [NODE, str(ROOT / "tests" / "js" / "read_keys.js"), str(folder)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    read = set(json.loads(result.stdout))
    assert read - set(SCHEMA["keys"]) == set(), "the page reads keys Python never writes"
    assert set(SCHEMA["keys"]) - read == set(), "Python writes keys the page never reads"


def test_the_schema_is_in_the_docs():
    docs = (ROOT / "docs" / "explorer.rst").read_text(encoding="utf-8")
    assert "archlab-explorer/1" in docs
    assert ".. literalinclude:: ../src/archlab/explorer/schema.json" in docs


@needs_node
@pytest.mark.parametrize("script", sorted(p.name for p in STATIC.glob("*.js")))
def test_the_javascript_parses(script):
    result = subprocess.run([NODE, "--check", str(STATIC / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@needs_node
def test_the_javascript_unit_tests_pass():
    result = subprocess.run(
        [NODE, "--test", str(ROOT / "tests" / "js" / "explorer.test.js")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 7" in result.stdout


# -- sprites ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "h", "w"), [(1, 28, 28), (30, 28, 28), (10000, 28, 28),
                                               (64 * 10000, 6, 6), (7, 1, 300)])  # fmt: skip
def test_sprite_sheets_are_square_ish_and_under_the_cap(count, h, w):
    cols, lines = write.sprite_layout(count, h, w)
    width, height = cols * (w + write.TILE_GAP), lines * (h + write.TILE_GAP)
    assert width <= write.MAX_SPRITE_SIDE and height <= write.MAX_SPRITE_SIDE
    assert cols * lines >= min(count, cols * lines) and cols <= count
    sheets = -(-count // (cols * lines))
    if sheets == 1:  # one sheet: as square as whole tiles allow
        assert lines == -(-count // cols)
        if count > 1:
            assert max(width, height) <= 2 * min(width, height) + max(w, h) + 2


def test_every_tile_is_where_the_layout_says(tmp_path):
    """10,000 images (the CLI's most) on sheets under the cap; each tile read back at the
    position the docs state: sheet k // (cols·lines), column k % cols, line (k // cols) % lines."""
    import numpy
    from PIL import Image

    count = 10000
    tiles = (torch.arange(count) % 251).to(torch.uint8)[:, None, None].expand(count, 28, 28)
    sprite = write.save_sprite(tiles.clone(), tmp_path, "images", "")
    per = sprite["cols"] * sprite["lines"]
    sheets = [numpy.array(Image.open(tmp_path / f)) for f in sprite["files"]]
    assert len(sheets) == -(-count // per)
    for sheet in sheets:
        assert max(sheet.shape) <= write.MAX_SPRITE_SIDE
    assert len(sheets) == 1 and abs(sheets[0].shape[0] - sheets[0].shape[1]) <= 29
    for k in range(0, count, 97):
        s, on = divmod(k, per)
        y, x = (on // sprite["cols"]) * 29, (on % sprite["cols"]) * 29
        assert (sheets[s][y : y + 28, x : x + 28] == k % 251).all(), k


# -- a model whose output has no gradient (issue 28, item 5) ----------------------------------


def test_a_model_without_gradients_is_explored_with_one_warning(site):
    folder, lines = site
    run = read_script(folder / "data" / "run-2" / "run.js")
    assert [m["name"] for m in run["methods"]] == ["occlusion"]  # needs no gradient
    assert set(run["skipped"]) == {"saliency", "ig", "smoothgrad", "gradcam"}
    assert all("no gradient" in why for why in run["skipped"].values())
    warned = [line for line in lines if line.startswith("warning:")]
    assert len(warned) == 1 and "argmax: its output has no gradient" in warned[0]
    none = [r for r in run["rows"] if r["act"]["kind"] == "none"]
    assert none and all(r["act"]["why"] == "no output with one row per image" for r in none)
