"""archlab explore: the export (every trace row, activations equal to a forward pass within
the stated quantisation) and a user's residual model from train to explore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import archlab
from archlab.explorer.export import choose_images

from .synthetic import learnable_dataset

QUIET = {"progress": False, "log": lambda _line: None, "figures": False}


@pytest.fixture(scope="module")
def data():
    return learnable_dataset(n_train=300, n_test=120)


@pytest.fixture(scope="module")
def explored(tmp_path_factory, data):
    """dnn and cnn trained for a few steps on the synthetic set, then explored."""
    runs = tmp_path_factory.mktemp("runs")
    trained = [
        archlab.train(m, runs=runs, data=data, max_iterations=6, batch_size=50, **QUIET)
        for m in ("dnn", "cnn")
    ]
    page = archlab.explore(trained, images=30, out=runs / "explorer", data=data)
    return trained, page


def read_script(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("ARCHLAB.add(") and text.endswith(");\n")
    return json.loads(text[len("ARCHLAB.add(") : -3])


def sprite_tile(folder: Path, image: int, channel: int, act: dict) -> torch.Tensor:
    """One channel of one image out of an activation sprite (its palette indices), found
    by the layout that docs/explorer.rst states (tile image·C + channel)."""
    import numpy
    from PIL import Image

    c, h, w = act["shape"]
    sprite = act["sprite"]
    k = image * c + channel
    per = sprite["cols"] * sprite["lines"]
    sheet, on = divmod(k, per)
    pixels = torch.from_numpy(numpy.array(Image.open(folder / sprite["files"][sheet])))
    y = (on // sprite["cols"]) * (h + 1)
    x = (on % sprite["cols"]) * (w + 1)
    return pixels[y : y + h, x : x + w]


def test_the_folder_has_the_page_and_its_data_and_nothing_from_another_host(explored):
    _, page = explored
    folder = page.parent
    assert page.name == "index.html"
    for name in ("explorer.js", "explorer.css", "data/index.js", "data/images-0.png"):
        assert (folder / name).is_file(), name
    for text_file in ("index.html", "explorer.js", "explorer.css"):
        text = (folder / text_file).read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    index = read_script(folder / "data" / "index.js")["index"]
    assert [r["name"] for r in index["runs"]] == ["dnn", "cnn"]
    assert len(index["images"]) == 30


def test_every_trace_row_is_in_the_data(explored):
    trained, page = explored
    for k, run in enumerate(trained):
        data = read_script(page.parent / "data" / f"run-{k}" / "run.js")
        rows = archlab.trace_shapes(run.model).layers
        assert [(r["name"], r["type"], r["output"], r["inputs"]) for r in data["rows"]] == [
            (r.name, r.type, list(r.output), r.inputs) for r in rows
        ]
        params = archlab.count_params(run.model)
        assert sum(r["params"] for r in data["rows"]) == params.total_params
        assert len(data["probs"]) == 30 and len(data["confusion"]) == 10


def test_activations_equal_a_forward_pass_within_the_quantisation(explored, data):
    trained, page = explored
    cnn = trained[1]
    folder = page.parent / "data"
    index = read_script(folder / "index.js")["index"]
    run = read_script(folder / "run-1" / "run.js")
    indices = [im["index"] for im in index["images"]]
    seen = {}
    hooks = [
        m.register_forward_hook(lambda _m, _a, out, name=name: seen.__setitem__(name, out))
        for name, m in cnn.model.named_modules()
        if name
    ]
    try:
        with torch.no_grad():
            cnn.model(archlab.training.predict.to_input(data.test_images[indices], cnn.normalize))
    finally:
        for h in hooks:
            h.remove()
    checked = 0
    for row in run["rows"]:
        act = row["act"]
        if row["functional"] or row["name"] not in seen or act["kind"] == "none":
            continue
        truth = seen[row["name"]].flatten(2) if act["kind"] == "maps" else seen[row["name"]]
        for image in (0, 17, 29):
            lo, hi = act["ranges"][image]
            step = (hi - lo) / 255
            if act["kind"] == "maps":
                for channel in (0, act["shape"][0] - 1):
                    q = sprite_tile(folder, image, channel, act)
                    got = lo + q.float().flatten() * step
                    want = truth[image, channel]
                    assert (got - want).abs().max() <= step / 2 + 1e-4 * max(1, abs(hi))
            else:
                got = lo + torch.tensor(act["bars"][image], dtype=torch.float) * step
                assert (got - truth[image]).abs().max() <= step / 2 + 1e-4 * max(1, abs(hi))
        checked += 1
    assert checked >= 8  # conv, bn, relu, pool of two blocks, and the linears


def test_the_images_are_right_ones_of_every_class_and_mistakes():
    labels = torch.arange(200) % 10
    predicted = labels.clone()
    predicted[:40] = (labels[:40] + 1) % 10  # 40 mistakes in ten cells
    chosen = choose_images(labels, [predicted], 30)
    assert len(chosen) == len(set(chosen)) == 30
    right = [i for i in chosen if predicted[i] == labels[i]]
    assert {int(labels[i]) for i in right} == set(range(10))
    assert len(chosen) - len(right) >= 10


def test_a_users_residual_model_goes_through_train_and_explore(tmp_path, data):
    spec = f"{Path(__file__).parent / 'user_lab.py'}:ResidualNet"
    run = archlab.train(spec, runs=tmp_path, data=data, max_iterations=4, batch_size=50, **QUIET)
    out = tmp_path / "explorer"
    page = archlab.explore([run], images=10, out=out, methods="saliency,gradcam", data=data)
    rows = read_script(page.parent / "data" / "run-0" / "run.js")["rows"]
    add = next(r for r in rows if r["type"] == "add")
    assert len(add["inputs"]) == 2 and add["act"]["kind"] == "maps"
    assert (page.parent / "data" / "run-0" / "attr-gradcam-0.png").is_file()
    # the site names the user's file, never the folders it sits in (issue 28, item 10)
    for script in (page.parent / "data").rglob("*.js"):
        text = script.read_text(encoding="utf-8")
        assert str(Path(__file__).parent) not in text and str(tmp_path) not in text, script
    index = read_script(page.parent / "data" / "index.js")["index"]
    assert index["runs"][0]["label"] == "user_lab.py:ResidualNet"
